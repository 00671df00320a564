"""The names and ports the inventory decides (offload_lab/hosts/lab_names.py): read from a copy of
inventory/example in which they are renamed, and used wherever fab builds a management API
request, a queue's name, the k6 target, a core's URL or the partition fault; the roles' defaults
where the inventory sets none. Nothing is connected: the management API is a stand-in on
127.0.0.1, the hosts' SSH a fake."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

from offload_lab.hosts import inventory
from offload_lab.hosts.inventory import InventoryError
from offload_lab.hosts.lab_names import BrokerNames, role_broker_names, role_defaults
from offload_lab.plan import spec as spec_mod
from offload_lab.plan.fault_spec import FaultSpec
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord, read_step
from offload_lab.run.connections import LabConnections
from offload_lab.run.results import RunFolder
from offload_lab.run.sweep import Sweep, SweepServices
from offload_lab.services.gateway import GatewaySettings

REPO = Path(__file__).resolve().parents[2]
RENAMED = BrokerNames(
    vhost="lab-x",
    controller_user="ctl-x",
    task_queue="jobs",
    dead_letter_queue="jobs.dead",
    outcome_queue="jobs.done",
)
# settings of inventory/example/group_vars/all.yml -> their renamed values
RENAMED_SETTINGS = {
    "offload_broker_vhost: offload": "offload_broker_vhost: lab-x",
    "offload_broker_task_queue: tasks": "offload_broker_task_queue: jobs",
    "offload_broker_amqp_port: 5672": "offload_broker_amqp_port: 5699",
    "rabbitmq_management_port: 15672": "rabbitmq_management_port: {management_port}",
}
MORE_SETTINGS = """
offload_broker_dead_letter_queue: jobs.dead
offload_broker_ledger_queue: jobs.done
rabbitmq_users: "{{ offload_broker_users | combine({'controller': {'name': 'ctl-x'}}, recursive=True) }}"
gateway_bind: "0.0.0.0:8101"
core_go_http_port: 8181
"""


def copy_example(tmp_path: Path, name: str = "example") -> Path:
    copy = tmp_path / "inventory" / "mine"
    shutil.copytree(REPO / "inventory" / name, copy)
    (copy / "host_vars").mkdir()
    return copy


def renamed_inventory(tmp_path: Path, management_port: int = 15699) -> inventory.Inventory:
    """inventory/example copied, every name and port fab follows renamed, the broker on 127.0.0.1."""
    copy = copy_example(tmp_path)
    settings = copy / "group_vars" / "all.yml"
    text = settings.read_text()
    for setting, renamed in RENAMED_SETTINGS.items():
        assert setting in text, f"inventory/example no longer sets {setting}"
        text = text.replace(setting, renamed.format(management_port=management_port))
    settings.write_text(text + MORE_SETTINGS)
    (copy / "host_vars" / "broker1.yml").write_text("offload_private_address: 127.0.0.1\n")
    return inventory.load(str(copy), repo_root=tmp_path)


def test_the_names_record_reads_the_inventorys_values(tmp_path):
    names = renamed_inventory(tmp_path).names
    assert names.broker == RENAMED
    assert names.http_ports == {
        "broker": {"broker1": 15699},
        "gateway": {"gateway1": 8101},
        "core": {"core1": 8181},
    }
    assert names.amqp_ports == {"broker1": 5699}
    assert names.unfollowed == ()


def test_an_inventory_that_sets_none_has_the_roles_defaults_and_a_host_may_set_its_own(tmp_path):
    copy = copy_example(tmp_path, "example-cluster")
    (copy / "host_vars" / "broker2.yml").write_text("rabbitmq_management_port: 15700\n")
    lab = inventory.load(str(copy), repo_root=tmp_path)
    assert lab.names.broker == role_broker_names() != RENAMED
    default = int(role_defaults()["rabbitmq_management_port"])
    assert lab.names.http_ports["broker"] == {"broker1": default, "broker2": 15700, "broker3": default}
    connections = LabConnections(lab, "run", "pw")
    try:
        assert connections.mgmt.base_urls == [
            f"http://192.0.2.21:{default}",
            "http://192.0.2.22:15700",
            f"http://192.0.2.23:{default}",
        ]
    finally:
        connections.close()


@pytest.mark.parametrize(
    "setting, message",
    [
        ('gateway_bind: "unix:/run/gateway.sock"', "gateway_bind is 'unix:/run/gateway.sock'"),
        ("rabbitmq_management_port: 0", "rabbitmq_management_port is 0"),
        ('core_go_http_port: "{{ no_such_variable }}"', "core_go_http_port: "),
    ],
)
def test_a_port_fab_cannot_reach_is_an_inventory_error(tmp_path, setting, message):
    copy = copy_example(tmp_path)
    with (copy / "group_vars" / "all.yml").open("a") as settings:
        settings.write(setting + "\n")
    with pytest.raises(InventoryError, match="inventory .*: host [a-z]+1: ") as info:
        inventory.load(str(copy), repo_root=tmp_path)
    assert message in str(info.value)


# ------------------------------------------------------------------ where fab uses them


class ManagementStandIn(BaseHTTPRequestHandler):
    """Records (method, path, user) of each request; a queue holds 3 ready and 1 unacked message,
    a get takes nothing."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._answer({"messages_ready": 3, "messages_unacknowledged": 1})

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer([])

    def _answer(self, body):
        user = base64.b64decode(self.headers["Authorization"].split()[1]).decode().split(":")[0]
        self.server.requests.append((self.command, self.path, user))
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def management():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ManagementStandIn)
    server.requests = []
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


