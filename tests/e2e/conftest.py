import json
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def run_dir() -> Path:
    path = os.environ.get("E2E_RUN_DIR")
    if not path:
        pytest.fail("E2E_RUN_DIR is not set: these assertions run from scripts/e2e.sh after a sweep")
    return Path(path)


@pytest.fixture(scope="session")
def run(run_dir):
    return json.loads((run_dir / "run.json").read_text())


@pytest.fixture(scope="session")
def steps(run_dir, run):
    loaded = [json.loads((run_dir / "steps" / name).read_text()) for name in run["steps"]]
    assert loaded, "the sweep finished no step"
    return loaded
