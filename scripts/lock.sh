#!/usr/bin/env bash
# Regenerate the pins: requirements.lock (the project, dev tools included) from pyproject.toml,
# and policies/requirements.txt (the policy pack), servers/requirements.txt and
# sandbox/requirements.txt (the images) from the same pins. One resolution for Python
# 3.11-3.13 on every platform, every file hashed. Run after changing a dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION="0.13.8"
venv=.tools/lock-venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x "$venv/bin/uv" ] || [ "$("$venv/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "lock: installing uv $UV_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "uv==$UV_VERSION"
fi
common=(--universal --python-version 3.11 --generate-hashes --quiet
        --custom-compile-command "scripts/lock.sh")
echo "lock: resolving pyproject.toml into requirements.lock"
"$venv/bin/uv" pip compile pyproject.toml --extra dev --extra servers "${common[@]}" -o requirements.lock
echo "lock: pinning policies/requirements.in into policies/requirements.txt from the lock"
"$venv/bin/uv" pip compile policies/requirements.in --constraint requirements.lock "${common[@]}" \
  -o policies/requirements.txt
echo "lock: pinning servers/requirements.in into servers/requirements.txt from the lock"
"$venv/bin/uv" pip compile servers/requirements.in --constraint requirements.lock "${common[@]}" \
  -o servers/requirements.txt
echo "lock: pinning sandbox/requirements.in into sandbox/requirements.txt from the lock"
"$venv/bin/uv" pip compile sandbox/requirements.in --constraint requirements.lock "${common[@]}" \
  -o sandbox/requirements.txt
