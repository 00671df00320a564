# The two commands that matter: `make demo` (lab up, provision, quick sweep, report) and
# `make test` (everything CI runs). See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:/usr/local/go/bin:$(PATH)

.PHONY: deps lint unit e2e test demo lab-up lab-status lab-down provision sweep report artifacts bench-publishers

deps:
	scripts/install-deps.sh

lint: deps
	ruff check .
	ruff format --check .
	cd core-go && go vet ./...
	ansible-lint

# unit and component tests: pytest (gateway, sweep, analysis) and go test, both against a real
# RabbitMQ started on loopback for the run
unit: deps
	scripts/with-test-broker.sh bash -c 'pytest -q -m "not lab and not e2e" && (cd core-go && go test -count=1 ./...)'

e2e: deps
	scripts/e2e.sh

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

provision: deps
	ansible-playbook site.yml

sweep: deps
	fab sweep

report: deps
	fab report
