"""WSGI entry point: `gunicorn -c python:offload_gateway.gunicorn_conf offload_gateway.wsgi:app`."""

from . import create_app

app = create_app()
