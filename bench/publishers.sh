#!/usr/bin/env bash
# Benchmark of the gateway's publishers and /sync on loopback, with its own throwaway broker:
#   bench/publishers.sh            (from anywhere; takes about 4 minutes)
# Extra arguments go to bench/publishers.py (e.g. --duration 5s --only pipelined noop --rate 400 1600).
set -euo pipefail
cd "$(dirname "$0")/.."
export OFFLOAD_TEST_BROKER_PORT=${OFFLOAD_TEST_BROKER_PORT:-5691}
export OFFLOAD_TEST_BROKER_MGMT_PORT=${OFFLOAD_TEST_BROKER_MGMT_PORT:-15691}
export OFFLOAD_TEST_BROKER_DIR=${OFFLOAD_TEST_BROKER_DIR:-/tmp/offload-bench-broker}
exec scripts/with-test-broker.sh .venv/bin/python bench/publishers.py "$@"
