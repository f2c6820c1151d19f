# The README's commands. `.venv` is the one virtualenv; helm lands in .tools/bin when missing.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
PY := .venv/bin/python
STACK ?= dev

.PHONY: setup render test test-offline e2e e2e-tools lint check audit bench clean

setup:
	@bash scripts/setup.sh

render: setup
	@$(PY) -m infra render --stack $(STACK) --out build/$(STACK)

# Every tier. The e2e tier needs the real engine and control plane: built once from Go
# modules into ~/.cache/agent-perimeter (cold: ~26 min on 2 cores, ~9 with a `pulumi` on PATH),
# keyed by each tool's recipe digest, then reused.
test: setup e2e-tools
	@$(PY) -m pytest

test-offline: setup
	@$(PY) -m pytest --ignore=tests/e2e

e2e: setup e2e-tools
	@$(PY) -m pytest tests/e2e

e2e-tools:
	@bash scripts/e2e/build-tools.sh all >/dev/null

lint: setup
	@$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy

check: setup
	@$(PY) -m infra check --stack $(STACK)

audit: setup
	@$(PY) -m infra audit --stack $(STACK)

bench: setup
	@$(PY) benchmarks/bench_check.py && $(PY) benchmarks/bench_render.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
