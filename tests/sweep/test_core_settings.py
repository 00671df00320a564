"""The core settings a spec may switch (`core:`): the table agrees with the core's own config,
specs and `--core` are checked, and the switcher writes core.sweep.env as root on every core
host, restarts only on a change, waits for the consumer, and restores at the end of a sweep."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

from offload_lab.plan import spec
from offload_lab.plan.core_spec import CORE_DEFAULTS, CORE_SETTINGS, consumer_concurrency, effective_core
from offload_lab.plan.overrides import OPTION_FOR_KEY, parse_overrides
from offload_lab.plan.spec import SpecError
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord
from offload_lab.run.results import RunFolder, make_run_id
from offload_lab.run.sweep import Sweep, SweepServices
from offload_lab.services.core import SWEEP_ENV, CoreSettings, CoreSettingsError, core_healthy
from offload_lab.services.gateway import GatewaySettings

REPO = Path(__file__).resolve().parents[2]
CONFIG_GO = (REPO / "core-go/internal/config/config.go").read_text()
UNIT_TEMPLATE = (REPO / "roles/core_go/templates/offload-core.service.j2").read_text()
GOOD = {"name": "t", "rates": [50], "duration_s": 1, "max_vus": 10, "cooldown_s": 0, "drain_timeout_s": 1}


def test_the_table_agrees_with_the_cores_config():
    defaults = CONFIG_GO[CONFIG_GO.index("func Defaults()") :]
    field = {"PREFETCH": "Prefetch", "WORK_MAX_CONCURRENT": "WorkMaxConcurrent"}
    for name, go_field in field.items():
        assert re.search(rf"\b{go_field}:\s+{CORE_DEFAULTS[name]},", defaults), name
    assert "MaxInFlight:" not in defaults and CORE_DEFAULTS["MAX_IN_FLIGHT"] == "0"  # 0 = PREFETCH
    assert "if c.MaxInFlight == 0 {\n\t\tc.MaxInFlight = c.Prefetch" in CONFIG_GO
    max_prefetch = int(re.search(r"const MaxPrefetch = (\d+)", CONFIG_GO)[1])
    by_name = {s.name: s for s in CORE_SETTINGS}
    assert (by_name["PREFETCH"].kind.lo, by_name["PREFETCH"].kind.hi) == (1, max_prefetch)
    assert by_name["WORK_MAX_CONCURRENT"].kind.lo == 1 and by_name["MAX_IN_FLIGHT"].kind.lo == 0
    for s in CORE_SETTINGS:
        assert f'("{s.name}"' in CONFIG_GO, s.name  # the core reads it (failure settings:
    for name in ("PREFETCH", "MAX_IN_FLIGHT", "WORK_MAX_CONCURRENT"):  # test_core_failure_settings)
        assert f'env("{name}", integer(' in CONFIG_GO, name


def test_the_unit_reads_the_sweep_file_after_core_env_and_may_lack_it():
    lines = UNIT_TEMPLATE.splitlines()
    provisioned = lines.index("EnvironmentFile={{ core_go_config_dir }}/core.env")
    sweep = lines.index("EnvironmentFile=-{{ core_go_config_dir }}/core.sweep.env")
    assert sweep > provisioned  # later files win: the step's settings over core.env
    assert SWEEP_ENV == "/etc/offload/core.sweep.env"


def test_a_spec_switches_core_settings_per_sweep_and_per_series():
    raw = {
        **GOOD,
        "modes": ["async"],
        "core": {"PREFETCH": 200},
        "series": [
            {"label": "narrow", "core": {"MAX_IN_FLIGHT": "100"}},
            {"label": "wide", "core": {"PREFETCH": 1000}},
        ],
    }
    steps = expand_steps(spec.apply_overrides(raw, {}))
    assert [s.core for s in steps] == [{"PREFETCH": "200", "MAX_IN_FLIGHT": "100"}, {"PREFETCH": "1000"}]
    assert spec.apply_overrides(GOOD, {}).core == {}


@pytest.mark.parametrize(
    "value, problem",
    [
        ({"PREFETCH": 0}, "core.PREFETCH: must be between 1 and 65535, got 0"),
        ({"PREFETCH": 70000}, "core.PREFETCH: must be between 1 and 65535"),
        ({"MAX_IN_FLIGHT": "many"}, "core.MAX_IN_FLIGHT: must be an integer, got 'many'"),
        ({"WORK_MAX_CONCURRENT": 0}, "core.WORK_MAX_CONCURRENT: must be between 1 and 100000"),
        ({"WORK_MS": 5}, "core.WORK_MS: unknown core setting (known: PREFETCH, MAX_IN_FLIGHT, WORK_MAX"),
        ({"FAIL_RATE": 0.1}, "core.FAIL_RATE: unknown core setting (known: "),
        ([1], "core: must be a mapping of core settings"),
    ],
)
def test_bad_core_settings_are_named(value, problem):
    with pytest.raises(SpecError) as info:
        spec.apply_overrides({**GOOD, "core": value}, {})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_the_core_option_merges_over_the_spec_and_names_itself():
    overrides = parse_overrides({"core": "MAX_IN_FLIGHT=100,PREFETCH=100"})
    s = spec.apply_overrides({**GOOD, "core": {"PREFETCH": 500, "WORK_MAX_CONCURRENT": 50}}, overrides)
    assert s.core == {"PREFETCH": "100", "WORK_MAX_CONCURRENT": "50", "MAX_IN_FLIGHT": "100"}
    with pytest.raises(SpecError) as info:
        spec.apply_overrides(GOOD, parse_overrides({"core": "PREFETCH=0"}), option_names=OPTION_FOR_KEY)
    assert info.value.problems[0].startswith("core (--core).PREFETCH: must be between 1")
    assert make_run_id("t", {"core": {"PREFETCH": "100"}}).endswith("-t-core")


FAILURE_DEFAULTS = {
    "TRANSIENT_FAIL_RATE": "0",
    "PERMANENT_FAIL_RATE": "0",
    "RETRY_DELAYS_MS": "1000,4000,16000",
    "RETRY_QUEUE_MAX_LENGTH": "100000",
}


def test_effective_settings_and_the_consumers_concurrency():
    defaults = {
        "PREFETCH": "500",
        "MAX_IN_FLIGHT": "0",
        "WORK_MAX_CONCURRENT": "1000",
        **FAILURE_DEFAULTS,
        "LEDGER": "broker",
    }
    assert effective_core({}, {}) == defaults
    provisioned = {"PREFETCH": "300", "AMQP_URL": "amqp://u:secret@h/v", "LEDGER": "file"}
    mine = effective_core(provisioned, {"MAX_IN_FLIGHT": "100"})
    # no secrets
    assert mine == {
        "PREFETCH": "300",
        "MAX_IN_FLIGHT": "100",
        "WORK_MAX_CONCURRENT": "1000",
        **FAILURE_DEFAULTS,
        "LEDGER": "file",
    }
    assert effective_core(provisioned, {"LEDGER": "off"})["LEDGER"] == "off"  # the step's instruments
    assert consumer_concurrency(mine) == 100
    assert consumer_concurrency(effective_core({}, {})) == 500  # MAX_IN_FLIGHT 0 = PREFETCH
    assert consumer_concurrency({"PREFETCH": "50", "MAX_IN_FLIGHT": "400"}) == 50  # never beyond prefetch


# --------------------------------------------------------------------------------------------
# the switcher


class CoreRemote(RecordingRemote):
    """A core host: `systemctl show` lists the unit's env files (with the sweep file unless told)."""

    def __init__(self, unit_reads_sweep_env=True, sweep_file_exists=False):
        super().__init__()
        self.unit_reads_sweep_env = unit_reads_sweep_env
        if sweep_file_exists:
            self.files[SWEEP_ENV] = "PREFETCH=7\n"

    def run(self, command, check=True, timeout=None, sudo=False):
        result = super().run(command, check, timeout, sudo)
        if command.startswith("systemctl show"):
            files = ["/etc/offload/core.env (ignore_errors=no)"]
            if self.unit_reads_sweep_env:
                files.append(f"{SWEEP_ENV} (ignore_errors=yes)")
            return type(result)("\n".join(f"EnvironmentFiles={f}" for f in files), "", 0)
        return result


