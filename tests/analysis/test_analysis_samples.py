"""offload_lab.analysis.samples on hand-made samples files: parsing, k6-style percentiles,
per-second buckets."""

from __future__ import annotations

import gzip
from pathlib import Path

import analysis_testlib  # noqa: F401  (puts the repository on sys.path)
import numpy as np
import pytest

from offload_lab.analysis.samples import SamplesError, latency_stats, per_second, percentile, read_samples

T0 = 1796290000.0
HEADER = "metric_name,timestamp,metric_value,expected_response,status"
# five requests (end ms since T0, duration ms, ok, status), three drops, three VU samples:
#   end 0.5 s  dur 100   -> started 0.4  (second 0), ok
#   end 1.2 s  dur 300   -> started 0.9  (second 0), ok
#   end 1.9 s  dur 50    -> started 1.85 (second 1), failed 503
#   end 2.1 s  dur 1500  -> started 0.6  (second 0), failed (timeout: status 0)
#   end 2.5 s  dur 20    -> started 2.48 (second 2), ok
ROWS = """\
vus,1796290000000,5,,
http_req_duration,1796290000500,100.000000,true,202
dropped_iterations,1796290001000,1,,
vus,1796290001000,6,,
http_req_duration,1796290001200,300.000000,true,202
dropped_iterations,1796290001500,1,,
http_req_duration,1796290001900,50.000000,false,503
vus,1796290002000,7,,
http_req_duration,1796290002100,1500.000000,false,0
http_req_duration,1796290002500,20.000000,true,202
dropped_iterations,1796290002999,1,,
"""


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", newline="") as fh:
        fh.write(text)
    return path


@pytest.fixture
def samples_file(tmp_path: Path) -> Path:
    return write_gz(tmp_path / "01-sync-3.csv.gz", HEADER + "\n" + ROWS)


def test_read_samples(samples_file):
    s = read_samples(samples_file)
    assert s.count == 5 and s.bad_rows == 0
    assert s.req_ms.tolist() == [100, 300, 50, 1500, 20]
    assert s.req_ok.tolist() == [True, True, False, False, True]
    assert s.req_status.tolist() == [202, 202, 503, 0, 202]
    assert s.failed == 2
    assert s.req_end_s[0] == pytest.approx(T0 + 0.5)
    assert s.req_start_s.tolist() == pytest.approx([T0 + 0.4, T0 + 0.9, T0 + 1.85, T0 + 0.6, T0 + 2.48])
    assert s.dropped_s.tolist() == pytest.approx([T0 + 1.0, T0 + 1.5, T0 + 2.999])
    assert s.vus.tolist() == [5, 6, 7]


def test_columns_found_by_name_and_bad_rows_counted(tmp_path):
    text = (
        "status,metric_value,extra,metric_name,expected_response,timestamp\n"
        "202,12.5,x,http_req_duration,true,1796290001234\n"
        "202,oops,x,http_req_duration,true,1796290001234\n"
        ",1,,dropped_iterations,,1796290001500\n"
        "short,row\n"
    )
    s = read_samples(write_gz(tmp_path / "s.csv.gz", text))
    assert s.req_ms.tolist() == [12.5] and s.req_status.tolist() == [202] and s.req_ok.tolist() == [True]
    assert s.dropped_s.size == 1
    assert s.bad_rows == 2


@pytest.mark.parametrize(
    "text, message",
    [("", "empty"), ("metric_name,timestamp,metric_value,status\n", "lacks expected_response")],
)
def test_unusable_files(tmp_path, text, message):
    with pytest.raises(SamplesError, match=message):
        read_samples(write_gz(tmp_path / "s.csv.gz", text))


def test_not_gzip(tmp_path):
    bad = tmp_path / "s.csv.gz"
    bad.write_text("not gzip")
    with pytest.raises(SamplesError, match="unreadable"):
        read_samples(bad)


def test_plain_csv_is_read_too(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "\n" + ROWS)
    assert read_samples(path).count == 5


