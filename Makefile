# The README's commands. `.venv` is the one virtualenv; helm lands in .tools/bin when missing.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
PY := .venv/bin/python
STACK ?= dev

.PHONY: setup render test lint check audit bench clean

setup:
	@bash scripts/setup.sh

render: setup
	@$(PY) -m infra render --stack $(STACK) --out build/$(STACK)

test: setup
	@$(PY) -m pytest

lint: setup
	@$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy

check: setup
	@$(PY) -m infra check --stack $(STACK)

audit: setup
	@$(PY) -m infra audit --stack $(STACK)

bench: setup
	@$(PY) benchmarks/bench_check.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
