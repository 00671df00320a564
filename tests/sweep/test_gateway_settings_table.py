"""The gateway's settings table (gateway/offload_gateway/settings_table.py) is the one list of its
settings. What is derived from it is checked to follow it (settings.py, gunicorn_conf.py,
offload_lab/plan/gateway_spec.py); what cannot import it is checked against it, both ways, so that a
setting added in one place only fails here:
- the code: every environment variable the gateway package and its gunicorn config read is a
  setting of the table, and every setting of the table is read;
- the gateway role: every variable its gateway.env template writes is a setting, with the
  table's default (rendered from defaults/main.yml), every setting marked `provisioned` is
  written; meta/argument_specs.yml names the variable each option sets, with the table's choices;
- docs/interfaces.md, "Gateway settings": one row per setting, as the table says.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jinja2
import pytest
import yaml
from broker_users import render
from offload_gateway import settings_table
from offload_gateway.settings import PUBLISHER_NAMES, Settings
from offload_gateway.settings_table import BY_NAME, SETTINGS, TYPES, Setting

from offload_lab.plan import gateway_spec
from offload_lab.run.sweep import effective_gateway

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "gateway" / "offload_gateway"
ROLE = REPO / "roles" / "gateway"
INTERFACES = REPO / "docs" / "interfaces.md"

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
# calls whose first argument in capitals is not an environment variable
NOT_ENV_CALLS = {"TypeVar", "NewType", "namedtuple", "NamedTuple"}
# the Python type of each setting type's default
DEFAULT_TYPES = {"url": str, "str": str, "choice": str, "flag": bool, "seconds": float, "int": int}
# the argument_specs type of a role variable that sets a setting of this type
SPEC_TYPES = {"url": "str", "str": "str", "choice": "str", "flag": "bool", "seconds": "float", "int": "int"}


# -------------------------------------------------------------------------------- the table


def test_names_are_unique_env_names():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names)), names
    assert all(ENV_NAME.match(n) for n in names), names
    assert set(BY_NAME) == set(names)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_each_setting_is_well_formed(setting: Setting):
    assert setting.type in TYPES
    assert setting.doc.strip() and "\n" not in setting.doc and "|" not in setting.doc
    if setting.default is not None:
        assert type(setting.default) is DEFAULT_TYPES[setting.type], setting.default
    assert bool(setting.choices) == (setting.type == "choice"), "choices belong to choice settings"
    if setting.choices:
        assert setting.default in setting.choices
    if setting.range is not None:
        assert setting.type in ("seconds", "int")
        lo, hi = setting.range
        assert 0 < lo <= setting.default <= hi
    if setting.sweep:
        assert setting.default is not None, "a sweep setting needs a default (run.json records it)"
        if setting.type in ("seconds", "int"):
            assert setting.range is not None, "a number a sweep may switch needs bounds"


def test_table_module_imports_only_the_standard_library():
    """gunicorn loads gunicorn_conf, which imports the table, in the master before forking."""
    tree = ast.parse(Path(settings_table.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0] if node.level == 0 else ".")
    assert imported <= {"__future__", "dataclasses"}, imported


# -------------------------------------------------------------------------------- derived copies


def test_app_settings_defaults_and_choices_are_the_tables():
    settings = Settings.from_env({"AMQP_URL": "amqp://u:p@127.0.0.1:5672/"})
    fields = {name.upper(): getattr(settings, name) for name in Settings.__dataclass_fields__}
    assert set(fields) <= set(BY_NAME), set(fields) - set(BY_NAME)
    for name, value in fields.items():
        if BY_NAME[name].default is not None:
            assert value == BY_NAME[name].default, name
    assert BY_NAME["PUBLISHER"].choices == PUBLISHER_NAMES


def test_gunicorn_conf_defaults_are_the_tables(monkeypatch):
    import importlib

    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    conf = importlib.reload(importlib.import_module("offload_gateway.gunicorn_conf"))
    gunicorn_settings = [s for s in SETTINGS if s.name.startswith("GUNICORN_")]
    assert gunicorn_settings
    for setting in gunicorn_settings:
        attribute = setting.name.removeprefix("GUNICORN_").lower()
        assert getattr(conf, attribute) == setting.default, setting.name


def test_sweep_keys_defaults_and_choices_are_the_tables():
    sweep = [s for s in SETTINGS if s.sweep]
    assert tuple(s.name for s in sweep) == gateway_spec.GATEWAY_KEYS
    assert {s.name: s.env_default for s in sweep} == gateway_spec.GATEWAY_DEFAULTS
    assert BY_NAME["PUBLISHER"].choices == gateway_spec.PUBLISHERS
    assert BY_NAME["GUNICORN_WORKER_CLASS"].choices == gateway_spec.WORKER_CLASSES


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.sweep], ids=lambda s: s.name)
def test_a_sweep_may_set_each_switchable_setting_within_its_bounds(setting: Setting):
    problems: list[str] = []
    good = [setting.default, setting.env_default]
    bad: list[object] = ["no such value"]
    if setting.range:
        lo, hi = setting.range
        good += [lo, hi]
        bad += [lo / 2 if setting.type == "seconds" else lo - 1, hi * 2]
    for value in good:
        out = gateway_spec.validate_gateway(problems, "gateway", {setting.name: value})
        assert out is not None and set(out) == {setting.name}, (value, problems)
    assert problems == []
    for value in bad:
        found: list[str] = []
        assert gateway_spec.validate_gateway(found, "gateway", {setting.name: value}) is None, value
        assert found and found[0].startswith(f"gateway.{setting.name}: "), found


def test_keepalive_is_switchable_and_recorded():
    problems: list[str] = []
    assert gateway_spec.validate_gateway(problems, "gateway", {"GUNICORN_KEEPALIVE": "120"}) == {
        "GUNICORN_KEEPALIVE": "120"
    }
    # run.json's effective settings: the table's default, gateway.env's value, the step's
    assert effective_gateway({}, {})["GUNICORN_KEEPALIVE"] == "75"
    assert effective_gateway({"GUNICORN_KEEPALIVE": "90"}, {})["GUNICORN_KEEPALIVE"] == "90"
    assert effective_gateway({}, {"GUNICORN_KEEPALIVE": "5"})["GUNICORN_KEEPALIVE"] == "5"


def test_settings_a_sweep_may_not_switch_are_refused():
    for setting in SETTINGS:
        if not setting.sweep:
            problems: list[str] = []
            value = setting.env_default or "x"
            assert gateway_spec.validate_gateway(problems, "gateway", {setting.name: value}) is None
            assert problems[0].startswith(f"gateway.{setting.name}: unknown gateway setting")


# -------------------------------------------------------------------------------- the code


def _env_names_read(path: Path) -> set[str]:
    """The environment variable names a source file reads: a string literal in capitals passed
    first to a call (os.environ.get/setdefault, os.getenv, the settings readers, _env_int, ...),
    or used as a key of, or tested for membership in, something named *environ*."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        key = None
        if isinstance(node, ast.Call) and node.args:
            if ast.unparse(node.func).split(".")[-1] not in NOT_ENV_CALLS:
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and "environ" in ast.unparse(node.value):
            key = node.slice
        elif (
            isinstance(node, ast.Compare)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any("environ" in ast.unparse(c) for c in node.comparators)
        ):
            key = node.left
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and ENV_NAME.match(key.value):
            names.add(key.value)
    return names


