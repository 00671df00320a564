"""N load generators as one: execution segments, merged summaries (counts summed), percentiles
recomputed from the merged per-request samples (never averaged), late / VU-short / CPU-short
generators flagged."""

from __future__ import annotations

import gzip

import pytest

from offload_lab.analysis.samples import per_second, read_samples
from offload_lab.loadgen import k6_merge

HEADER = "metric_name,timestamp,metric_value,expected_response,status,task_id"


def write_samples(path, rows):
    with gzip.open(path, "wt") as fh:
        fh.write(HEADER + "\n" + "".join(row + "\n" for row in rows))
    return path


def request(end_ms, duration_ms, task_id="", ok=True):
    return f"http_req_duration,{end_ms},{duration_ms},{'true' if ok else 'false'},202,{task_id}"


def test_execution_segments_cover_the_whole_test_once():
    assert k6_merge.segment_sequence(1) == "0,1"
    assert k6_merge.execution_segment(0, 1) == "0:1"
    assert k6_merge.segment_sequence(2) == "0,1/2,1"
    assert [k6_merge.execution_segment(i, 2) for i in range(2)] == ["0:1/2", "1/2:1"]
    assert k6_merge.segment_sequence(3) == "0,1/3,2/3,1"
    assert [k6_merge.execution_segment(i, 3) for i in range(3)] == ["0:1/3", "1/3:2/3", "2/3:1"]
    with pytest.raises(ValueError):
        k6_merge.execution_segment(2, 2)


def test_max_vus_are_striped_like_k6_does():
    assert [k6_merge.max_vus_share(5, i, 3) for i in range(3)] == [2, 2, 1]  # `k6 status` said so
    assert sum(k6_merge.max_vus_share(101, i, 2) for i in range(2)) == 101


@pytest.fixture
def two_generators(tmp_path):
    # generator a: 10, 20, 30, 40 ms; generator b: 100, 200 ms (ends in unix ms)
    a = write_samples(
        tmp_path / "a.csv.gz",
        [request(1_000_010 + i, v, f"t-{2 * i}") for i, v in enumerate((10, 20, 30, 40))]
        + ["vus,1000000,3,,,", "vus,1000500,4,,,"],
    )
    b = write_samples(
        tmp_path / "b.csv.gz",
        [request(1_000_150, 100, "t-1"), request(1_000_250, 200, "t-3")] + ["vus,1000000,2,,,"],
    )
    merged = tmp_path / "merged.csv.gz"
    rows = k6_merge.merge_sample_files([("loadgen1", a), ("loadgen2", b)], merged)
    return rows, read_samples(merged)


def test_merged_percentiles_come_from_the_merged_samples(two_generators):
    rows, samples = two_generators
    assert rows == 9 and samples.count == 6 and samples.generators == ("loadgen1", "loadgen2")
    trend = k6_merge.trend_from_samples(samples)
    # sorted: 10 20 30 40 100 200 (n = 6); k6's percentile: position q/100 x 5, interpolated
    assert trend["med"] == pytest.approx(35.0)  # 30 + 0.5 x (40 - 30)
    assert trend["p(90)"] == pytest.approx(150.0)  # 100 + 0.5 x 100
    assert trend["p(95)"] == pytest.approx(175.0)  # 100 + 0.75 x 100
    assert trend["p(99)"] == pytest.approx(195.0)  # 100 + 0.95 x 100
    assert trend["avg"] == pytest.approx(400 / 6)
    assert (trend["min"], trend["max"]) == (10.0, 200.0)
    # averaging each generator's median would have said (25 + 150) / 2 = 87.5
    assert trend["med"] != pytest.approx(87.5)


def test_vus_of_a_second_are_summed_over_generators(two_generators):
    _, samples = two_generators
    seconds = per_second(samples, t0_unix_s=1000.0)
    assert seconds.vus[0] == 4 + 2  # a's highest (4) + b's (2), not the highest of all (4)