def switcher(remotes, healthy=lambda url: True, **kw):
    urls = {name: f"http://{name}:8080" for name in remotes}
    return CoreSettings(remotes, urls, healthy=healthy, sleep=lambda s: None, **kw)


def test_apply_writes_every_core_as_root_restarts_once_per_change_and_restore_removes():
    remotes = {"core1": CoreRemote(), "core2": CoreRemote(sweep_file_exists=True)}
    checked = []
    cores = switcher(remotes, healthy=lambda url: checked.append(url) or True)
    cores.begin()  # the file a killed sweep left goes, that core restarts
    assert SWEEP_ENV not in remotes["core2"].files and remotes["core2"].restarts == 1
    assert remotes["core1"].restarts == 0
    assert cores.apply({"MAX_IN_FLIGHT": "100"}) is True
    for remote in remotes.values():
        assert "MAX_IN_FLIGHT=100" in remote.files[SWEEP_ENV]
        assert all(root for c, root in zip(remote.commands, remote.as_root, strict=True) if "show" not in c)
    assert cores.apply({"MAX_IN_FLIGHT": "100"}) is False  # unchanged: no restart
    assert cores.restore() is True
    assert all(SWEEP_ENV not in r.files for r in remotes.values())
    assert [r.restarts for r in remotes.values()] == [2, 3]
    assert checked.count("http://core1:8080/healthz") == 2


