"""Publishers of task messages, one module each, selected by the PUBLISHER setting."""

from __future__ import annotations

import importlib

from ..settings import Settings
from .base import Publisher, PublishError

__all__ = ["PublishError", "Publisher", "create_publisher"]


# PUBLISHER -> the module whose create(settings) builds it, where the names differ
_MODULES = {
    "celery": "celery_send_task",
    "celery_default_pool": "celery_send_task",
    "dramatiq": "dramatiq_rabbitmq",
}


def create_publisher(settings: Settings) -> Publisher:
    # imported on demand so a process loads only the AMQP client it uses
    name = _MODULES.get(settings.publisher, settings.publisher)
    module = importlib.import_module(f"{__name__}.{name}")
    return module.create(settings)
