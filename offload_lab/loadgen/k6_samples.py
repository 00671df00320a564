"""Per-request samples: every step also writes k6's per-request CSV (`--out csv`, unix-ms
timestamps) on the loadgen. `RemoteK6.pull_samples` filters it there to the rows and columns of
docs/result-format.md ("Per-second evidence"), gzips it and brings it home; the raw CSV is
deleted on the loadgen.
Measured with k6 v1.1.0: an http_req_duration row's timestamp is the request's END (response
received, truncated to the ms); k6 flushes the CSV every second and once more on exit (also on
SIGINT), so the file is complete when k6 has returned.
"""

from __future__ import annotations

import gzip
import shlex
from pathlib import Path

SAMPLE_COLUMNS = ("metric_name", "timestamp", "metric_value", "expected_response", "status")
# written after SAMPLE_COLUMNS: the request's task id (async), from k6's `metadata` column
TASK_ID_COLUMN = "task_id"
# the first: one row per request (value ms, as k6 wrote it); the others: counts, value as a number
SAMPLE_METRICS = ("http_req_duration", "dropped_iterations", "vus")
# the only system tags k6 attaches to a sample (K6_SYSTEM_TAGS): the two SAMPLE_COLUMNS that are
# tags. k6's default dozen made each CSV row twice as long, and its writes stall k6 (measured:
# docs/measurement.md, "Instruments and their cost")
SYSTEM_TAGS = ("expected_response", "status")

# Filters k6's CSV (columns located by header name) to SAMPLE_COLUMNS for SAMPLE_METRICS. Plain
# POSIX awk (mawk on Debian). A line with a double quote holds a quoted field (an error message
# with a comma, say) and is split as CSV, joining the next lines while a quote is open.
_FILTER_AWK = r"""
function csvsplit(line,   n, i, c, q, cur, len) {
  n = 0; cur = ""; q = 0; len = length(line)
  for (i = 1; i <= len; i++) {
    c = substr(line, i, 1)
    if (q) {
      if (c == "\"") { if (substr(line, i + 1, 1) == "\"") { cur = cur c; i++ } else q = 0 }
      else cur = cur c
    } else if (c == "\"") q = 1
    else if (c == ",") { f[++n] = cur; cur = "" }
    else cur = cur c
  }
  f[++n] = cur
  return q
}
NR == 1 {
  sub(/\r$/, "")
  for (i = 1; i <= NF; i++) col[$i] = i
  n = split("COLUMNS", want, ",")
  for (i = 1; i <= n; i++) if (!(want[i] in col)) {
    print "k6 CSV header lacks the column " want[i] ": " $0 > "/dev/stderr"; exit 2
  }
  m = col["metric_name"]; t = col["timestamp"]; v = col["metric_value"]
  e = col["expected_response"]; s = col["status"]; md = ("metadata" in col) ? col["metadata"] : 0
  n = split("COUNT_METRICS", names, ",")
  for (i = 1; i <= n; i++) counted[names[i]] = 1
  print "COLUMNS,TASK_ID"
  next
}
function task_id(meta,   k, parts, i) {
  k = split(meta, parts, "&")
  for (i = 1; i <= k; i++) if (substr(parts[i], 1, 8) == "task_id=") return substr(parts[i], 9)
  return ""
}
{
  if (index($0, "\"")) {
    line = $0
    while (csvsplit(line) && (getline nxt) > 0) line = line "\n" nxt
    name = f[m]; ts = f[t]; val = f[v]; er = f[e]; st = f[s]; meta = md ? f[md] : ""
  } else {
    name = $m; ts = $t; val = $v; er = $e; st = $s; meta = md ? $md : ""
  }
  if (name == "REQUEST_METRIC") print name, ts, val, er, st, task_id(meta)
  else if (name in counted) print name, ts, val + 0, "", "", ""
}
"""


def filter_command(raw_csv: str, out_gz: str) -> str:
    """Shell text (POSIX sh, awk, gzip) that filters k6's raw CSV to the samples file of
    docs/result-format.md: SAMPLE_COLUMNS, rows of SAMPLE_METRICS only, gzip -6 to `out_gz`
    (which must end in .gz); the raw CSV is deleted once the samples file is complete. Exits
    non-zero (raw CSV kept) if the header lacks a column or a tool fails."""
    if not out_gz.endswith(".gz"):
        raise ValueError(f"samples file must end in .gz: {out_gz}")
    plain = out_gz.removesuffix(".gz")
    program = _FILTER_AWK.replace("COLUMNS,TASK_ID", ",".join((*SAMPLE_COLUMNS, TASK_ID_COLUMN)))
    program = program.replace("COLUMNS", ",".join(SAMPLE_COLUMNS))
    program = program.replace("REQUEST_METRIC", SAMPLE_METRICS[0])
    program = program.replace("COUNT_METRICS", ",".join(SAMPLE_METRICS[1:]))
    r, p, g = shlex.quote(raw_csv), shlex.quote(plain), shlex.quote(out_gz)
    return (
        f"rm -f {p} {g} && awk -F, -v OFS=, {shlex.quote(program)} {r} > {p} && gzip -6 -f {p} && rm -f {r}"
    )


def count_rows(path: Path) -> int:
    """Data rows (without the header) of a .csv.gz samples file."""
    with gzip.open(path, "rb") as fh:
        lines = sum(1 for _ in fh)
    return max(0, lines - 1)
