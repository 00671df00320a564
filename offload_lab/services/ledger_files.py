"""The cores' file ledgers (LEDGER=file, docs/interfaces.md "Outcome records"): every core host
appends one JSON line per settled task to its LEDGER_FILE before the ack. The file is never
truncated; this reader keeps a byte offset per host and takes, over SSH, only the whole lines
appended since its last read. The first read starts at the end of each file: records older
than the sweep are not its business."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..hosts.remote import Remote

DEFAULT_LEDGER_FILE = "/var/lib/offload-core/ledger.jsonl"  # core-go/internal/config: Defaults


class LedgerFileError(RuntimeError):
    pass


class LedgerFiles:
    """One OutcomeQueue (offload_lab.services.outcomes) over every core host's ledger file; the dead
    letters are the broker's (`dead_letters`, e.g. OutcomeRecords.dead_letters)."""

    def __init__(
        self,
        remotes: dict[str, Remote],
        paths: dict[str, str],
        dead_letters: Callable[[], list[dict[str, Any]]],
    ):
        self.remotes = remotes  # core host name -> its Remote
        self.paths = paths  # core host name -> its LEDGER_FILE
        self._dead_letters = dead_letters
        self.offsets: dict[str, int] | None = None

    def _each(self, fn) -> dict[str, Any]:
        with ThreadPoolExecutor(max_workers=max(1, len(self.remotes))) as pool:
            futures = {name: pool.submit(fn, name) for name in self.remotes}
            return {name: f.result() for name, f in futures.items()}

    def _size(self, name: str) -> int:
        path = shlex.quote(self.paths[name])
        r = self.remotes[name].run(f"if [ -e {path} ]; then stat -c %s {path}; else echo 0; fi", sudo=True)
        return int(r.stdout.strip() or 0)

    def _start(self) -> dict[str, int]:
        if self.offsets is None:
            self.offsets = self._each(self._size)
        return self.offsets

    def purge(self) -> None:
        """From now on: what the files hold already is skipped."""
        self.offsets = self._each(self._size)

    def take(self) -> list[str]:
        """The records appended since the last take (or purge), every host's, as text lines."""
        offsets = self._start()
        taken = self._each(lambda name: self._read_from(name, offsets[name]))
        lines: list[str] = []
        for name, (new_offset, host_lines) in taken.items():
            offsets[name] = new_offset
            lines.extend(host_lines)
        return lines

    def _read_from(self, name: str, offset: int) -> tuple[int, list[str]]:
        path = shlex.quote(self.paths[name])
        size = self._size(name)
        if size < offset:
            raise LedgerFileError(
                f"{name}: {self.paths[name]} shrank from {offset} to {size} bytes: the ledger file is "
                "append-only; something truncated or replaced it"
            )
        if size == offset:
            return offset, []
        # exactly the bytes up to `size`: a line being appended now is left for the next take
        r = self.remotes[name].run(f"tail -c +{offset + 1} {path} | head -c {size - offset}", sudo=True)
        data = r.stdout.encode()
        whole = data[: data.rfind(b"\n") + 1]
        return offset + len(whole), [line for line in whole.decode().splitlines() if line.strip()]

    def dead_letters(self) -> list[dict[str, Any]]:
        return self._dead_letters()
