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
//   SYNC_RETRIES  sync only (checked, then ignored, in the other modes: on the async path the core
//                 retries): retry a request the gateway answered 5xx (or not at all: a timeout, a
//                 lost connection) up to this many times, integer 0..10 (default 0: no retry,
//                 the body stays {"work_ms": WORK_MS}). With retries every attempt sends
//                 {"work_ms", "task_id", "attempt"} (task_id `<TASK_ID_PREFIX or sync>-<iteration>`,
//                 attempt 1, 2, ...; with a prefix also the samples' task_id), so the core draws
//                 each attempt's failure as it would for a queued task, and the sync path can be
//                 compared with async on what the user finally gets. The VU waits out the
//                 backoff (it is the client's time: a VU busy retrying is not free for arrivals).
//   SYNC_RETRY_BACKOFF_MS  the wait before each retry: one integer d (retry k waits d x 4^(k-1),
//                 the core's default shape: 1000 -> 1000, 4000, 16000), or SYNC_RETRIES
//                 comma-separated integers; each 1..3600000 (default 1000)
//   With retries, custom metrics in the summary: offload_sync_retries (retries sent),
//   offload_sync_5xx (5xx answers, every attempt), offload_sync_gave_up (rate: iterations whose
//   last attempt still failed), offload_sync_attempts (trend: attempts per iteration) and
//   offload_sync_final_ms (trend: first attempt's start to the last answer, backoff included).
// Checks: sync expects 200, async and noop expect 202. Trend stats include p(99).
// Note: k6 leaves `dropped_iterations` out of the summary when none were dropped (read it as 0).
import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

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
// checked in every mode, used in sync only (on the async path the core retries)
const RETRIES_ASKED = intInRange('SYNC_RETRIES', __ENV.SYNC_RETRIES || '0', 0, 10);
const BACKOFF_ASKED = backoffSchedule(__ENV.SYNC_RETRY_BACKOFF_MS || '1000', RETRIES_ASKED);
const SYNC_RETRIES = MODE === 'sync' ? RETRIES_ASKED : 0;
const BACKOFF_MS = MODE === 'sync' ? BACKOFF_ASKED : [];

function intInRange(name, value, lo, hi) {
  const n = Number(value);
  if (String(value).trim() === '' || !Number.isInteger(n) || n < lo || n > hi) {
    throw new Error(`${name} must be an integer ${lo}..${hi}, got "${value}"`);
  }
  return n;
}

// the wait before retry 1, 2, ... (ms): one value d gives d x 4^(k-1), a list gives itself
function backoffSchedule(text, retries) {
  const values = text.split(',').map((v) => intInRange('SYNC_RETRY_BACKOFF_MS', v.trim(), 1, 3600000));
  if (values.length === 1) {
    return Array.from({ length: retries }, (_, k) => Math.min(3600000, values[0] * Math.pow(4, k)));
  }
  if (values.length !== retries) {
    throw new Error(
      `SYNC_RETRY_BACKOFF_MS must be one integer or SYNC_RETRIES (${retries}) of them, got "${text}"`
    );
  }
  return values;
}

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

const syncRetries = new Counter('offload_sync_retries');
const sync5xx = new Counter('offload_sync_5xx');
const syncGaveUp = new Rate('offload_sync_gave_up');
const syncAttempts = new Trend('offload_sync_attempts');
const syncFinal = new Trend('offload_sync_final_ms', true);

function retryable(res) {
  return res.status === 0 || res.status >= 500;
}

// one user's request on the sync path: attempts until a 200, a final failure, or no retry left
function syncWithRetries() {
  const taskId = `${TASK_ID_PREFIX || 'sync'}-${exec.scenario.iterationInTest}`;
  const started = Date.now();
  let res = null;
  let attempt = 1;
  if (TASK_ID_PREFIX !== '') {
    exec.vu.metrics.metadata.task_id = taskId; // every attempt's sample names its task
  }
  for (;;) {
    res = http.post(url(), JSON.stringify({ work_ms: WORK_MS, task_id: taskId, attempt }), PARAMS);
    check(res, { [`status is ${EXPECTED}`]: (r) => r.status === EXPECTED });
    if (res.status >= 500) {
      sync5xx.add(1);
    }
    if (res.status === EXPECTED || !retryable(res) || attempt > SYNC_RETRIES) {
      break;
    }
    sleep(BACKOFF_MS[attempt - 1] / 1000);
    syncRetries.add(1);
    attempt += 1;
  }
  delete exec.vu.metrics.metadata.task_id;
  syncAttempts.add(attempt);
  syncGaveUp.add(res.status !== EXPECTED);
  syncFinal.add(Date.now() - started);
}

export default function () {
  if (SYNC_RETRIES > 0) {
    syncWithRetries();
    return;
  }
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
    sync_retries: SYNC_RETRIES,
    sync_retry_backoff_ms: BACKOFF_MS,
  };
  // a counter that never counted is left out of the summary too: 0 is the figure
  if (SYNC_RETRIES > 0) {
    for (const name of ['offload_sync_retries', 'offload_sync_5xx']) {
      if (!data.metrics[name]) {
        data.metrics[name] = { type: 'counter', contains: 'default', values: { count: 0, rate: 0 } };
      }
    }
  }
  // k6 leaves dropped_iterations out when nothing was dropped: write the 0 explicitly
  if (!data.metrics.dropped_iterations) {
    data.metrics.dropped_iterations = { type: 'counter', contains: 'default', values: { count: 0, rate: 0 } };
  }
  return { [SUMMARY_PATH]: JSON.stringify(data, null, 1) };
}