def _gateway_sources() -> list[Path]:
    # the table itself names every setting (Setting("AMQP_URL", ...)): not a read
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "settings_table.py"]
    return files + [REPO / "gateway" / "gunicorn.conf.py"]


def test_the_scan_sees_the_package_where_it_is_installed():
    assert Path(settings_table.__file__).resolve().parent == PACKAGE.resolve()


def test_every_environment_variable_the_code_reads_is_in_the_table():
    read = {name: path for path in _gateway_sources() for name in _env_names_read(path)}
    unknown = {name: str(path.relative_to(REPO)) for name, path in read.items() if name not in BY_NAME}
    assert not unknown, f"read from the environment but not in settings_table.py: {unknown}"


def test_every_setting_of_the_table_is_read_by_the_code():
    read = set().union(*(_env_names_read(p) for p in _gateway_sources()))
    unread = [s.name for s in SETTINGS if s.name not in read]
    assert not unread, f"in settings_table.py but read nowhere in the gateway: {unread}"


# -------------------------------------------------------------------------------- the role


def _yaml(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def _role_defaults() -> dict:
    return _yaml(ROLE / "defaults" / "main.yml")


def _spec_options() -> dict:
    return _yaml(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def _template_lines() -> dict[str, str]:
    """The template's fixed `NAME=...` lines: env var -> its right-hand side."""
    text = (ROLE / "templates" / "gateway.env.j2").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.M))


def _template_variables() -> dict[str, str]:
    """env var -> the role variable the template writes it from (exactly one per line)."""
    out = {}
    for name, rhs in _template_lines().items():
        variables = set(re.findall(r"\b(gateway_\w+)\b", rhs))
        assert len(variables) == 1, f"gateway.env.j2: {name}= uses {variables or 'no role variable'}"
        out[name] = variables.pop()
    return out


HOST_DEPENDENT = "<from the inventory>"


