"""scripts/build-artifacts.sh: a second run replaces nothing (so playbooks/build.yml reports
changed=0 on a re-run), and a part that cannot be built fails with a clear message."""

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build-artifacts.sh"


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(cwd / "scripts" / "build-artifacts.sh"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _changed(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("CHANGED ")]


def test_second_build_changes_nothing():
    first = _run()
    assert first.returncode == 0, first.stderr
    second = _run()
    assert second.returncode == 0, second.stderr
    assert _changed(second.stdout) == [], second.stdout
    assert (REPO / "build" / "offload-core").is_file()
    assert os.access(REPO / "build" / "k6", os.X_OK)
    wheelhouse = REPO / "build" / "wheelhouse"
    reqs = (wheelhouse / "requirements.txt").read_text()
    assert "offload-gateway==" in reqs
    assert list(wheelhouse.glob("offload_gateway-*.whl"))
    # the import package is offload_gateway, subpackages included; nothing named plain `gateway`
    (wheel,) = wheelhouse.glob("offload_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    for module in ("__init__.py", "wsgi.py", "gunicorn_conf.py", "settings.py", "publishers/base.py"):
        assert f"offload_gateway/{module}" in names, names
    assert not [n for n in names if n.startswith("gateway/")], names


def test_core_binary_is_static():
    binary = REPO / "build" / "offload-core"
    if not binary.is_file():
        assert _run().returncode == 0
    # a dynamically linked ELF names its loader (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2
    assert b"ld-linux" not in binary.read_bytes()


def test_unbuildable_core_fails_clearly(tmp_path: Path):
    """In a copy of the repo without core-go/cmd/core, the script stops with a message."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(SCRIPT, tmp_path / "scripts" / "build-artifacts.sh")
    (tmp_path / "core-go").mkdir()
    (tmp_path / "core-go" / "go.mod").write_text("module example.com/x\n\ngo 1.22\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(REPO / ".venv" / "bin" / "python")
    result = _run("core", cwd=tmp_path)
    assert result.returncode != 0
    assert "core-go/cmd/core" in result.stderr and "ERROR" in result.stderr
    assert _changed(result.stdout) == []


def test_missing_gateway_fails_clearly(tmp_path: Path):
    (tmp_path / "scripts").mkdir()
    shutil.copy2(SCRIPT, tmp_path / "scripts" / "build-artifacts.sh")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(REPO / ".venv" / "bin" / "python")
    result = _run("wheelhouse", cwd=tmp_path)
    assert result.returncode != 0
    assert "gateway/pyproject.toml" in result.stderr
