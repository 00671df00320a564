"""The base image's debootstrap says how far it got while it runs (lab/base.py)."""

import os
import stat

from lab import base
from lab.locallab import LocalLab

LOG = """\
I: Retrieving InRelease
I: Retrieving Packages
I: Validating Packages
I: Retrieving libacl1 2.3.1-3
I: Retrieving libc6 2.36-9+deb12u9
I: Retrieving sudo 1.9.13p3-1+deb12u1
I: Installing core packages...
I: Unpacking required packages...
I: Unpacking libacl1:amd64...
I: Unpacking libc6:amd64...
I: Configuring required packages...
I: Configuring libc6:amd64...
"""


def test_progress_counts_packages_not_stages():
    line = base.progress_line(LOG, 31.6)
    assert line == (
        "    debootstrap 32 s: 3 packages fetched, 2 unpacked, 1 configured; I: Configuring libc6:amd64..."
    )
    assert base.progress_line("", 10).endswith("0 configured; (nothing logged yet)")


def test_a_long_debootstrap_prints_progress_while_it_runs(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "debootstrap"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'I: Retrieving libc6 2.36-9'\nsleep 0.7\necho 'I: Unpacking libc6:amd64...'\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(base, "PROGRESS_EVERY_S", 0.2)
    log = tmp_path / "debootstrap.log"
    assert base.run_debootstrap(LocalLab(state=tmp_path / "state"), tmp_path / "root", "http://m", log) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2, lines
    assert "1 packages fetched, 0 unpacked" in lines[0] and "I: Retrieving libc6 2.36-9" in lines[0]
    assert log.read_text().endswith("I: Unpacking libc6:amd64...\n")
