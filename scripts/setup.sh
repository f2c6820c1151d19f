#!/usr/bin/env bash
# One set-up path for users, CI and the tests: system tools, helm, the virtualenv.
# Idempotent: each step is skipped when what it provides is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION="v3.21.4"
TOOLS_BIN="$PWD/.tools/bin"

# --live: also what the live node needs (tests/live): a container runtime, CNI plugins,
# netfilter tools and the image tools (debootstrap: the Debian root filesystem of the Python
# and psql images), all from Debian.
LIVE_PACKAGES="containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins
iptables:iptables nft:nftables umoci:umoci skopeo:skopeo gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev
/usr/sbin/debootstrap:debootstrap"

need_apt=()
if [ "${1:-}" = --live ]; then
  for pair in $LIVE_PACKAGES; do
    what=${pair%%:*}
    if [ "${what#/}" != "$what" ]; then [ -e "$what" ] || need_apt+=("${pair#*:}")
    else command -v "$what" >/dev/null 2>&1 || need_apt+=("${pair#*:}"); fi
  done
fi
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || need_apt+=(postgresql)
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian (apt)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v helm >/dev/null 2>&1 && [ ! -x "$TOOLS_BIN/helm" ]; then
  echo "setup: building helm $HELM_VERSION from Go modules (a few minutes on a cold cache)"
  GOBIN="$TOOLS_BIN" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" 2>&1 \
    | { grep -v '^go: downloading' || true; } >&2
fi

# The offline commands expand every chart in one process built from helm's own packages
# (scripts/renderer); rebuilt when its sources change. Warm module cache: about a minute.
RENDERER="$TOOLS_BIN/agent-perimeter-render"
if [ ! -x "$RENDERER" ] || [ -n "$(find scripts/renderer -newer "$RENDERER" -type f | head -n 1)" ]; then
  echo "setup: building the chart renderer from helm $HELM_VERSION's Go packages (scripts/renderer)"
  mkdir -p "$TOOLS_BIN"
  (cd scripts/renderer && GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w" -o "$RENDERER.tmp" .) 2>&1 \
    | { grep -v '^go: downloading' || true; } >&2
  mv "$RENDERER.tmp" "$RENDERER"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $(python3 --version)"
  python3 -m venv .venv
fi
# The policy pack runs in its own virtualenv (PulumiPolicy.yaml); the project's holds the
# same pins, so the pack uses it rather than a second install. The engine starts the
# dynamic providers (the platform objects) in the program's directory (`main: infra/`)
# and resolves `virtualenv: .venv` from there: the same link makes it the project's.
for dir in policies infra; do
  [ -e "$dir/.venv" ] || ln -s ../.venv "$dir/.venv"
done
# Reproducible: every package (dev tools included) at the lock's version and hash
# (scripts/lock.sh regenerates it), then the project itself without resolving anything.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
stamp=.venv/.agent-perimeter-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  echo "setup: installing the locked Python packages into .venv (requirements.lock)"
  .venv/bin/python -m pip install -q --require-hashes -r requirements.lock
  echo "setup: installing agent-perimeter into .venv (editable)"
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi
