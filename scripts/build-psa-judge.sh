#!/usr/bin/env bash
# Build the Pod Security Admission judge (tests/policies/psa_judge) from Go modules, once.
# Prints the binary's path. Built in a temporary folder and moved into place when done,
# so an interrupted build never leaves a half-written judge that later runs would trust.
set -euo pipefail
cd "$(dirname "$0")/.."

PSA_VERSION="v0.36.3"
SRC="$PWD/tests/policies/psa_judge"
DEST="${XDG_CACHE_HOME:-$HOME/.cache}/agent-perimeter/psa-judge-$PSA_VERSION"
BIN="$DEST/psa-judge"

if [ ! -x "$BIN" ]; then
  echo "build-psa-judge: building k8s.io/pod-security-admission $PSA_VERSION judge into $DEST" >&2
  mkdir -p "$(dirname "$DEST")"
  tmp="$(mktemp -d "$(dirname "$DEST")/.build-psa-judge.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$SRC" && go build -trimpath -o "$tmp/psa-judge" .)
  rm -rf "$DEST.old"
  [ -d "$DEST" ] && mv "$DEST" "$DEST.old"
  mv "$tmp" "$DEST"
  rm -rf "$DEST.old"
  trap - EXIT
fi
echo "$BIN"
