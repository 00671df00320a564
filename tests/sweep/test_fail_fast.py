"""Bad input stops before the slow part: a spec that cannot run fails `make demo` before the lab
is touched, and `fab check --spec-only` needs no lab at all."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from offload_lab.cli import commands
from offload_lab.cli.usage import UsageError

REPO = Path(__file__).resolve().parents[2]


def test_demo_with_an_unknown_spec_fails_before_the_lab_is_touched():
    start = time.monotonic()
    r = subprocess.run(
        ["scripts/demo.sh", "nosuch"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - start
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "unknown spec 'nosuch'" in out and "quick" in out  # names the bad spec and the known ones
    assert "==> " not in out, "lab/labctl ran"  # labctl's steps print `==> ...`
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_check_spec_only_needs_no_inventory(capsys):
    assert commands.check("quick", {"rates": "50"}, "/nonexistent/inventory", spec_only=True) == 0
    out = capsys.readouterr().out
    assert out.startswith("spec quick: 2 steps") and "inventory" not in out and "ok (spec only)" in out
    with pytest.raises(UsageError, match="--duration"):
        commands.check("quick", {"duration": "0"}, None, spec_only=True)