def _broker_setting(value: str) -> str | None:
    """A default that is one of the offload_broker role's settings, e.g. the task queue, rendered
    from that role; None for anything else."""
    match = re.fullmatch(r"\{\{ (offload_broker_\w+) \}\}", value)
    return str(render(match.group(1))) if match and "amqp_url" not in match.group(1) else None


def _render_gateway_env() -> dict[str, str]:
    """gateway.env as the role writes it with its defaults; defaults that are themselves templates
    render as the offload_broker setting they name, or else (addresses from the inventory, the
    AMQP URL) as HOST_DEPENDENT."""
    variables = {
        k: (_broker_setting(v) or HOST_DEPENDENT) if isinstance(v, str) and "{{" in v else v
        for k, v in _role_defaults().items()
    }
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    # Ansible's `bool` filter
    env.filters["bool"] = lambda v: (
        v if isinstance(v, bool) else str(v).strip().lower() in ("yes", "on", "1", "true")
    )
    text = env.from_string((ROLE / "templates" / "gateway.env.j2").read_text()).render(
        ansible_managed="managed", **variables
    )
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_gateway_env_writes_table_settings_with_the_tables_defaults():
    rendered = _render_gateway_env()
    unknown = sorted(set(rendered) - set(BY_NAME))
    assert not unknown, f"gateway.env.j2 writes variables settings_table.py does not have: {unknown}"
    for name, value in rendered.items():
        setting = BY_NAME[name]
        if value == HOST_DEPENDENT:
            assert setting.type == "url", f"{name}: only addresses come from the inventory"
        else:
            assert value == setting.env_default, (
                f"{name}: the role writes {value!r}, the table says {setting.env_default!r}"
            )


def test_gateway_env_writes_every_provisioned_setting():
    written = set(_template_lines())
    provisioned = {s.name for s in SETTINGS if s.provisioned}
    assert written == provisioned, (
        f"provisioned in settings_table.py but not in gateway.env.j2: {sorted(provisioned - written)}; "
        f"in gateway.env.j2 but not marked provisioned: {sorted(written - provisioned)}"
    )


def _claimed_env_var(spec: dict) -> str | None:
    """The env var an option's description starts with ("PUBLISHER, how /async publishes.")."""
    description = spec.get("description") or ""
    first = description[0] if isinstance(description, list) else description
    m = re.match(r"^([A-Z][A-Z0-9_]*)(?=[,.]|\s\()", first)
    return m.group(1) if m else None


def test_argument_specs_name_the_setting_each_variable_sets():
    options = _spec_options()
    by_variable = {v: k for k, v in _template_variables().items()}
    for variable, name in by_variable.items():
        assert variable in options, f"{variable} ({name}) is not in argument_specs.yml"
    for variable, spec in options.items():
        claimed = _claimed_env_var(spec)
        assert claimed == by_variable.get(variable), (
            f"argument_specs.yml: {variable} says it sets {claimed}, gateway.env.j2 writes it as "
            f"{by_variable.get(variable)}"
        )


@pytest.mark.parametrize("name", sorted(s.name for s in SETTINGS if s.provisioned))
def test_argument_specs_type_and_choices_follow_the_table(name: str):
    variable = _template_variables()[name]
    spec = _spec_options()[variable]
    setting = BY_NAME[name]
    assert spec["type"] == SPEC_TYPES[setting.type], f"{variable}: type {spec['type']} for a {setting.type}"
    assert tuple(spec.get("choices") or ()) == setting.choices, f"{variable}: choices != the table's"


# -------------------------------------------------------------------------------- the docs


def _number(value: float) -> str:
    return settings_table.env_text(value)


def doc_row(setting: Setting) -> str:
    """The row docs/interfaces.md has for a setting."""
    if setting.choices:
        values = ", ".join(setting.choices)
    elif setting.range:
        values = f"{_number(setting.range[0])}..{_number(setting.range[1])}"
    else:
        values = TYPES[setting.type]
    cells = [
        f"`{setting.name}`",
        setting.type,
        setting.env_default if setting.default is not None else "required",
        values,
        "yes" if setting.sweep else "no",
        "yes" if setting.provisioned else "no",
        setting.doc,
    ]
    return "| " + " | ".join(cells) + " |"


def _doc_section() -> str:
    text = INTERFACES.read_text()
    start = text.index("\n## Gateway settings\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_interfaces_md_lists_every_setting_as_the_table_says():
    documented = [line for line in _doc_section().splitlines() if line.startswith("| `")]
    expected = [doc_row(s) for s in SETTINGS]
    assert documented == expected, "docs/interfaces.md, Gateway settings, should read:\n" + "\n".join(
        expected
    )
