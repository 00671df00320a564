// offload-lab load script: one constant-arrival-rate scenario against the gateway.
// Everything comes from environment variables (k6 -e NAME=VALUE or the process environment):
//   MODE          sync | async | noop   -> POST ${BASE_URL}/${MODE} (noop: /async's answer, no publish)
//   RATE          iterations (requests) per second, integer > 0
//   DURATION      k6 duration string, e.g. "30s"
//   PRE_VUS       preAllocatedVUs  (default: MAX_VUS)
//   MAX_VUS       maxVUs
//   BASE_URL      the gateway, e.g. http://10.77.77.12:8000; several gateways separated by commas:
//                 iteration i goes to gateway i mod N (round-robin, each load generator over all)
//   WORK_MS       work time sent in the body {"work_ms": WORK_MS} (default 1000)
//   SUMMARY_PATH  where handleSummary writes k6's summary JSON (default summary.json)
//   TIMEOUT       per-request timeout (default "10s": well above the work time)
//   GRACEFUL_STOP time for in-flight requests after DURATION (default "12s": > TIMEOUT)
//   TASK_ID_PREFIX async only: every task gets the id `<prefix>-<iteration>` in its body, and
//                 the same id as sample metadata (`task_id=...` in the CSV output), so the
//                 accepted ids can be checked against the core's outcome records (the ledger)
// Checks: sync expects 200, async and noop expect 202. Trend stats include p(99).
// Note: k6 leaves `dropped_iterations` out of the summary when none were dropped (read it as 0).
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';

function need(name) {
  const value = __ENV[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is required`);
  }
  return value;
}

function positiveInt(name, value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`${name} must be a positive integer, got "${value}"`);
  }
  return n;
}

const MODE = need('MODE');
if (MODE !== 'sync' && MODE !== 'async' && MODE !== 'noop') {
  throw new Error(`MODE must be sync or async (or noop: /async without the publish), got "${MODE}"`);
}
const RATE = positiveInt('RATE', need('RATE'));
const DURATION = need('DURATION');
const MAX_VUS = positiveInt('MAX_VUS', need('MAX_VUS'));
const PRE_VUS = positiveInt('PRE_VUS', __ENV.PRE_VUS || String(MAX_VUS));
if (PRE_VUS > MAX_VUS) {
  throw new Error(`PRE_VUS (${PRE_VUS}) must not exceed MAX_VUS (${MAX_VUS})`);
}
const BASE_URLS = need('BASE_URL')
  .split(',')
  .map((u) => u.trim().replace(/\/+$/, ''))
  .filter((u) => u !== '');
if (BASE_URLS.length === 0) {
  throw new Error('BASE_URL names no gateway');
}
const WORK_MS = Number(__ENV.WORK_MS === undefined || __ENV.WORK_MS === '' ? '1000' : __ENV.WORK_MS);
if (!Number.isInteger(WORK_MS) || WORK_MS < 0 || WORK_MS > 60000) {
  throw new Error(`WORK_MS must be an integer 0..60000, got "${__ENV.WORK_MS}"`);
}
const SUMMARY_PATH = __ENV.SUMMARY_PATH || 'summary.json';
const TIMEOUT = __ENV.TIMEOUT || '10s';
const GRACEFUL_STOP = __ENV.GRACEFUL_STOP || '12s';
const EXPECTED = MODE === 'sync' ? 200 : 202;
const TASK_ID_PREFIX = __ENV.TASK_ID_PREFIX || '';
if (!/^[A-Za-z0-9_-]{0,48}$/.test(TASK_ID_PREFIX)) {
  throw new Error(`TASK_ID_PREFIX must be at most 48 of [A-Za-z0-9_-], got "${TASK_ID_PREFIX}"`);
}
const WITH_IDS = MODE === 'async' && TASK_ID_PREFIX !== '';

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    load: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
      gracefulStop: GRACEFUL_STOP,
      tags: { mode: MODE },
    },
  },
  tags: { mode: MODE },
};

const URLS = BASE_URLS.map((base) => `${base}/${MODE}`);
// this load generator's own iteration count, so that each generator spreads over every gateway
function url() {
  return URLS.length === 1 ? URLS[0] : URLS[exec.scenario.iterationInInstance % URLS.length];
}
const BODY = JSON.stringify({ work_ms: WORK_MS });
const PARAMS = {
  headers: { 'Content-Type': 'application/json' },
  timeout: TIMEOUT,
  responseCallback: http.expectedStatuses(EXPECTED),
};

export default function () {
  if (!WITH_IDS) {
    const res = http.post(url(), BODY, PARAMS);
    check(res, { [`status is ${EXPECTED}`]: (r) => r.status === EXPECTED });
    return;
  }
  const id = `${TASK_ID_PREFIX}-${exec.scenario.iterationInTest}`;
  // metadata, unlike a tag, may be unique per request: it reaches the CSV, not the summary
  exec.vu.metrics.metadata.task_id = id;
  const res = http.post(url(), JSON.stringify({ work_ms: WORK_MS, id }), PARAMS);
  check(res, { [`status is ${EXPECTED}`]: (r) => r.status === EXPECTED });
  delete exec.vu.metrics.metadata.task_id;
}

export function handleSummary(data) {
  // the parameters travel with the summary, so a summary file explains itself
  data.offload = {
    mode: MODE,
    rate: RATE,
    duration: DURATION,
    pre_allocated_vus: PRE_VUS,
    max_vus: MAX_VUS,
    work_ms: WORK_MS,
    url: URLS.length === 1 ? URLS[0] : URLS,
    expected_status: EXPECTED,
    timeout: TIMEOUT,
    graceful_stop: GRACEFUL_STOP,
    task_id_prefix: WITH_IDS ? TASK_ID_PREFIX : null,
  };
  // k6 leaves dropped_iterations out when nothing was dropped: write the 0 explicitly
  if (!data.metrics.dropped_iterations) {
    data.metrics.dropped_iterations = { type: 'counter', contains: 'default', values: { count: 0, rate: 0 } };
  }
  return { [SUMMARY_PATH]: JSON.stringify(data, null, 1) };
}
