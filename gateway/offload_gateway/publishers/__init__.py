"""Publishers of task messages, one module each, selected by the PUBLISHER setting."""

from __future__ import annotations

import importlib

from ..settings import Settings
from .base import Publisher, PublishError

__all__ = ["PublishError", "Publisher", "create_publisher"]


def create_publisher(settings: Settings) -> Publisher:
    # imported on demand so a process loads only the AMQP client it uses
    module = importlib.import_module(f"{__name__}.{settings.publisher}")
    return module.create(settings)
