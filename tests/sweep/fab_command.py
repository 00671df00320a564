"""Runs the venv's `fab`, as `make` and the README do, for the tests of its messages and help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAB = Path(sys.executable).parent / "fab"
NO_LAB = ["--inventory", "/nonexistent/inventory"]  # should a check break: fail, never reach a lab


def fab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(FAB), *args], cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
