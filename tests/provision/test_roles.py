"""Static checks of roles/: every default variable is prefixed with its role's name and
documented in meta/argument_specs.yml with the same default (and every documented option has a
default), tags are scoped by role and phase, the broker's address, URL and password are written
once (roles/offload_broker), and every role has the layout the others follow."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# the roles with tasks, and every role (also settings-only ones without tasks, e.g. offload_broker)
ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
ROLE_NAMES = [r.name for r in ROLES]
ALL_ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "defaults" / "main.yml").is_file())
ALL_ROLE_NAMES = [r.name for r in ALL_ROLES]
PHASES = ("preflight", "install", "configure")


def _yaml(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def _defaults(role: Path) -> dict:
    return _yaml(role / "defaults" / "main.yml")


def _spec_options(role: Path) -> dict:
    specs = _yaml(role / "meta" / "argument_specs.yml")["argument_specs"]
    return specs["main"].get("options") or {}


def _task_files(role: Path) -> list[Path]:
    return sorted((role / "tasks").glob("*.yml")) + [role / "handlers" / "main.yml"]


def _tasks(path: Path):
    """Every task of a tasks file, also those inside blocks."""
    todo = list(_yaml(path) or [])
    while todo:
        task = todo.pop(0)
        if isinstance(task, dict):
            yield task
            for key in ("block", "rescue", "always"):
                todo += task.get(key) or []


def test_the_five_roles_exist():
    assert set(ROLE_NAMES) >= {"common", "rabbitmq", "gateway", "core_go", "k6"}
    # settings only: the broker as every role sees it
    assert "offload_broker" in ALL_ROLE_NAMES and "offload_broker" not in ROLE_NAMES


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_role_layout(role: Path):
    for rel in (
        "defaults/main.yml",
        "meta/main.yml",
        "meta/argument_specs.yml",
        "tasks/main.yml",
        "tasks/preflight.yml",
        "tasks/install.yml",
        "tasks/configure.yml",
        "handlers/main.yml",
    ):
        assert (role / rel).is_file(), f"{role.name}: {rel} missing"


@pytest.mark.parametrize("role", ALL_ROLES, ids=ALL_ROLE_NAMES)
def test_defaults_are_prefixed_with_the_role_name(role: Path):
    bad = [k for k in _defaults(role) if not k.startswith(f"{role.name}_")]
    assert not bad, f"{role.name}: unprefixed defaults {bad}"


@pytest.mark.parametrize("role", ALL_ROLES, ids=ALL_ROLE_NAMES)
def test_argument_specs_cover_every_default_and_nothing_else(role: Path):
    defaults, options = set(_defaults(role)), set(_spec_options(role))
    assert defaults - options == set(), f"{role.name}: defaults without argument_specs"
    assert options - defaults == set(), f"{role.name}: argument_specs without a default"
    assert all(k.startswith(f"{role.name}_") for k in options)


@pytest.mark.parametrize("role", ALL_ROLES, ids=ALL_ROLE_NAMES)
def test_argument_specs_describe_and_type_every_option(role: Path):
    for name, spec in _spec_options(role).items():
        assert spec.get("type"), f"{role.name}.{name}: no type"
        assert spec.get("description"), f"{role.name}.{name}: no description"


@pytest.mark.parametrize("role", ALL_ROLES, ids=ALL_ROLE_NAMES)
def test_argument_specs_defaults_equal_defaults_main(role: Path):
    """Each option's `default:` is its value in defaults/main.yml (the one Ansible uses; the spec's
    is documentation). Secrets (no_log) have none: role argument validation templates the spec
    and prints it when it fails, which would show the password."""
    defaults = _defaults(role)
    for name, spec in _spec_options(role).items():
        if spec.get("no_log"):
            where = f"{role.name}.{name}"
            assert "default" not in spec, f"{where}: no_log option with a default (printed on failure)"
            assert "Default:" in str(spec.get("description")), f"{where}: describe its default"
        else:
            assert "default" in spec, f"{role.name}.{name}: no default in argument_specs"
            assert spec["default"] == defaults[name], f"{role.name}.{name}: default != defaults/main.yml"


@pytest.mark.parametrize("role", ALL_ROLES, ids=ALL_ROLE_NAMES)
def test_choices_hold_the_default_and_no_assert_restates_them(role: Path):
    """argument_specs validation enforces `choices:` before any task: no assert repeats it."""
    options = {n: s for n, s in _spec_options(role).items() if "choices" in s}
    texts = [p.read_text() for p in _task_files(role) if p.is_file()]
    for name, spec in options.items():
        assert spec["default"] in spec["choices"], f"{role.name}.{name}: default not among its choices"
        for text in texts:
            restated = f"{name} in [" in text or f"{name} in (" in text
            assert not restated, f"{role.name}.{name}: an assert restates its choices"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_registered_and_set_facts_are_prefixed(role: Path):
    """Variables a role's tasks create are prefixed too (ansible-lint's var-naming)."""
    bad = []
    for path in list((role / "tasks").glob("*.yml")) + [role / "handlers" / "main.yml"]:
        for task in _yaml(path) or []:
            if not isinstance(task, dict):
                continue
            names = [task["register"]] if "register" in task else []
            names += list((task.get("ansible.builtin.set_fact") or {}).keys())
            names += list((task.get("vars") or {}).keys())
            bad += [f"{path.name}: {n}" for n in names if not n.startswith(f"{role.name}_")]
    assert not bad, f"{role.name}: unprefixed {bad}"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_handlers_listen_to_topics(role: Path):
    for handler in _yaml(role / "handlers" / "main.yml") or []:
        assert handler.get("listen"), f"{role.name}: handler {handler.get('name')!r} has no listen"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_main_imports_tagged_phases(role: Path):
    """One tag per role and phase (`--tags gateway_configure`); preflight, which only checks,
    runs with every phase. No generic tags (preflight, install, configure, the role's name)."""
    phases = {}
    for task in _yaml(role / "tasks" / "main.yml"):
        target = task.get("ansible.builtin.import_tasks")
        if target:
            phases[Path(target).stem] = set(task.get("tags") or [])
    for phase in PHASES:
        assert phase in phases, f"{role.name}: tasks/main.yml does not import {phase}.yml"
    scoped = {f"{role.name}_{phase}" for phase in PHASES}
    assert phases["preflight"] == scoped, f"{role.name}: preflight tags {phases['preflight']}"
    for phase in ("install", "configure"):
        assert phases[phase] == {f"{role.name}_{phase}"}, f"{role.name}: {phase} tags {phases[phase]}"
    for path in _task_files(role):
        for task in _tasks(path):
            tags = task.get("tags") or []
            tags = [tags] if isinstance(tags, str) else tags
            assert set(tags) <= scoped, f"{role.name}: {path.name}: {task.get('name')!r} tags {tags}"


def test_broker_address_url_and_password_are_written_once():
    """The broker host and address, the AMQP URLs, the password lookups and the topology's names
    live in roles/offload_broker/defaults/main.yml only; the roles that need them depend on it."""
    shared = REPO / "roles" / "offload_broker" / "defaults" / "main.yml"
    files = list((REPO / "roles").glob("*/defaults/main.yml"))
    files += list((REPO / "roles").glob("*/tasks/*.yml"))
    files += list((REPO / "roles").glob("*/vars/*.yml"))
    files += list((REPO / "playbooks").glob("*.yml")) + [REPO / "site.yml"]
    files += list((REPO / "inventory" / "example").rglob("*.yml"))
    # the one other generated secret: the core's stats reset token
    token = REPO / "roles" / "core_go" / "defaults" / "main.yml"
    for needle, owners in (
        ("{{ groups['broker'] }}", [shared]),
        ("amqp://", [shared]),
        ("ansible.builtin.password", [shared, token]),
        ("tasks.dlx", [shared]),
        ("tasks.dead", [shared]),
        ("tasks.done", [shared]),
    ):
        where = sorted(str(p.relative_to(REPO)) for p in files if needle in p.read_text())
        assert where == sorted(str(p.relative_to(REPO)) for p in owners), f"{needle!r} in {where}"
    for name in ("rabbitmq", "gateway", "core_go"):
        deps = _yaml(REPO / "roles" / name / "meta" / "main.yml").get("dependencies") or []
        assert {"role": "offload_broker"} in deps, f"{name}: does not depend on offload_broker"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_templates_with_the_amqp_url_show_no_diff(role: Path):
    """AMQP_URL holds the broker password: its templates never print a diff (--diff)."""
    for path in _task_files(role):
        for task in _tasks(path):
            args = task.get("ansible.builtin.template")
            if not args:
                continue
            src = role / "templates" / args["src"]
            if "AMQP_URL" in src.read_text():
                assert task.get("diff") is False, f"{role.name}: {task.get('name')!r} needs diff: false"


def test_example_inventory_has_the_four_groups():
    hosts = _yaml(REPO / "inventory" / "example" / "hosts.yml")
    groups = hosts["all"]["children"]
    assert set(groups) == {"broker", "gateway", "core", "loadgen"}
    for group in groups.values():
        for host in group["hosts"].values():
            # documentation addresses only (RFC 5737): never a real host
            assert host["ansible_host"].startswith(("192.0.2.", "198.51.100.", "203.0.113."))


def test_example_group_vars_only_set_known_variables():
    """Every variable inventory/example sets is a role's setting or read by a role (e.g.
    offload_apt_proxy), and the connection variables are ones the plays do not set already."""
    known = set()
    for role in ALL_ROLES:
        known |= set(_defaults(role))
    read = "\n".join(
        p.read_text()
        for part in ("defaults", "vars", "tasks", "handlers", "templates")
        for p in (REPO / "roles").glob(f"*/{part}/*")
        if p.is_file()
    )
    settings = _yaml(REPO / "inventory" / "example" / "group_vars" / "all.yml")
    unknown = [
        k
        for k in settings
        if k not in known and not k.startswith("ansible_") and not re.search(rf"\b{re.escape(k)}\b", read)
    ]
    assert not unknown, f"inventory/example sets variables no role reads: {unknown}"
    # every host play has become: true; a group-wide ansible_become would also override the
    # controller's plays and delegated tasks (become: false) and run them under sudo
    assert "ansible_become" not in settings
