"""Tests of the local lab (lab/labctl).

Unit tests of the pure logic run everywhere. Tests marked `lab` act on the real machine (root,
systemd-nspawn, a bridge): they bring the lab up, check it over real SSH and tear it down, so they
run only when asked for, with `-m lab` or OFFLAB_LAB_TESTS=1 (e.g. `pytest -m lab tests/lab`).
"""

import os
import sys
from pathlib import Path

import pytest

LAB_DIR = Path(__file__).resolve().parents[2] / "lab"
sys.path.insert(0, str(LAB_DIR))


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs root and brings the real lab up and down (slow)")


def pytest_collection_modifyitems(config, items):
    asked = os.environ.get("OFFLAB_LAB_TESTS") == "1" or "lab" in (config.getoption("-m") or "")
    skip = pytest.mark.skip(reason="real-lab test: run with -m lab or OFFLAB_LAB_TESTS=1")
    skip_root = pytest.mark.skip(reason="real-lab test needs root")
    for item in items:
        if item.get_closest_marker("lab"):
            if not asked:
                item.add_marker(skip)
            elif os.geteuid() != 0:
                item.add_marker(skip_root)