def test_percentile_interpolates_like_k6():
    # position q/100 x (n-1) in the sorted values, linear between the neighbours
    assert percentile([4, 1, 3, 2], 50) == 2.5  # position 1.5
    assert percentile([10, 20], 90) == pytest.approx(19.0)  # position 0.9
    assert percentile([1, 2, 3, 4, 5], 50) == 3  # on a value
    assert percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)  # position 3.8
    assert percentile([1, 2, 3, 4, 5], 0) == 1 and percentile([1, 2, 3, 4, 5], 100) == 5
    assert percentile([7], 99) == 7
    assert percentile([], 50) is None
    assert percentile(np.arange(101.0), 99) == pytest.approx(99.0)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_latency_stats(samples_file):
    s = read_samples(samples_file)
    # sorted 20, 50, 100, 300, 1500
    stats = latency_stats(s)
    assert stats["count"] == 5
    assert stats["avg"] == pytest.approx(1970 / 5)
    assert stats["med"] == 100  # position 2
    assert stats["p95"] == pytest.approx(300 + 1200 * 0.8)  # position 3.8 -> 1260
    assert stats["p99"] == pytest.approx(300 + 1200 * 0.96)  # position 3.96 -> 1452
    assert stats["max"] == 1500 and stats["min"] == 20
    ok = latency_stats(s, ok_only=True)  # 20, 100, 300
    assert ok["count"] == 3 and ok["med"] == 100 and ok["p95"] == pytest.approx(100 + 200 * 0.9)


def test_latency_stats_without_requests(tmp_path):
    s = read_samples(write_gz(tmp_path / "s.csv.gz", HEADER + "\nvus,1796290000000,5,,\n"))
    assert latency_stats(s) == {
        "avg": None,
        "med": None,
        "p95": None,
        "p99": None,
        "max": None,
        "min": None,
        "count": 0,
    }


def test_per_second(samples_file):
    s = read_samples(samples_file)
    ps = per_second(s, T0, load_started_unix_s=T0 + 0.2, duration_s=2, rate=3)
    assert len(ps) == 3  # the last event (a drop) is at 2.999 s
    assert ps.t.tolist() == [0, 1, 2]
    assert ps.started.tolist() == [3, 1, 1]
    assert ps.ok.tolist() == [1, 1, 1]
    assert ps.failed.tolist() == [0, 1, 1]
    assert ps.dropped.tolist() == [0, 2, 1]
    assert ps.attempted.tolist() == [3, 3, 2]
    assert ps.vus.tolist() == [5, 6, 7]
    # latency of the requests ENDING in each second: [100], [300, 50], [1500, 20]
    assert ps.p50.tolist() == pytest.approx([100, 175, 760])
    assert ps.p95.tolist() == pytest.approx([100, 50 + 250 * 0.95, 20 + 1480 * 0.95])
    assert ps.p99.tolist() == pytest.approx([100, 50 + 250 * 0.99, 20 + 1480 * 0.99])
    # offered: 3/s over [0.2, 2.2): 0.8, 1 and 0.2 of a second
    assert ps.offered.tolist() == pytest.approx([2.4, 3.0, 0.6])
    assert ps.offered.sum() == pytest.approx(6.0)
    assert ps.outside == 0


def test_per_second_gaps_window_and_events_before_t0(samples_file):
    s = read_samples(samples_file)
    # t0 one second later: the first request (end 0.5 s) falls before it and is left out
    ps = per_second(s, T0 + 1, load_started_unix_s=T0 + 1, duration_s=5, rate=10)
    assert len(ps) == 5  # the load window runs to 5 s after t0
    assert ps.ok.tolist() == [1, 1, 0, 0, 0]
    assert ps.failed.tolist() == [1, 1, 0, 0, 0]
    assert ps.started.tolist() == [1, 1, 0, 0, 0]  # 3 requests started before t0
    assert ps.outside == 1
    assert np.isnan(ps.p50[2:]).all()  # no request ended then
    assert ps.offered.tolist() == pytest.approx([10, 10, 10, 10, 10])
    # without a rate or window the offered rate is unknown
    assert np.isnan(per_second(s, T0).offered).all()
