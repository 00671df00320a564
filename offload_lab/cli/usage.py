"""How a command ends: its exit codes, and `UsageError` for errors the user can fix (the message
names the bad value; exit status 2 unless given another). fabfile.py turns it into fab's exit."""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def echo(msg: str) -> None:
    print(msg, flush=True)
