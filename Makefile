# The two commands that matter: `make demo` (lab up, provision, quick sweep, report) and
# `make test` (everything CI runs). See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:/usr/local/go/bin:$(PATH)

.PHONY: deps lint unit e2e test demo lab-up lab-status lab-down provision sweep report artifacts bench-publishers

deps:
	scripts/install-deps.sh

# shellcheck: scripts/*.sh, and lab/labctl when it is a shell script (scripts/lint-shell.sh);
# gofmt -l must print nothing
lint: deps
	ruff check .
	ruff format --check .
	scripts/lint-shell.sh
	cd core-go && unformatted=$$(gofmt -l .) && if [ -n "$$unformatted" ]; then \
		echo "gofmt -l: not gofmt-formatted (run gofmt -w):" >&2; echo "$$unformatted" >&2; exit 1; fi
	cd core-go && go vet ./...
	ansible-lint

# unit and component tests: pytest (gateway, sweep, analysis) and go test (with the race
# detector), both against a real RabbitMQ started on loopback for the run
unit: deps
	scripts/with-test-broker.sh bash -c 'pytest -q -m "not lab and not e2e" && (cd core-go && go test -race -count=1 ./...)'

e2e: deps
	scripts/e2e.sh

# the cluster profile end to end: 3 brokers, 2 gateways, 2 cores, 2 loadgens; site.yml twice
# (changed=0), the cluster sweep with a broker node killed mid-step, its report, assertions
.PHONY: e2e-cluster
e2e-cluster: deps
	scripts/e2e-cluster.sh

# the same end to end on Debian 12 hosts (RabbitMQ 3.10), the compared release (docs/brokers.md)
.PHONY: e2e-bookworm
e2e-bookworm: deps
	E2E_RELEASE=bookworm scripts/e2e.sh

test: lint unit e2e

demo: deps
	scripts/demo.sh $(SPEC)

artifacts: deps
	scripts/build-artifacts.sh

lab-up: deps
	lab/labctl up
lab-status:
	lab/labctl status
lab-down:
	lab/labctl down

# the publisher benchmark on loopback, both modes, 3 repeats (about 45 minutes on 2 cores; keep
# the machine otherwise idle): docs/results/bench/README.md. BENCH_ARGS go to bench/publishers.py
bench-publishers: deps
	bench/publishers.sh $(BENCH_ARGS)

# what the sweep's own instruments cost, on the provisioned lab (about 40 minutes; keep the
# machine otherwise idle): docs/measurement.md. OVERHEAD_RUN names the results folder,
# OVERHEAD_PARTS (async sync stats total) picks some of its runs.
.PHONY: overhead
overhead: deps
	scripts/overhead.sh $(OVERHEAD_RUN)

# RabbitMQ 4.0 (Debian 13) against 3.10 (Debian 12) on the lab, back to back (about 75 minutes;
# keep the machine otherwise idle): docs/brokers.md. COMPARE_RUN names the results folder.
.PHONY: compare-brokers
compare-brokers: deps
	scripts/compare-brokers.sh $(COMPARE_RUN)

provision: deps
	ansible-playbook site.yml

sweep: deps
	fab sweep

report: deps
	fab report
