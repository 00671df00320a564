"""The step loop. Every remote call goes through a collaborator passed in (`SweepServices`,
offload_lab.run.sweep_services), so tests can run the loop against fakes; offload_lab.cli builds the
real ones (SSH, HTTP, management API). A step's pieces that need no remote call are in
offload_lab.run.step_parts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..plan.core_spec import LEDGER, effective_core
from ..plan.gateway_spec import GATEWAY_DEFAULTS, GATEWAY_KEYS
from ..plan.limits import limit_of_step, measured_median_ms
from ..plan.spec import SweepSpec
from ..plan.steps import PlannedStep
from ..records import RunRecord, StepRecord
from ..services.broker import QueueSampler, depth_total
from ..services.broker_settings import SWEEP_CONF
from ..services.outcomes import OutcomeQueue, collect_ledger, wait_until_empty, with_effects
from ..services.retry_queues import RetryQueues, samples_retries, waiting_retries
from .results import RunFolder, utcnow
from .step_parts import (
    format_headline,
    host_cpu,
    keep_partial_summary,
    precise_drain,
    step_parameters,
    step_start_line,
    with_load_generators,
)
from .sweep_services import NO_TIMELINE, GatewayLike, SweepServices


def effective_gateway(provisioned: dict[str, str], step_settings: dict[str, str]) -> dict[str, str]:
    """What the gateway runs with during a step: documented defaults < gateway.env < the step's."""
    base = {**GATEWAY_DEFAULTS, **{k: v for k, v in provisioned.items() if k in GATEWAY_KEYS}}
    return {**base, **step_settings}


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
        on_step: Callable[[PlannedStep, StepRecord], None] | None = None,
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
        self.interrupted_step: dict[str, str] | None = None  # its partial k6 summary, if kept

    def run(self, run: RunRecord, git_diff: str | None = None) -> str:
        """Run every step; returns the run's final status (complete, interrupted or failed).
        `run`: the run's record before its first step; `git_diff`: what a dirty tree differed by."""
        lab = self.lab
        self.folder.create(run, git_diff)
        t_start = lab.clock()
        status, error = "failed", None
        cooldowns = 0.0
        try:
            if lab.broker_settings is not None:
                lab.broker_settings.begin()
            lab.gateway.begin()
            if lab.core_settings is not None:
                lab.core_settings.begin()
            if lab.calibrate is not None:
                self.echo("calibration: POST /noop, a short fixed load (offload_lab/run/calibration.py)")
                self.folder.run.calibration = lab.calibrate()
                self.folder.save()
            for i, step in enumerate(self.steps):
                if i > 0 and self.spec.cooldown_s:
                    t = lab.clock()
                    lab.sleep(self.spec.cooldown_s)
                    cooldowns += lab.clock() - t
                self.echo(step_start_line(step, self.total, self.spec.drain_timeout_s))
                record = self.run_step(step)
                self.folder.add_step(record)
                self.echo(format_headline(step, self.total, record))
                if self.on_step is not None:
                    self.on_step(step, record)
            status = "complete"
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (offload_lab.run.signals)
            status, error = "interrupted", f"interrupted ({exc or 'Ctrl-C'})"
            self.echo(f"interrupted: keeping {len(self.folder.run.steps)} finished step(s)")
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
            if self.interrupted_step:
                extra["interrupted_step"] = self.interrupted_step
            self.folder.finish(status, **extra)
        return status

    def _restore(self) -> str | None:
        errors = []
        if self.lab.broker_settings is not None:  # first: it restarts the gateway and cores too
            errors.append(self._restore_one("broker", self.lab.broker_settings))
        errors.append(self._restore_one("gateway", self.lab.gateway))
        if self.lab.core_settings is not None:
            errors.append(self._restore_one("core", self.lab.core_settings))
        return "; ".join(e for e in errors if e) or None

    def _restore_one(self, name: str, settings: GatewayLike) -> str | None:
        try:
            settings.restore()
            return None
        except KeyboardInterrupt:
            where = SWEEP_CONF if name == "broker" else f"/etc/offload/{name}.sweep.env"
            return f"{name} restore interrupted: remove {where} and restart by hand"
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

    def run_step(self, step: PlannedStep) -> StepRecord:
        lab = self.lab
        t_begin = lab.clock()
        broker_stats_ms = step.instruments.broker_stats_ms()
        restarted = lab.broker_settings.apply(broker_stats_ms) if lab.broker_settings is not None else False
        restarted = lab.gateway.apply(step.gateway) or restarted
        if lab.core_settings is not None:
            restarted = lab.core_settings.apply(step.core) or restarted
        t_ready = lab.clock()
        task_queue = lab.broker_names.task_queue
        waited_empty_s = wait_until_empty(
            self._queued,
            lab.core.idle,
            lab.empty_timeout_s,
            task_queue if lab.queue_depths is None else f"{task_queue} and its delay queues",
            clock=lab.clock,
            sleep=lab.sleep,
        )
        # retries wait in delay queues (services/retry_queues.py): sampled with the task queue when used
        step_core = effective_core(self.provisioned_cores[0], step.core)
        retry = RetryQueues.of(step_core, task_queue)
        sampled = retry if retry and samples_retries(step.mode, step_core) else None  # used
        # records left from before (a step the sweep gave up on): counted, then out of the way
        ledger_reader = self._ledger_reader(step)
        leftover_records = len(ledger_reader.take()) if ledger_reader is not None else None
        lab.core.reset()
        cpu_before = lab.cpu.snapshot()
        instruments = step.instruments
        sampler = QueueSampler(
            lambda: lab.queue_depth(task_queue),
            task_queue,
            interval_s=lab.sample_interval_s or instruments.queue_sampling_s,
            clock=lab.clock,
            idle=lab.core.idle,
            others=self._retry_depths(sampled),
        )
        started_at = utcnow()
        t0_unix_s = time.time()
        sampler.start()
        # long enough for the load, k6's graceful stop and the longest drain
        limit_s = step.duration_s + step.request_timeout_s + self.spec.drain_timeout_s + 60
        cpu_timeline = (
            lab.cpu.timeline(t0_unix_s, limit_s, lab.sample_interval_s or instruments.host_sampling_s)
            if instruments.host_sampling_s
            else NO_TIMELINE
        )
        cpu_timeline.start()
        t_load = lab.clock()
        load_started_unix_s = time.time()
        faults = lab.faults(step.faults) if (step.faults and lab.faults) else None
        started: dict[str, float] = {}

        def load_started(unix_s: float) -> None:
            started["unix_s"] = unix_s
            if faults is not None:
                faults.start(unix_s)  # fault times count from the start of the load

        try:
            if getattr(lab.k6, "reports_load_start", False):  # paused load generators
                summary = lab.k6.run(step, on_start=load_started)
            else:
                load_started(load_started_unix_s)
                summary = lab.k6.run(step)
        except KeyboardInterrupt:
            sampler.stop()
            cpu_timeline.stop()
            if faults is not None:
                faults.abort()
            self.echo(f"Ctrl-C: stopping k6 on the loadgen host(s) (step {step.filename} is dropped)")
            try:
                partial = lab.k6.stop()
                if partial is not None:
                    self.interrupted_step = keep_partial_summary(self.folder.path, step, partial)
                    self.echo(f"k6's partial summary kept: {self.interrupted_step['k6_summary']}")
            except Exception as exc:
                self.echo(f"could not stop k6: {exc}")
            raise
        except BaseException:
            sampler.stop()
            cpu_timeline.stop()
            if faults is not None:
                faults.abort()
            raise
        load_started_unix_s = started.get("unix_s", load_started_unix_s)
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
            broker["dead_letter_depth"] = depth_total(lab.queue_depth(lab.broker_names.dead_letter_queue))
        except Exception:
            broker["dead_letter_depth"] = None
        if sampled is not None and sampler.others is not None:
            broker["retry_queues"] = sampled.report(sampler.other_samples, sampler.other_errors)
        broker["facts"] = self._broker_facts(sampled.names if sampled else [])  # + their settings
        core = lab.core.read()
        precise_drain(broker, core, load_end_wall_s)
        cpu_after = lab.cpu.snapshot()
        # after the CPU reading: filtering costs loadgen CPU
        samples = self._pull_samples(step) if instruments.samples else None
        fault_records = faults.join() if faults is not None else []
        samples_file = samples["file"] if samples else None
        fault_records = with_effects(
            fault_records, self.folder.path, samples_file, load_end_wall_s, step.mode
        )
        cores = [effective_core(provisioned, step.core) for provisioned in self.provisioned_cores]
        ledger = self._ledger(step, ledger_reader, samples_file, broker)
        ended_at = utcnow()
        t_end = lab.clock()

        hosts = host_cpu(cpu_before, cpu_after, lab.host_groups)
        samples_path = self.folder.path / samples_file if samples_file else None
        flagged = with_load_generators(summary, samples_path, hosts, step)
        if flagged:
            self.echo(f"step {step.filename}: load generator(s) flagged: {', '.join(flagged)}")

        params = step_parameters(
            step,
            effective_gateway(self.provisioned_gateway, step.gateway),
            cores[0],
            {
                **instruments.as_dict(),
                "ledger": cores[0][LEDGER],
                "broker_stats_s": lab.broker_settings.effective_s(broker_stats_ms)
                if lab.broker_settings is not None
                else instruments.broker_stats_s,
            },
        )
        limit = limit_of_step(step, params.gateway, cores, measured_median_ms(summary))
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
        return StepRecord(
            step=params,
            limit=limit.as_dict(),
            started_at=started_at,
            load_ended_at=load_ended_at,
            ended_at=ended_at,
            clock={
                "t0_unix_s": round(t0_unix_s, 3),
                "load_started_unix_s": round(load_started_unix_s, 3),
                "load_ended_unix_s": round(load_end_wall_s, 3),
            },
            k6=summary,
            core=core,
            broker=broker,
            hosts=hosts,
            hosts_timeline=hosts_timeline,
            samples=samples,
            ledger=ledger,
            faults=fault_records,
            waited_for_empty_queue_s=waited_empty_s,
            outcome_records_left_before=leftover_records,
        )

    def _retry_depths(self, retry: RetryQueues | None):
        """What the queue sampler reads of the delay queues each time (None: nothing)."""
        listing = self.lab.queue_depths
        if retry is None or listing is None:
            return None
        return lambda: retry.depths(listing())

    def _queued(self) -> int:
        """Messages in the task queue, and in its delay queues where they can be read (a listing
        that fails counts none: the task queue's depth alone, as before retries)."""
        lab, task_queue = self.lab, self.lab.broker_names.task_queue
        queued = depth_total(lab.queue_depth(task_queue))
        try:
            return queued + (waiting_retries(lab.queue_depths(), task_queue) if lab.queue_depths else 0)
        except Exception:  # noqa: BLE001
            return queued

    def _broker_facts(self, delay_queues: list[str]) -> dict[str, Any] | None:
        """The broker's version and queue settings, read after the step (None: no way to read them)."""
        if self.lab.broker_facts is None:
            return None
        try:
            return self.lab.broker_facts(delay_queues)
        except Exception as exc:  # noqa: BLE001 - a step is not lost for want of its broker facts
            return {"error": str(exc)}

    def _ledger_reader(self, step: PlannedStep):
        """Where the step's outcome records are read (None: sync, or the ledger is off)."""
        if step.mode != "async":
            return None
        mode = effective_core(self.provisioned_cores[0], step.core)[LEDGER]
        return self.lab.ledgers.get(mode)

    def _ledger(
        self, step: PlannedStep, reader: OutcomeQueue | None, samples_file: str | None, broker: dict[str, Any]
    ):
        """The step's ledger by task id (async only: sync tasks never reach the queue)."""
        if reader is None:
            return None
        still_queued = 0 if broker.get("drained") else None
        if still_queued is None:
            try:
                still_queued = self._queued()  # retries waiting in delay queues too
            except Exception:
                still_queued = None
        try:
            return collect_ledger(
                reader,
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
