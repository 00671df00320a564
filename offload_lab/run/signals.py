"""SIGTERM and SIGHUP end a sweep the way Ctrl-C does: k6 is stopped on its host, the run is
marked interrupted with its finished steps kept, and the gateway's settings are restored.

SIGINT is set back to Python's handler too: a shell starts background jobs with SIGINT
ignored, and the sweep must still stop on it (`kill -INT`)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when one of SIGNALS arrives; str() is the signal's name."""


def _raise(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise Interrupted (a KeyboardInterrupt)."""
    previous = {s: signal.signal(s, _raise) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
