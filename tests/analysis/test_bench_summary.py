"""bench/publishers.py reports the same figures as the report (analysis.metrics), not a copy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from analysis_testlib import FIXTURES, read_json

REPO = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_publishers", REPO / "bench" / "publishers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_bench_row_uses_the_reports_definitions():
    step = read_json(FIXTURES / "sweep" / "steps" / "03-sync-30.json")
    row = load_bench().summarize(step["k6"], "/sync", step["step"]["rate"], step["step"]["duration_s"])
    metrics = step["k6"]["metrics"]
    requests = metrics["http_reqs"]["values"]["count"]
    failed = metrics["http_req_failed"]["values"]["passes"]
    assert row["requests"] == requests
    assert row["throughput"] == pytest.approx((requests - failed) / step["step"]["duration_s"])
    assert row["dropped"] == metrics["dropped_iterations"]["values"]["count"] > 0
    assert row["p95_ms"] == pytest.approx(metrics["http_req_duration"]["values"]["p(95)"])
