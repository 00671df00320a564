#!/usr/bin/env bash
# The publisher benchmark on loopback, with its own throwaway broker, in both modes (publish path
# alone, then the whole system with the real core): bench/publishers.py says what it does.
#   bench/publishers.sh                         (from anywhere; about 45 minutes on 2 cores)
#   bench/publishers.sh --out docs/results/bench  (to publish; then see docs/results/bench/README.md)
# Extra arguments go to bench/publishers.py (e.g. --mode publish --repeats 1 --rate 400 800).
set -euo pipefail
cd "$(dirname "$0")/.."
export OFFLOAD_TEST_BROKER_PORT=${OFFLOAD_TEST_BROKER_PORT:-5691}
export OFFLOAD_TEST_BROKER_MGMT_PORT=${OFFLOAD_TEST_BROKER_MGMT_PORT:-15691}
export OFFLOAD_TEST_BROKER_DIR=${OFFLOAD_TEST_BROKER_DIR:-/tmp/offload-bench-broker}
mkdir -p build/bench
# the real core, as scripts/build-artifacts.sh builds it, kept apart from the hosts' artifact
(cd core-go && CGO_ENABLED=0 go build -trimpath -o ../build/bench/offload-core ./cmd/core)
exec scripts/with-test-broker.sh .venv/bin/python bench/publishers.py "$@"
