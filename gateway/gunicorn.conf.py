"""Gunicorn settings for a checkout: `gunicorn -c gateway/gunicorn.conf.py gateway.wsgi:app`.
The settings live in the package (gateway/gunicorn_conf.py) so installed wheels carry them."""

import sys
from pathlib import Path

# the package directory next to this file, ahead of the repo root (where `gateway` would
# otherwise resolve to this folder as a namespace package)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway.gunicorn_conf import *  # noqa: E402,F403
