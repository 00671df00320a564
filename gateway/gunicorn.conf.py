"""Gunicorn settings for a checkout: `gunicorn -c gateway/gunicorn.conf.py offload_gateway.wsgi:app`.
The settings live in the package (offload_gateway/gunicorn_conf.py) so installed wheels carry
them; `pip install -e gateway/` (scripts/install-deps.sh) makes the package importable."""

from offload_gateway.gunicorn_conf import *  # noqa: F403
