"""Fixtures for the analysis tests: fresh copies of run folders built from real k6 output."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_testlib import copy_run


@pytest.fixture
def sweep_run(tmp_path: Path) -> Path:
    """A sync + async sweep (rates 10 and 30 req/s; sync drops iterations at 30)."""
    return copy_run("sweep", tmp_path)


@pytest.fixture
def publishers_run(tmp_path: Path) -> Path:
    """The publisher story: async labels kombu_pool, pika_per_request, pika_shared."""
    return copy_run("publishers", tmp_path)
