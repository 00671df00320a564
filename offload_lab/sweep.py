"""The step loop. Every remote call goes through a collaborator passed in (`SweepServices`), so
tests can run the loop against fakes; offload_lab.cli builds the real ones (SSH, HTTP, management
API)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from analysis.load import step_from_dict
from analysis.metrics import StepMetrics, compute_metrics

from .broker import DEAD_LETTER_QUEUE, TASK_QUEUE, QueueDepth, QueueSampler, depth_total
from .core_settings import effective_core
from .cpu import cpu_pct
from .faults import FaultSpec
from .gateway_spec import GATEWAY_DEFAULTS, GATEWAY_KEYS
from .limits import limit_of_step, measured_median_ms
from .outcomes import OutcomeQueue, collect_ledger, wait_until_empty, with_effects
from .results import RunFolder, utcnow
from .spec import SweepSpec
from .steps import PlannedStep


class K6Like(Protocol):
    def run(self, step: PlannedStep) -> dict[str, Any]: ...
    def stop(self) -> None: ...
    def pull_samples(self, step: PlannedStep, local_path: Path) -> int | None: ...


class CoreLike(Protocol):
    def reset(self) -> None: ...
    def read(self) -> dict[str, Any]: ...
    def idle(self) -> bool: ...


class GatewayLike(Protocol):
    def begin(self) -> None: ...
    def apply(self, settings: dict[str, str]) -> bool: ...
    def restore(self) -> bool: ...


class TimelineLike(Protocol):
    def start(self) -> None: ...
    def stop(self) -> dict[str, Any]: ...


class FaultsLike(Protocol):
    def start(self, load_started_unix_s: float) -> None: ...
    def join(self) -> list[dict[str, Any]]: ...
    def abort(self) -> None: ...


class CpuLike(Protocol):
    def snapshot(self) -> dict[str, dict[str, int] | None]: ...
    def timeline(self, t0_unix_s: float, limit_s: float, interval_s: float = 1.0) -> TimelineLike: ...


@dataclass
class SweepServices:
    """What the sweep drives and reads, one object per remote concern (k6, core, gateway,
    CPU counters, queue depths); fakes stand in for them in tests."""

    k6: K6Like
    core: CoreLike
    gateway: GatewayLike
    cpu: CpuLike
    queue_depth: Callable[[str], QueueDepth | int]  # queue name -> its depth
    host_groups: dict[str, str] = field(default_factory=dict)  # host name -> group, for step files
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    sample_interval_s: float = 1.0
    task_queue: str = TASK_QUEUE  # the queue the gateway publishes to, as provisioned
    outcomes: OutcomeQueue | None = None  # the core's outcome records (None: no ledger)
    faults: Callable[[tuple[FaultSpec, ...]], FaultsLike] | None = None  # performs a step's faults
    empty_timeout_s: float = 60  # how long a step waits for an empty queue before it is refused
    core_settings: GatewayLike | None = None  # switches the cores' settings (core_settings.CoreSettings)


def effective_gateway(provisioned: dict[str, str], step_settings: dict[str, str]) -> dict[str, str]:
    """What the gateway runs with during a step: documented defaults < gateway.env < the step's."""
    base = {**GATEWAY_DEFAULTS, **{k: v for k, v in provisioned.items() if k in GATEWAY_KEYS}}
    return {**base, **step_settings}


# --------------------------------------------------------------------------------------------
# the line printed after each step: the report's own figures (analysis.metrics), not a copy


def headline(step: PlannedStep, data: dict[str, Any]) -> StepMetrics:
    warnings: list[str] = []
    record = step_from_dict(data, f"steps/{step.filename}", warnings)
    if record is None:
        raise ValueError(f"step {step.filename}: unreadable ({'; '.join(warnings)})")
    return compute_metrics(record)


def _fmt(value: float | None, scale: float = 1.0, unit: str = "") -> str:
    return "n/a" if value is None else f"{value * scale:.1f}{unit}"


def step_start_line(step: PlannedStep, total: int, drain_timeout_s: float) -> str:
    label = f" [{step.label}]" if step.label != step.mode else ""
    drain = f", then up to {drain_timeout_s:g} s for the queue to drain" if step.mode == "async" else ""
    return (
        f"step {step.index:>2}/{total} {step.mode:<5} {step.rate:>4}/s{label}: "
        f"{step.duration_s} s of load{drain} ..."
    )


