"""The table of a capacity suite's folder: capacity.json and capacity.md, rebuilt from its
subjects' folders (offload_lab.analysis.capacity_table) by `fab capacity --suite` after every
subject and by `fab capacity --rejudge`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..analysis.capacity_table import SUITE_KIND, build_table, table_markdown
from ..run.results import write_json


def read_suite_table(path: Path) -> dict[str, Any] | None:
    """The suite folder's capacity.json, None when it has none (or it is not a suite's)."""
    try:
        data = json.loads((path / "capacity.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == SUITE_KIND else None


def write_suite_table(path: Path, suite: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """capacity.json and capacity.md of the suite folder, rebuilt from its subjects' folders
    (`suite`: the suite as recorded, Suite.as_dict)."""
    names = [s["name"] for s in suite["subjects"] if (path / s["name"] / "run.json").is_file()]
    table = build_table(path, names)
    data = {"kind": SUITE_KIND, "schema_version": 1, "suite": suite, **extra, **table}
    write_json(path / "capacity.json", data)
    (path / "capacity.md").write_text(table_markdown(data["suite"], table), encoding="utf-8")
    return data
