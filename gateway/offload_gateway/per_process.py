"""A value built on first use in each process.

AMQP connections and HTTP pools must not cross a fork (gunicorn forks workers from the
master), and under the gevent worker they must be made after gevent patched the socket
module, which happens in the worker after the fork. Building lazily per process covers both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._value: T | None = None

    def get(self) -> T:
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._value = self._factory()
                    self._pid = pid
        return self._value  # type: ignore[return-value]

    def peek(self) -> T | None:
        """The value if this process built it already, else None."""
        return self._value if self._pid == os.getpid() else None
