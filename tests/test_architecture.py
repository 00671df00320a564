"""The controller's rooms (docs/architecture.md): every module of offload_lab, read with `ast`
(every import statement, also inside functions and under TYPE_CHECKING, and import_module or
__import__ with a literal name), imports no module of a higher layer nor of a peer on its own
layer, and no modules import each other in a circle. A module belongs to the subpackage (or
top-level module) right under offload_lab that holds it; inside one, modules import each other
freely, circles excepted."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "offload_lab"

# lowest first; the rooms of one layer are peers and import nothing of each other
LAYERS: tuple[tuple[str, ...], ...] = (
    ("records",),
    ("paths",),
    ("analysis", "plan", "hosts"),
    ("services", "loadgen"),
    ("run",),
    ("capacity",),
    ("cli",),
)
LAYER_OF = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module names
    imported: str
    line: int


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package under `root`."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _base(module: str, path: Path, level: int) -> str:
    """The package a relative import with `level` dots starts from."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return package


def _literal_import_call(node: ast.Call, module: str, path: Path) -> str | None:
    """The module an import_module("...") or __import__("...") call names, when it is a literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    target = first.value
    if target.startswith("."):
        level = len(target) - len(target.lstrip("."))
        rest = target.lstrip(".")
        return _base(module, path, level) + (f".{rest}" if rest else "")
    return target


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """What one module imports of the package, wherever the import is written."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _base(module, path, node.level) if node.level else ""
            source = ".".join(p for p in (source, node.module or "") if p)
            for alias in node.names:  # `from pkg import mod` imports the module pkg.mod
                submodule = f"{source}.{alias.name}"
                found.append((submodule if submodule in modules else source, node.lineno))
        elif isinstance(node, ast.Call):
            target = _literal_import_call(node, module, path)
            if target:
                found.append((target, node.lineno))
    package = module.split(".")[0]
    return [
        Import(module, name, line) for name, line in found if name.split(".")[0] == package and name != module
    ]


def room_of(module: str) -> str | None:
    """The subpackage or top-level module right under the package; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_problems(imports: list[Import], modules: dict[str, Path], root: Path) -> list[str]:
    problems = []
    for module in modules:
        room = room_of(module)
        if room is not None and room not in LAYER_OF:
            problems.append(f"{modules[module].relative_to(root)}: {room} is in no layer of LAYERS")
    for imp in imports:
        here, there = room_of(imp.importer), room_of(imp.imported)
        where = f"{modules[imp.importer].relative_to(root)}:{imp.line}"
        if here is None:
            problems.append(f"{where}: the package's own __init__ imports {imp.imported}")
        elif there is None or here == there or here not in LAYER_OF or there not in LAYER_OF:
            continue
        elif LAYER_OF[there] > LAYER_OF[here]:
            problems.append(f"{where}: {imp.importer} imports {imp.imported}, a higher layer ({there})")
        elif LAYER_OF[there] == LAYER_OF[here]:
            problems.append(f"{where}: {imp.importer} imports {imp.imported}, of its peer {there}")
    return problems


def cycles(imports: list[Import], modules: dict[str, Path]) -> list[list[str]]:
    """Each set of modules that import each other in a circle (strongly connected components of
    more than one module), by Tarjan's algorithm."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        if imp.imported in graph:
            graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def architecture_problems(root: Path, package: str = PACKAGE) -> list[str]:
    modules = module_files(root, package)
    imports = [imp for m, path in modules.items() for imp in imports_of(m, path, modules)]
    problems = sorted(layer_problems(imports, modules, root))
    for circle in cycles(imports, modules):
        files = ", ".join(str(modules[m].relative_to(root)) for m in circle)
        problems.append(f"import cycle between {files}")
    return problems


def test_offload_lab_has_no_cycle_and_no_upward_import():
    problems = architecture_problems(REPO)
    assert not problems, "\n".join(problems)


def test_the_docs_name_each_room_on_its_layer():
    """docs/architecture.md's table: one row per room, its layer counted from 1 at the bottom."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(rf"^\| (\d+) \| `{PACKAGE}\.(\w+)` \|", text, flags=re.M)
    documented = {room: int(layer) for layer, room in rows}
    assert documented == {room: i + 1 for room, i in LAYER_OF.items()}
    assert len(rows) == len(documented), "a room is in the table twice"


# -------------------------------------------------------------------------- the checks, checked


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / "lab_pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_circle_is_named_by_its_files(tmp_path):
    write_package(
        tmp_path,
        {
            "__init__.py": "",
            "plan/__init__.py": "",
            "plan/spec.py": "from . import steps\n",
            "plan/steps.py": "def f():\n    from .spec import X\n",  # hidden inside a function
        },
    )
    assert architecture_problems(tmp_path, "lab_pkg") == [
        "import cycle between lab_pkg/plan/spec.py, lab_pkg/plan/steps.py"
    ]


def test_an_import_of_a_higher_layer_or_a_peer_is_named_with_its_line(tmp_path):
    write_package(
        tmp_path,
        {
            "__init__.py": "",
            "paths.py": "",
            "plan/__init__.py": "",
            "plan/spec.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from ..run.sweep import Sweep\n"
                "from .. import paths\n"  # lower: allowed
            ),
            "hosts/__init__.py": "",
            "hosts/remote.py": "import importlib\nimportlib.import_module('lab_pkg.plan.spec')\n",
            "run/__init__.py": "",
            "run/sweep.py": "from lab_pkg import paths\n",  # lower: allowed
        },
    )
    assert architecture_problems(tmp_path, "lab_pkg") == [
        "lab_pkg/hosts/remote.py:2: lab_pkg.hosts.remote imports lab_pkg.plan.spec, of its peer plan",
        "lab_pkg/plan/spec.py:3: lab_pkg.plan.spec imports lab_pkg.run.sweep, a higher layer (run)",
    ]


def test_a_room_missing_from_the_layers_is_named(tmp_path):
    write_package(tmp_path, {"__init__.py": "", "helpers.py": ""})
    problems = architecture_problems(tmp_path, "lab_pkg")
    assert problems == ["lab_pkg/helpers.py: helpers is in no layer of LAYERS"]
