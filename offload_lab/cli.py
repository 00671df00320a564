"""What `fab sweep`, `fab check` and `fab report` do; fabfile.py only forwards options here.

Errors the user can fix raise `UsageError` (message names the bad value; exit status 2)."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import inventory as inventory_mod
from . import spec as spec_mod
from .broker import DEAD_LETTER_QUEUE, TASK_QUEUE, BrokerError, ManagementAPI
from .core import CoreError, CoreStats
from .gateway import CORE_ENV, GATEWAY_ENV, GatewaySettings, http_ok
from .k6 import RemoteK6
from .remote import CpuSampler, Remote, RemoteError, mask_secrets, parse_env_file
from .results import RESULTS_DIR, RunFolder, make_run_id, newest_run
from .spec import REPO_ROOT, SpecError
from .sweep import Lab, Sweep

PASSWORD_FILE = REPO_ROOT / ".secrets" / "rabbitmq_password"
MGMT_USER = "offload"
VHOST = "offload"
GATEWAY_PORT = 8000
CORE_PORT = 8080
MGMT_PORT = 15672

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def echo(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# planning: everything checked before any load


def plan(spec_arg: str, options: dict[str, Any], inventory: str | None):
    """Spec + overrides + inventory, all validated; raises UsageError naming what is wrong."""
    try:
        overrides = spec_mod.parse_overrides(options)
        spec = spec_mod.load(spec_arg, overrides)
    except SpecError as exc:
        raise UsageError(f"{exc.source}:\n  " + "\n  ".join(exc.problems)) from exc
    steps = spec_mod.expand_steps(spec)
    try:
        lab = inventory_mod.load(inventory)
    except inventory_mod.InventoryError as exc:
        raise UsageError(str(exc)) from exc
    return spec, overrides, steps, lab


def describe_plan(spec: dict[str, Any], steps, lab) -> str:
    lines = [
        f"spec {spec['name']}: {len(steps)} steps, {spec['duration_s']} s each, "
        f"VUs {spec['pre_allocated_vus']}/{spec['max_vus']}, work {spec['work_ms']} ms, "
        f"order {spec['order']}"
        + (f", every point {spec['repeat']} times" if spec.get("repeat", 1) > 1 else "")
        + f"; at least {spec_mod.estimate_seconds(spec):.0f} s plus drains",
        "  "
        + ", ".join(f"{s.rate} {s.mode}" + (f" [{s.label}]" if s.label != s.mode else "") for s in steps),
        f"inventory {lab.source}: "
        + ", ".join(f"{g}={'/'.join(h.address for h in hs)}" for g, hs in lab.groups.items()),
    ]
    return "\n".join(lines)


def read_password(path: Path = PASSWORD_FILE) -> str:
    env = os.environ.get("OFFLOAD_RABBITMQ_PASSWORD")
    if env:
        return env
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"RabbitMQ password: cannot read {path} ({exc.strerror}); provision first") from exc


class RealLab:
    """Connections and clients for one inventory."""

    def __init__(self, lab: inventory_mod.Lab, run_id: str, password: str):
        self.inv = lab
        self.remotes = {h.name: Remote(h) for h in lab.all_hosts()}
        self.gateway_url = f"http://{lab.gateway.address}:{GATEWAY_PORT}"
        self.mgmt = ManagementAPI(f"http://{lab.broker.address}:{MGMT_PORT}", MGMT_USER, password, VHOST)
        self.core = CoreStats({h.name: f"http://{h.address}:{CORE_PORT}" for h in lab.cores})
        self.k6 = RemoteK6(self.remotes[lab.loadgen.name], run_id, self.gateway_url)
        self.gateway = GatewaySettings(self.remotes[lab.gateway.name], self.gateway_url)
        self.cpu = CpuSampler(self.remotes)

    def preflight(self) -> list[str]:
        """Reachability of everything a sweep needs; returns the problems found (no load sent)."""
        problems = []
        for name, r in self.remotes.items():
            try:
                r.run("true", timeout=20)
            except RemoteError as exc:
                problems.append(f"ssh {name}: {exc}")
        if not problems and not self.k6.version():
            problems.append(f"loadgen {self.inv.loadgen.name}: `k6 version` failed (is k6 installed?)")
        if not http_ok(f"{self.gateway_url}/healthz", timeout=5):
            problems.append(f"gateway: {self.gateway_url}/healthz does not answer")
        try:
            self.core.read()
        except CoreError as exc:
            problems.append(f"core: {exc}")
        try:
            self.mgmt.queue_depth(TASK_QUEUE)
            self.mgmt.queue_depth(DEAD_LETTER_QUEUE)
        except BrokerError as exc:
            problems.append(f"broker management API: {exc}")
        return problems

    def sweep_lab(self) -> Lab:
        return Lab(
            k6=self.k6,
            core=self.core,
            gateway=self.gateway,
            cpu=self.cpu,
            queue_depth=self.mgmt.queue_depth,
            host_groups={h.name: h.group for h in self.inv.all_hosts()},
        )

    def settings(self) -> dict[str, dict[str, str]]:
        gw = parse_env_file(self.remotes[self.inv.gateway.name].read_text(GATEWAY_ENV))
        cores = {}
        for h in self.inv.cores:
            cores[h.name] = mask_secrets(parse_env_file(self.remotes[h.name].read_text(CORE_ENV)))
        core = next(iter(cores.values())) if len(cores) == 1 else cores
        return {"gateway": mask_secrets(gw), "core": core, "_gateway_raw": gw}

    def hosts_with_cpus(self) -> dict[str, list[dict[str, Any]]]:
        snap = self.cpu.snapshot()
        return {
            g: [
                {
                    "name": h.name,
                    "address": h.address,
                    "cpus": (snap.get(h.name) or {}).get("cpus"),
                    "cpu_list": (snap.get(h.name) or {}).get("cpu_list"),
                }
                for h in hs
            ]
            for g, hs in self.inv.groups.items()
        }

    def close(self) -> None:
        for r in self.remotes.values():
            r.close()


def git_info() -> tuple[str | None, bool | None]:
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None, None
    if commit.returncode != 0:
        return None, None
    return commit.stdout.strip(), bool(dirty.stdout.strip())


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


# --------------------------------------------------------------------------------------------
# commands


def check(spec_arg: str, options: dict[str, Any], inventory: str | None, preflight: bool = False) -> int:
    spec, overrides, steps, lab = plan(spec_arg, options, inventory)
    echo(describe_plan(spec, steps, lab))
    if preflight:
        real = RealLab(lab, "preflight", read_password())
        try:
            problems = real.preflight()
        finally:
            real.close()
        if problems:
            raise UsageError("preflight:\n  " + "\n  ".join(problems), EXIT_FAILED)
        echo("preflight: every host and service answers")
    echo("ok")
    return 0


def sweep(
    spec_arg: str,
    options: dict[str, Any],
    inventory: str | None = None,
    results_dir: str | None = None,
    run_id: str | None = None,
) -> int:
    spec, overrides, steps, lab = plan(spec_arg, options, inventory)
    password = read_password()
    run_id = run_id or make_run_id(spec["name"])
    if not spec_mod.NAME_RE.match(run_id):
        raise UsageError(f"--run-id: must be letters, digits, _ . - ; got {run_id!r}")
    folder = RunFolder(Path(results_dir) if results_dir else RESULTS_DIR, run_id)
    if folder.path.exists() and any(folder.path.iterdir()):
        raise UsageError(f"--run-id: {folder.path} already exists")
    echo(describe_plan(spec, steps, lab))

    real = RealLab(lab, run_id, password)
    try:
        problems = real.preflight()
        if problems:
            raise UsageError("preflight (no load sent):\n  " + "\n  ".join(problems), EXIT_FAILED)
        settings = real.settings()
        gateway_raw = settings.pop("_gateway_raw")
        settings["broker"] = {"management_url": real.mgmt.base_url, "vhost": VHOST, "queue": TASK_QUEUE}
        commit, dirty = git_info()
        versions = {"k6": real.k6.version(), **local_versions(), "rabbitmq": real.mgmt.version()}
        real.k6.prepare()
        meta = {
            "spec_name": spec["name"],
            "spec": spec,
            "overrides": overrides,
            "git_commit": commit,
            "git_dirty": dirty,
            "versions": versions,
            "inventory": lab.source,
            "hosts": real.hosts_with_cpus(),
            "settings": settings,
            "planned_steps": [s.filename for s in steps],
        }
        echo(f"run {run_id} -> {folder.path}")
        status = Sweep(spec, steps, real.sweep_lab(), folder, gateway_raw, echo).run(meta)
        with contextlib.suppress(RemoteError, KeyboardInterrupt):
            real.k6.cleanup()
    finally:
        real.close()
    t = folder.run.get("timing", {})
    echo(
        f"run {run_id}: {status}, {len(folder.run['steps'])}/{len(steps)} steps, "
        f"wall {t.get('wall_s', 0):.0f} s (x{t.get('overhead_ratio') or 0:.3f} of load + drain), "
        f"{folder.path}"
    )
    if status == "complete":
        return 0
    return EXIT_INTERRUPTED if status == "interrupted" else EXIT_FAILED


def report(run_dir: str | None = None, results_dir: str | None = None) -> int:
    if run_dir:
        path = Path(run_dir)
        if not (path / "run.json").is_file():
            raise UsageError(f"--run: {run_dir} is not a run folder (no run.json)")
    else:
        path = newest_run(Path(results_dir) if results_dir else RESULTS_DIR)
        if path is None:
            raise UsageError(f"no run folder under {results_dir or RESULTS_DIR}: run `fab sweep` first")
    echo(f"report for {path}")
    return subprocess.run([sys.executable, "-m", "analysis", str(path)], cwd=REPO_ROOT).returncode
