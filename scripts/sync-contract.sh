#!/usr/bin/env bash
# The policy pack's copy of the contract (policies/rules/contract/), generated from
# infra/contract/: the pack runs in its own virtualenv without `infra`. Byte-equal, always:
# tests/unit/test_contract.py fails when the two differ.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf policies/rules/contract
mkdir -p policies/rules/contract
cp infra/contract/*.py policies/rules/contract/
