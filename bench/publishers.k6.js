// One constant-arrival-rate step against the gateway, for bench/publishers.py.
// Env: BASE_URL, ENDPOINT (/async or /sync), RATE, DURATION, VUS, WORK_MS, SUMMARY_PATH.
import http from "k6/http";

const vus = Number(__ENV.VUS || 100);

export const options = {
  summaryTrendStats: ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"],
  scenarios: {
    step: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE || 400),
      timeUnit: "1s",
      duration: __ENV.DURATION || "15s",
      // all VUs up front: creating VUs mid-step drops iterations (docs/measurement.md)
      preAllocatedVUs: vus,
      maxVUs: vus,
    },
  },
};

const url = `${__ENV.BASE_URL}${__ENV.ENDPOINT || "/async"}`;
const body = JSON.stringify({ work_ms: Number(__ENV.WORK_MS || 1000) });
const params = { headers: { "Content-Type": "application/json" }, timeout: "30s" };

export default function () {
  http.post(url, body, params);
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY_PATH]: JSON.stringify(data) };
}