def format_headline(step: PlannedStep, total: int, data: dict[str, Any]) -> str:
    m = headline(step, data)
    label = f" [{step.label}]" if step.label != step.mode else ""
    peak = "-" if m.backlog_peak is None else f"{m.backlog_peak:g}"
    drain = (
        "never" if m.drained is False or (m.is_async and m.drain_s is None) else _fmt(m.drain_s, unit=" s")
    )
    return (
        f"step {step.index:>2}/{total} {step.mode:<5} {step.rate:>4}/s{label}: "
        f"avg {_fmt(m.lat_avg)} ms, p95 {_fmt(m.lat_p95)} ms, throughput {_fmt(m.throughput)}/s, "
        f"dropped {_fmt(m.drop_rate, 100)} %, errors {_fmt(m.error_rate, 100)} %, backlog peak {peak} "
        f"(drain {drain})"
    )


# --------------------------------------------------------------------------------------------


class Sweep:
    def __init__(
        self,
        spec: SweepSpec,
        steps: list[PlannedStep],
        lab: SweepServices,
        folder: RunFolder,
        provisioned_gateway: dict[str, str] | None = None,
        echo: Callable[[str], None] = print,
        provisioned_cores: list[dict[str, str]] | None = None,
        total: int | None = None,
        on_step: Callable[[PlannedStep, dict[str, Any]], None] | None = None,
    ):
        """`steps` may be any iterable (offload_lab.capacity plans each probe from the last one's
        result, which `on_step` hands it); `total` is then what the progress lines count to."""
        self.spec = spec
        self.steps = steps
        self.lab = lab
        self.folder = folder
        self.provisioned_gateway = provisioned_gateway or {}
        self.provisioned_cores = provisioned_cores or [{}]  # each core host's core.env
        self.echo = echo
        self.total = total if total is not None else len(steps)
        self.on_step = on_step
        self.timing: dict[str, Any] = {"steps": []}

    def run(self, run_meta: dict[str, Any]) -> str:
        """Run every step; returns the run's final status (complete, interrupted or failed)."""
        lab = self.lab
        self.folder.create(run_meta)
        t_start = lab.clock()
        status, error = "failed", None
        cooldowns = 0.0
        try:
            lab.gateway.begin()
            if lab.core_settings is not None:
                lab.core_settings.begin()
            for i, step in enumerate(self.steps):
                if i > 0 and self.spec.cooldown_s:
                    t = lab.clock()
                    lab.sleep(self.spec.cooldown_s)
                    cooldowns += lab.clock() - t
                self.echo(step_start_line(step, self.total, self.spec.drain_timeout_s))
                data = self.run_step(step)
                self.folder.add_step(step.filename, data)
                self.echo(format_headline(step, self.total, data))
                if self.on_step is not None:
                    self.on_step(step, data)
            status = "complete"
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (offload_lab.signals)
            status, error = "interrupted", f"interrupted ({exc or 'Ctrl-C'})"
            self.echo(f"interrupted: keeping {len(self.folder.run['steps'])} finished step(s)")
        except Exception as exc:  # a step that cannot be measured ends the sweep
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            self.echo(f"sweep failed: {error}")
        finally:
            restore_error = self._restore()
            wall = lab.clock() - t_start
            self.timing.update(self._timing_totals(wall, cooldowns))
            extra: dict[str, Any] = {"timing": self.timing}
            if error:
                extra["error"] = error
            if restore_error:
                extra["restore_error"] = restore_error
            self.folder.finish(status, **extra)
        return status

    def _restore(self) -> str | None:
        errors = [self._restore_one("gateway", self.lab.gateway)]
        if self.lab.core_settings is not None:
            errors.append(self._restore_one("core", self.lab.core_settings))
        return "; ".join(e for e in errors if e) or None

    def _restore_one(self, name: str, settings: GatewayLike) -> str | None:
        try:
            settings.restore()
            return None
        except KeyboardInterrupt:
            return f"{name} restore interrupted: remove /etc/offload/{name}.sweep.env and restart by hand"
        except Exception as exc:
            msg = f"{name} restore failed: {exc}"
            self.echo(msg)
            return msg

    def _timing_totals(self, wall: float, cooldowns: float) -> dict[str, Any]:
        steps = self.timing["steps"]
        load = sum(s["duration_s"] for s in steps)
        # a queue that never drained cost the whole wait
        drains = sum(s["drain_wait_s"] if s["drain_s"] is None else s["drain_s"] for s in steps)
        base = load + drains
        return {
            "wall_s": round(wall, 3),
            "duration_s_sum": load,
            "drain_s_sum": round(drains, 3),
            "cooldown_s_sum": round(cooldowns, 3),
            "overhead_ratio": round(wall / base, 4) if base else None,
            "overhead_ratio_excl_cooldown": round((wall - cooldowns) / base, 4) if base else None,
        }

    def run_step(self, step: PlannedStep) -> dict[str, Any]:
        lab = self.lab
        t_begin = lab.clock()
        restarted = lab.gateway.apply(step.gateway)
        if lab.core_settings is not None:
            restarted = lab.core_settings.apply(step.core) or restarted
        t_ready = lab.clock()
        waited_empty_s = wait_until_empty(
            lambda: lab.queue_depth(lab.task_queue),
            lab.core.idle,
            lab.empty_timeout_s,
            lab.task_queue,
            clock=lab.clock,
            sleep=lab.sleep,
        )
        # records left from before (a step the sweep gave up on): counted, then out of the way
        leftover_records = len(lab.outcomes.take()) if lab.outcomes is not None else None
        lab.core.reset()
        cpu_before = lab.cpu.snapshot()
        sampler = QueueSampler(
            lambda: lab.queue_depth(lab.task_queue),
            interval_s=lab.sample_interval_s,
            clock=lab.clock,
            idle=lab.core.idle,
            queue=lab.task_queue,
        )
        started_at = utcnow()
        t0_unix_s = time.time()
        sampler.start()
        # long enough for the load, k6's graceful stop and the longest drain
        limit_s = step.duration_s + step.request_timeout_s + self.spec.drain_timeout_s + 60
        cpu_timeline = lab.cpu.timeline(t0_unix_s, limit_s, lab.sample_interval_s)
        cpu_timeline.start()
        t_load = lab.clock()
        load_started_unix_s = time.time()
        faults = lab.faults(step.faults) if (step.faults and lab.faults) else None
        if faults is not None:
            faults.start(load_started_unix_s)
        try:
            summary = lab.k6.run(step)
        except KeyboardInterrupt:
            sampler.stop()
            cpu_timeline.stop()
            if faults is not None:
                faults.abort()
            self.echo(f"Ctrl-C: stopping k6 on the loadgen host (step {step.filename} is dropped)")
            try:
                lab.k6.stop()
            except Exception as exc:
                self.echo(f"could not stop k6: {exc}")
            raise
        except BaseException:
            sampler.stop()
            cpu_timeline.stop()
            if faults is not None:
                faults.abort()
            raise
        t_load_end = lab.clock()
        load_end_wall_s = time.time()
        load_ended_at = utcnow()
        sampler.load_ended()
        try:
            sampler.wait_drained(self.spec.drain_timeout_s)
        finally:
            sampler.stop()  # also when Ctrl-C lands while waiting
            hosts_timeline = cpu_timeline.stop()
        t_drained = lab.clock()
        broker = sampler.report()
        try:
            broker["dead_letter_depth"] = depth_total(lab.queue_depth(DEAD_LETTER_QUEUE))
        except Exception:
            broker["dead_letter_depth"] = None
        core = lab.core.read()
        precise_drain(broker, core, load_end_wall_s)
        cpu_after = lab.cpu.snapshot()
        samples = self._pull_samples(step)  # after the CPU reading: filtering costs loadgen CPU
        fault_records = faults.join() if faults is not None else []
        samples_file = samples["file"] if samples else None
        fault_records = with_effects(
            fault_records, self.folder.path, samples_file, load_end_wall_s, step.mode
        )
        ledger = self._ledger(step, samples_file, broker)
        ended_at = utcnow()
        t_end = lab.clock()

        hosts: dict[str, Any] = {}
        for name, after in cpu_after.items():
            before = cpu_before.get(name)
            entry: dict[str, Any] = {"group": lab.host_groups.get(name), "cpu_pct": None, "cpus": None}
            if after:
                entry["cpus"] = after["cpus"]
            if before and after:
                entry["cpu_pct"] = cpu_pct(before, after)
            hosts[name] = entry

        step_info = step.as_dict()
        step_info["gateway"] = effective_gateway(self.provisioned_gateway, step.gateway)
        step_info["gateway_overrides"] = dict(step.gateway)
        cores = [effective_core(provisioned, step.core) for provisioned in self.provisioned_cores]
        step_info["core"] = cores[0]
        step_info["core_overrides"] = dict(step.core)
        limit = limit_of_step(step, step_info["gateway"], cores, measured_median_ms(summary))
        self.timing["steps"].append(
            {
                "step": step.filename,
                "duration_s": step.duration_s,
                "gateway_restart_s": round(t_ready - t_begin, 3) if restarted else 0.0,
                "load_s": round(t_load_end - t_load, 3),
                "drain_s": broker["drain_s"],
                "drain_wait_s": round(t_drained - t_load_end, 3),
                "wall_s": round(t_end - t_begin, 3),
            }
        )
        return {
            "step": step_info,
            "limit": limit.as_dict(),
            "started_at": started_at,
            "load_ended_at": load_ended_at,
            "ended_at": ended_at,
            "clock": {
                "t0_unix_s": round(t0_unix_s, 3),
                "load_started_unix_s": round(load_started_unix_s, 3),
                "load_ended_unix_s": round(load_end_wall_s, 3),
            },
            "k6": summary,
            "core": core,
            "broker": broker,
            "hosts": hosts,
            "hosts_timeline": hosts_timeline,
            "samples": samples,
            "ledger": ledger,
            "faults": fault_records,
            "waited_for_empty_queue_s": waited_empty_s,
            "outcome_records_left_before": leftover_records,
        }

    def _ledger(self, step: PlannedStep, samples_file: str | None, broker: dict[str, Any]):
        """The step's ledger by task id (async only: sync tasks never reach the queue)."""
        if step.mode != "async" or self.lab.outcomes is None:
            return None
        still_queued = 0 if broker.get("drained") else None
        if still_queued is None:
            try:
                still_queued = depth_total(self.lab.queue_depth(self.lab.task_queue))
            except Exception:
                still_queued = None
        try:
            return collect_ledger(
                self.lab.outcomes,
                self.folder.path,
                step.stem,
                samples_file,
                still_queued,
                max_wait_s=self.spec.drain_timeout_s,
                clock=self.lab.clock,
                sleep=self.lab.sleep,
            )
        except Exception as exc:  # a step without its ledger is still a step; say why
            self.echo(f"step {step.filename}: no ledger ({exc})")
            return {"error": str(exc)}

    def _pull_samples(self, step: PlannedStep) -> dict[str, Any] | None:
        """Bring the step's per-request samples home; a step without them is still a step."""
        rel = f"samples/{step.stem}.csv.gz"
        try:
            rows = self.lab.k6.pull_samples(step, self.folder.path / rel)
        except Exception as exc:
            self.echo(f"step {step.filename}: per-request samples not kept ({exc})")
            return None
        return None if rows is None else {"file": rel, "rows": rows}


def precise_drain(broker: dict[str, Any], core: dict[str, Any], load_end_wall_s: float) -> None:
    """Replace the sampled drain time by the core's: its last ack/reject after the end of load.

    The queue is sampled once a second from statistics the broker itself refreshes once a
    second, so the sampled drain time is up to ~2 s late; the core's `last_done_at_ns` is exact
    (hosts share a clock: the lab's kernel, or chrony on VMs). The sampled value is kept."""
    broker["drain_observed_s"] = broker.get("drain_s")
    last_done_ns = core.get("last_done_at_ns") or 0
    if broker.get("drained") and last_done_ns:
        broker["drain_s"] = round(max(0.0, last_done_ns / 1e9 - load_end_wall_s), 3)