def summary(iterations, dropped=0, failed=0, med=1.0, avg=1.0, vus_max=5, vus=3):
    def metric(kind, **values):
        return {"type": kind, "contains": "time" if kind == "trend" else "default", "values": values}

    metrics = {
        "iterations": metric("counter", count=iterations, rate=iterations / 2),
        "http_reqs": metric("counter", count=iterations, rate=iterations / 2),
        "http_req_failed": metric("rate", passes=failed, fails=iterations - failed, rate=failed / iterations),
        "dropped_iterations": metric("counter", count=dropped, rate=0),
        "vus": metric("gauge", value=0, min=0, max=vus),
        "vus_max": metric("gauge", value=vus_max, min=vus_max, max=vus_max),
        "http_req_duration": metric(
            "trend", avg=avg, min=0.5, med=med, max=9.0, **{"p(95)": 8.0, "p(99)": 9.0}
        ),
    }
    return {"metrics": metrics, "state": {"testRunDurationMs": 2000 + iterations}, "offload": {"rate": 100}}


def test_counts_are_summed_and_percentiles_wait_for_the_samples(two_generators):
    _, samples = two_generators
    merged = k6_merge.merge_summaries(
        [summary(60, failed=1, avg=2.0), summary(40, dropped=3, failed=2, avg=7.0)]
    )
    m = merged["metrics"]
    assert m["iterations"]["values"]["count"] == 100 and m["http_reqs"]["values"]["count"] == 100
    assert m["dropped_iterations"]["values"]["count"] == 3
    assert m["http_req_failed"]["values"] == {"passes": 3, "fails": 97, "rate": 0.03}
    assert m["vus_max"]["values"]["max"] == 10
    assert merged["state"]["testRunDurationMs"] == 2060
    trend = m["http_req_duration"]["values"]
    assert trend["avg"] == pytest.approx((60 * 2.0 + 40 * 7.0) / 100)  # weighted by requests: exact
    assert trend["med"] is None and trend["p(95)"] is None  # never an average of percentiles
    k6_merge.with_sample_trend(merged, samples)
    assert m["http_req_duration"]["values"]["p(95)"] == pytest.approx(175.0)
    assert merged["offload"]["trend_from_samples"] is True
    assert k6_merge.merge_summaries([summary(5)]) == summary(5)  # one generator: k6's own summary


def test_late_vu_short_and_cpu_short_generators_are_flagged(tmp_path):
    # rate 10/s over 2: generator 2's first iteration is due 0.1 s after generator 1's
    a = write_samples(tmp_path / "a.csv.gz", [request(1_000_010, 10), request(1_000_210, 10)])
    b = write_samples(tmp_path / "b.csv.gz", [request(1_000_110 + 900, 10)])  # 0.9 s beyond its due
    k6_merge.merge_sample_files([("lg1", a), ("lg2", b)], tmp_path / "m.csv.gz")
    samples = read_samples(tmp_path / "m.csv.gz")
    merged = {"offload": {"generators": [
        {"host": "lg1", "summary": summary(10, vus=5, vus_max=5)},  # every VU busy at the cap
        {"host": "lg2", "summary": summary(10, vus=2, vus_max=5)},
    ]}}  # fmt: skip
    hosts = {"lg1": {"cpu_pct": 40.0}, "lg2": {"cpu_pct": 97.0}}
    lines = k6_merge.flag_generators(merged, samples, hosts, rate=10, max_vus=10)
    g1, g2 = merged["offload"]["generators"]
    assert g1["flags"] == ["vus_short"] and g1["start_offset_s"] == 0
    assert g2["flags"] == ["late_start", "cpu_short"] and g2["start_offset_s"] == pytest.approx(0.9)
    assert lines == ["lg1: vus_short", "lg2: late_start", "lg2: cpu_short"]
    # on time, enough VUs, CPU to spare: no flag; without samples the resume times count
    merged = {"offload": {"generators": [
        {"host": "lg1", "resumed_unix_s": 50.0, "summary": summary(10, vus=2)},
        {"host": "lg2", "resumed_unix_s": 50.3, "summary": summary(10, vus=2)},
    ]}}  # fmt: skip
    assert k6_merge.flag_generators(merged, None, {}, rate=10, max_vus=10) == []