class HostStandIn(RecordingRemote):
    """A host over SSH: records commands; its env files set nothing."""

    def read_text(self, path, missing_ok=True, sudo=False):
        return ""

    def close(self):
        pass


@pytest.fixture
def renamed_lab(tmp_path, management):
    lab = LabConnections(renamed_inventory(tmp_path, management.server_address[1]), "run", "pw")
    lab.remotes = {name: HostStandIn() for name in lab.remotes}
    yield lab
    lab.close()


def test_the_management_api_is_asked_on_the_inventorys_port_as_its_user_in_its_vhost(renamed_lab, management):
    services = renamed_lab.sweep_services()
    assert renamed_lab.mgmt.base_urls == [f"http://127.0.0.1:{management.server_address[1]}"]
    assert services.broker_names == RENAMED
    assert services.queue_depth(services.broker_names.task_queue).total == 4
    assert renamed_lab.ledgers()["broker"].take() == []
    assert renamed_lab.outcomes.dead_letters() == []
    services.broker_facts(["jobs.retry.1000"])
    requests = set(management.requests)
    assert {user for _, _, user in requests} == {"ctl-x"}
    assert {
        ("GET", "/api/queues/lab-x/jobs"),
        ("POST", "/api/queues/lab-x/jobs.done/get"),
        ("POST", "/api/queues/lab-x/jobs.dead/get"),
        ("GET", "/api/queues/lab-x/jobs.done"),
        ("GET", "/api/queues/lab-x/jobs.dead"),
        ("GET", "/api/queues/lab-x/jobs.retry.1000"),
    } <= {(method, path) for method, path, _ in requests}
    assert not any("/tasks" in path or "/offload/" in path for _, path, _ in requests)


def test_the_k6_target_the_cores_and_the_partition_use_the_inventorys_ports(renamed_lab):
    assert renamed_lab.k6.base_url == "http://192.0.2.12:8101" == renamed_lab.gateway_url
    assert renamed_lab.core.urls == {"core1": "http://192.0.2.13:8181"}
    faults = renamed_lab.fault_runner((FaultSpec("partition", 0.0, 0.1),))
    faults.start(time.time())
    (record,) = faults.join()
    assert record["ok"] and record["peer"] == "127.0.0.1"
    gateway = renamed_lab.remotes["gateway1"].commands
    assert "ip daddr 127.0.0.1 tcp dport 5699 drop" in gateway[0] and "tcp sport 5699 drop" in gateway[0]


def test_the_sweep_samples_and_records_the_queues_by_the_inventorys_names(tmp_path):
    """The task queue's depth, its delay queues and the dead-letter queue's depth, as a step
    reads and records them."""
    raw = {
        "name": "t",
        "rates": [50],
        "modes": ["async"],
        "duration_s": 1,
        "max_vus": 10,
        "cooldown_s": 0,
        "drain_timeout_s": 2,
        "core": {"RETRY_DELAYS_MS": [1000], "TRANSIENT_FAIL_RATE": 0.1},
    }
    spec = spec_mod.apply_overrides(raw, {})
    k6 = FakeK6(load_s=0.05)
    depth = FakeQueue(k6, drain_after_s=0.02)
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(
            RecordingRemote(), "http://gw:8000", healthy=lambda u: True, sleep=lambda s: None
        ),
        cpu=FakeCpu(),
        queue_depth=depth,
        sample_interval_s=0.02,
        broker_names=RENAMED,
        queue_depths=lambda: {"jobs": 0, "jobs.retry.1000": 0, "tasks.retry.1000": 7},
    )
    folder = RunFolder(tmp_path / "results", "20260101-000000-t")
    assert (
        Sweep(spec, expand_steps(spec), lab, folder, {}, lambda line: None).run(RunRecord(spec_name="t"))
        == "complete"
    )
    broker = read_step(folder.path / "steps" / "01-async-50.json").broker
    assert broker["queue"] == "jobs" and broker["retry_queues"]["queues"] == ["jobs.retry.1000"]
    assert broker["retry_queues"]["exchange"] == "jobs.retry"
    assert set(depth.calls) == {"jobs", "jobs.dead"}
