"""What `fab sweep` and `fab capacity` do before any load: a new run folder, the connections to
the lab (with this machine's RabbitMQ password), preflight, and where the run comes from (git
state, local versions) and the record run.json starts as."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

from ..hosts.inventory import Inventory
from ..paths import REPO_ROOT, RESULTS_DIR
from ..plan.spec import NAME_RE, SweepSpec
from ..records import RunRecord
from ..run.connections import LabConnections, PasswordError, ProvisionedSettings, read_password
from ..run.results import RunFolder
from .usage import EXIT_FAILED, UsageError


def new_run_folder(results_dir: str | None, run_id: str) -> RunFolder:
    if not NAME_RE.match(run_id):
        raise UsageError(f"--run-id: must be letters, digits, _ . - ; got {run_id!r}")
    folder = RunFolder(Path(results_dir) if results_dir else RESULTS_DIR, run_id)
    if folder.path.exists() and any(folder.path.iterdir()):
        raise UsageError(f"--run-id: {folder.path} already exists")
    return folder


def password() -> str | None:
    """None when this machine has no RabbitMQ password yet: preflight says to provision."""
    try:
        return read_password()
    except PasswordError:
        return None


def connect(lab: Inventory, run_id: str) -> LabConnections:
    return LabConnections(lab, run_id, password())


def require_preflight(real: LabConnections) -> None:
    problems = real.preflight()
    if problems:  # a headline saying what to do, then its details
        raise UsageError("\n  ".join(problems), EXIT_FAILED)


def git_info() -> dict[str, Any]:
    """The run's git_commit and git_dirty (tracked files differ from the commit), and when dirty
    that difference as git_diff, which the run folder keeps beside run.json
    (offload_lab.run.results)."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        if commit.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        state: dict[str, Any] = {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
        if state["git_dirty"]:
            state["git_diff"] = git("diff", "HEAD").stdout
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return state


def local_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    try:
        from ansible.release import __version__ as ansible_core

        out["ansible_core"] = ansible_core
    except ImportError:
        out["ansible_core"] = None
    try:
        import fabric

        out["fabric"] = fabric.__version__
    except ImportError:
        out["fabric"] = None
    return out


def run_record(
    spec: SweepSpec, real: LabConnections, lab: Inventory, provisioned: ProvisionedSettings, **fields: Any
) -> tuple[RunRecord, str | None]:
    """What run.json says of a run before its first step, for `fab sweep` and `fab capacity`
    alike (`fields`: what only one of them records), and the diff of a dirty tree, which the
    run folder keeps beside it."""
    settings = provisioned.recorded()
    names = real.inv.names.broker
    settings["broker"] = {
        "management_url": real.mgmt.base_url,
        "vhost": names.vhost,
        "queue": names.task_queue,
    }
    git = git_info()
    record = RunRecord(
        spec_name=spec.name,
        spec=spec.as_dict(),
        git_commit=git["git_commit"],
        git_dirty=git["git_dirty"],
        versions={"k6": real.k6.version(), **local_versions(), "rabbitmq": real.mgmt.version()},
        inventory=lab.source,
        hosts=real.hosts_with_cpus(),
        settings=settings,
        **fields,
    )
    return record, git.get("git_diff")
