# The README's commands. `.venv` is the one virtualenv; helm lands in .tools/bin when missing.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
PY := .venv/bin/python
STACK ?= dev

.PHONY: setup setup-live contract render test test-offline e2e e2e-tools live live-tools lint check audit policy-config bench clean

setup:
	@bash scripts/setup.sh

render: setup
	@$(PY) -m infra render --stack $(STACK) --out build/$(STACK)

# Every tier. The e2e tier needs the real engine and control plane, the live tier a real
# node and its images: built once from Go modules and Debian packages into
# ~/.cache/agent-perimeter (cold: ~26 min on 2 cores, ~9 with a `pulumi` on PATH, plus
# ~8 for the node), keyed by each tool's recipe digest, then reused.
test: setup e2e-tools live-tools
	@$(PY) -m pytest

test-offline: setup
	@$(PY) -m pytest --ignore=tests/e2e --ignore=tests/live

e2e: setup e2e-tools
	@$(PY) -m pytest tests/e2e

e2e-tools:
	@bash scripts/e2e/build-tools.sh all >/dev/null

# A real node on this host (root; tests/live): containerd, kubelet, kube-proxy, CoreDNS and
# kube-network-policies, pods from images built here, contained so nothing leaves the machine.
live: setup live-tools
	@$(PY) -m pytest tests/live

setup-live:
	@bash scripts/setup.sh --live

live-tools: setup-live
	@bash scripts/e2e/build-tools.sh control-plane >/dev/null
	@bash scripts/e2e/build-tools.sh live >/dev/null

lint: setup
	@$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy

check: setup
	@$(PY) -m infra check --stack $(STACK)

audit: setup
	@$(PY) -m infra audit --stack $(STACK)

# policies/rules/contract/: the pack's generated copy of infra/contract/ (it runs without infra).
contract:
	@bash scripts/sync-contract.sh

# policies/config/<tier>.json: each shipped stack's levels and declared egress, from the rules.
policy-config: setup
	@$(PY) -c 'import json; from infra.pure.config import load; from infra.pure.network import pack_config_of; \
	[open(f"policies/config/{c.tier.value}.json", "w").write(json.dumps(pack_config_of(c), indent=2) + "\n") \
	 for c in (load(stack=s) for s in ("dev", "staging", "prod"))]'

bench: setup
	@$(PY) benchmarks/bench_check.py && $(PY) benchmarks/bench_render.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
