"""Static checks of roles/: every default variable is prefixed with its role's name and
documented in meta/argument_specs.yml (and every documented option has a default), and every
role has the layout the others follow."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
ROLE_NAMES = [r.name for r in ROLES]


def _yaml(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def _defaults(role: Path) -> dict:
    return _yaml(role / "defaults" / "main.yml")


def _spec_options(role: Path) -> dict:
    specs = _yaml(role / "meta" / "argument_specs.yml")["argument_specs"]
    return specs["main"].get("options") or {}


def test_the_five_roles_exist():
    assert set(ROLE_NAMES) >= {"common", "rabbitmq", "gateway", "core_go", "k6"}


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


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_defaults_are_prefixed_with_the_role_name(role: Path):
    bad = [k for k in _defaults(role) if not k.startswith(f"{role.name}_")]
    assert not bad, f"{role.name}: unprefixed defaults {bad}"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_argument_specs_cover_every_default_and_nothing_else(role: Path):
    defaults, options = set(_defaults(role)), set(_spec_options(role))
    assert defaults - options == set(), f"{role.name}: defaults without argument_specs"
    assert options - defaults == set(), f"{role.name}: argument_specs without a default"
    assert all(k.startswith(f"{role.name}_") for k in options)


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_argument_specs_describe_and_type_every_option(role: Path):
    for name, spec in _spec_options(role).items():
        assert spec.get("type"), f"{role.name}.{name}: no type"
        assert spec.get("description"), f"{role.name}.{name}: no description"


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
    phases = {}
    for task in _yaml(role / "tasks" / "main.yml"):
        target = task.get("ansible.builtin.import_tasks")
        if target:
            phases[Path(target).stem] = set(task.get("tags") or [])
    for phase in ("preflight", "install", "configure"):
        assert phase in phases, f"{role.name}: tasks/main.yml does not import {phase}.yml"
        assert {role.name, phase} <= phases[phase], f"{role.name}: {phase} tags {phases[phase]}"


def test_example_inventory_has_the_four_groups():
    hosts = _yaml(REPO / "inventory" / "example" / "hosts.yml")
    groups = hosts["all"]["children"]
    assert set(groups) == {"broker", "gateway", "core", "loadgen"}
    for group in groups.values():
        for host in group["hosts"].values():
            # documentation addresses only (RFC 5737): never a real host
            assert host["ansible_host"].startswith(("192.0.2.", "198.51.100.", "203.0.113."))


def test_example_group_vars_only_set_known_variables():
    known = set()
    for role in ROLES:
        known |= set(_defaults(role))
    settings = _yaml(REPO / "inventory" / "example" / "group_vars" / "all.yml")
    unknown = [k for k in settings if k not in known and not k.startswith(("ansible_", "offload_"))]
    assert not unknown, f"inventory/example sets variables no role reads: {unknown}"