def test_a_unit_that_ignores_the_file_stops_the_switch_before_a_restart():
    remote = CoreRemote(unit_reads_sweep_env=False)
    with pytest.raises(CoreSettingsError, match="does not read /etc/offload/core.sweep.env: provision again"):
        switcher({"core1": remote}).apply({"PREFETCH": "100"})
    assert remote.restarts == 0 and SWEEP_ENV not in remote.files


def test_a_core_that_never_gets_healthy_is_named():
    now = [0.0]

    def sleep(s):
        now[0] += s

    cores = CoreSettings(
        {"core1": CoreRemote()},
        {"core1": "http://core1:8080"},
        health_timeout_s=1,
        healthy=lambda url: False,
        sleep=sleep,
        clock=lambda: now[0],
    )
    with pytest.raises(CoreSettingsError, match=r"core http://core1:8080/healthz did not answer status ok"):
        cores.apply({"PREFETCH": "100"})


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps({"status": self.server.status}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_healthy_means_the_consumer_is_connected():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    try:
        server.status = "degraded"  # HTTP answers, the consumer is not connected yet
        assert core_healthy(url) is False
        server.status = "ok"
        assert core_healthy(url) is True
    finally:
        server.shutdown()
        server.server_close()
    assert core_healthy("http://127.0.0.1:9/healthz", timeout=0.5) is False


# --------------------------------------------------------------------------------------------
# in the sweep


def run_sweep(tmp_path, raw, core_remote, k6=None):
    steps = expand_steps(spec.apply_overrides(raw, {}))
    k6 = k6 or FakeK6(load_s=0.05)
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(
            RecordingRemote(), "http://gw:8000", healthy=lambda u: True, sleep=lambda s: None
        ),
        cpu=FakeCpu(),
        queue_depth=FakeQueue(k6, drain_after_s=0.05),
        sample_interval_s=0.05,
        core_settings=switcher({"lab-core": core_remote}),
    )
    folder = RunFolder(tmp_path / "results", "20260101-000000-t")
    provisioned_cores = [{"PREFETCH": "500", "STATS_RESET_TOKEN": "secret"}]
    sweep = Sweep(spec.apply_overrides(raw, {}), steps, lab, folder, {}, lambda line: None, provisioned_cores)
    status = sweep.run(RunRecord(spec_name="t"))
    return status, folder


def test_each_step_records_the_cores_effective_settings_and_the_sweep_restores_them(tmp_path):
    raw = {
        **GOOD,
        "modes": ["async"],
        "series": [{"label": "narrow", "core": {"MAX_IN_FLIGHT": 100}}, {"label": "default"}],
    }
    remote = CoreRemote()
    status, folder = run_sweep(tmp_path, raw, remote)
    assert status == "complete"
    narrow = json.loads((folder.path / "steps" / "01-async-50.json").read_text())["step"]
    assert narrow["core"] == {
        "PREFETCH": "500",
        "MAX_IN_FLIGHT": "100",
        "WORK_MAX_CONCURRENT": "1000",
        **FAILURE_DEFAULTS,
        "LEDGER": "broker",
    }
    assert narrow["core_overrides"] == {"MAX_IN_FLIGHT": "100"}
    default = json.loads((folder.path / "steps" / "02-async-50.json").read_text())["step"]
    assert default["core"]["MAX_IN_FLIGHT"] == "0" and default["core_overrides"] == {}
    assert remote.restarts == 2 and SWEEP_ENV not in remote.files  # narrow, then back for default


def test_a_failed_sweep_restores_the_core_too(tmp_path):
    remote = CoreRemote()
    raw = {**GOOD, "modes": ["async"], "core": {"PREFETCH": 100}}
    status, folder = run_sweep(tmp_path, raw, remote, k6=FakeK6(load_s=0.05, fail_at=1))
    assert status == "failed"
    assert SWEEP_ENV not in remote.files and remote.restarts == 2
    run = json.loads((folder.path / "run.json").read_text())
    assert "restore_error" not in run and run["steps"] == []
