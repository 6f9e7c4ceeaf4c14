# webstack: the two commands a newcomer needs are `make lab` and `make test` (see README.md).
SHELL := /bin/bash
PY := .venv/bin/python
TOPOLOGY ?= topology/lab.yaml
# Other node counts for the lab, e.g. NODES=lb=3,app=4 (default: the topology file's).
NODES ?=

.PHONY: help deps test lint lab lab-down lab-status bench

help:
	@echo "make lab       bring up the whole stack in LXC containers and print the VIP URL"
	@echo "make test      install what the tests need, run the linters and the whole test suite"
	@echo "make lint      ruff, salt-lint, yamllint, shellcheck"
	@echo "make lab-down  remove everything the lab made"
	@echo "make bench     converge, failover and LB-hop figures on the lab -> bench/results.{json,md}"

deps:
	@scripts/bootstrap-dev

lint: deps
	@scripts/lint

test: deps
	@scripts/lint
	@WEBSTACK_FERRETDB_BIN=$$(scripts/ensure-ferretdb) $(PY) -m pytest tests

lab: deps
	@$(PY) lab/lab up --topology $(TOPOLOGY) $(if $(NODES),--nodes $(NODES))

lab-down:
	@if [ -x $(PY) ]; then $(PY) lab/lab down; else python3 lab/lab down; fi

lab-status: deps
	@$(PY) lab/lab status

# Brings the lab up (or converges it), measures, leaves the lab running. BENCH_ARGS: e.g. --runs 3.
bench: deps
	@$(PY) bench/bench --topology $(TOPOLOGY) $(BENCH_ARGS)
