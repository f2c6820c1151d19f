#!/usr/bin/env bash
# Builds the real Pulumi engine (CLI, Python language host, kubernetes and random
# providers) and a Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from Go modules plus
# the public source archives the module proxy refuses. Each tool lands in
# $AP_CACHE/<tool>-<version>/bin, built in a temp dir and moved into place only
# when complete, so an interrupted build is never mistaken for a finished one.
# A tool already in the cache is reused; a `pulumi` on PATH skips the engine.
#
# Usage: build-tools.sh [engine|control-plane|all]   (default: all)
# Prints, on stdout, one line per tool set: "<name> <bin dir>" (progress goes to stderr).
set -euo pipefail

PULUMI_VERSION=v3.274.1
K8S_PROVIDER_VERSION=4.34.2
K8S_PROVIDER_SCHEMA_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4@v4.0.0-20260115033456-f47bc2d6f199
RANDOM_PROVIDER_VERSION=4.21.4
KUBERNETES_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# Public Apache-2.0 sources the Go module proxy refuses, vendored with their provenance
# (sources/README.md), so a clean clone builds everything from its own files.
SOURCES=${E2E_SOURCES:-$here/sources}
AP_CACHE=${AP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-perimeter}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
mkdir -p "$AP_CACHE"

say() { printf '[e2e-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# build_once NAME VERSION FUNCTION: runs FUNCTION in a scratch dir with $out as
# the target bin dir, unless $AP_CACHE/NAME-VERSION/bin/.complete exists.
build_once() {
  local name=$1 version=$2 fn=$3
  local dest="$AP_CACHE/$name-$version"
  if [ -f "$dest/.complete" ]; then
    say "$name $version: cached at $dest"
    return 0
  fi
  local work start
  work=$(mktemp -d "$AP_CACHE/.build-$name.XXXXXX")
  start=$(date +%s)
  say "$name $version: building (cold builds take minutes on 2 cores)"
  mkdir -p "$work/out/bin"
  # Not part of an && / || list, so errexit holds inside the build function.
  local rc=0
  set +e
  (set -e; cd "$work"; out="$work/out/bin" "$fn")
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    say "$name $version: build FAILED (exit $rc; scratch dir kept: $work)"
    return "$rc"
  fi
  echo "$(( $(date +%s) - start ))" > "$work/out/.build-seconds"
  touch "$work/out/.complete"
  rm -rf "$dest"
  mv "$work/out" "$dest"
  rm -rf "$work"
  say "$name $version: built in $(( $(date +%s) - start )) s -> $dest"
}

source_dir() { # module@version -> its directory in the module cache
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

extract() { # archive -> extracted top-level dir in cwd
  tar xzf "$SOURCES/$1"
}

minify_json() { # src dest [version]
  python3 - "$@" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
if len(sys.argv) > 3:
    data["version"] = sys.argv[3]
json.dump(data, open(sys.argv[2], "w"), separators=(",", ":"))
PY
}

# --- the engine --------------------------------------------------------------

build_pulumi_cli() {
  go mod init ap.local/pulumi-cli >/dev/null 2>&1
  go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION" >go-get.log 2>&1
  go build -trimpath -o "$out/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  # The language host and the dynamic-provider / exec shims.
  extract pulumi-language-python.tar.gz
  (
    cd pulumi-language-python/sdk/python/cmd/pulumi-language-python
    go mod edit -dropreplace=github.com/pulumi/pulumi/pkg/v3 -dropreplace=github.com/pulumi/pulumi/sdk/v3 \
      -require="github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" -require="github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION"
    go mod tidy >/dev/null 2>&1
    go build -trimpath -o "$out/pulumi-language-python" \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" .
  )
  local sdk
  sdk=$(source_dir "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION")
  cp "$sdk"/python/cmd/pulumi-language-python-exec "$out/"
  cp "$sdk"/python/dist/* "$out/"
  chmod +x "$out"/*
}

# A Terraform-bridged provider from its vendored `provider/` folder: the schema embedded
# with our version stamped in, the version variable set in the module's own pkg/version.
build_bridged_provider() {
  local name=$1 version=$2 mod
  extract "pulumi-$name.tar.gz"
  cd "pulumi-$name/provider"
  mod=$(go list -m)
  minify_json "cmd/pulumi-resource-$name/schema.json" "cmd/pulumi-resource-$name/schema-embed.json" "$version"
  go build -trimpath -o "$out/pulumi-resource-$name" \
    -ldflags "-s -w -X $mod/pkg/version.Version=$version" \
    "./cmd/pulumi-resource-$name"
}

build_random_provider() { build_bridged_provider random "$RANDOM_PROVIDER_VERSION"; }

build_kubernetes_provider() {
  extract pulumi-kubernetes.tar.gz
  cd pulumi-kubernetes/provider
  go mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4 \
    -require=github.com/fluxcd/pkg/ssa@v0.72.0
  go mod tidy -e >/dev/null 2>&1
  local schema_src
  schema_src=$(source_dir "$K8S_PROVIDER_SCHEMA_MODULE")
  minify_json "$schema_src/cmd/pulumi-resource-kubernetes/schema.json" \
    cmd/pulumi-resource-kubernetes/schema-embed.json "$K8S_PROVIDER_VERSION"
  minify_json cmd/pulumi-resource-kubernetes/terraform-mapping.json \
    cmd/pulumi-resource-kubernetes/terraform-mapping-embed.json
  go build -trimpath -o "$out/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_VERSION" \
    ./cmd/pulumi-resource-kubernetes
}

# --- the control plane -------------------------------------------------------

build_kubernetes() {
  go mod init ap.local/kube >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local staging_version="v0${KUBERNETES_VERSION#v1}"
  # One replace per staging module, pointing at its published version.
  python3 - "$gomod" "$staging_version" > replaces.txt <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for mod in sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", text, re.M))):
    print(f"-replace={mod}={mod}@{sys.argv[2]}")
PY
  # shellcheck disable=SC2046
  go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION" $(cat replaces.txt)
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy >/dev/null 2>&1
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    say "  kubernetes: $cmd"
    go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

build_etcd() {
  go mod init ap.local/etcd >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
  go mod tidy >/dev/null 2>&1
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" .
}

build_kwok() {
  go mod init ap.local/kwok >/dev/null 2>&1
  go get "sigs.k8s.io/kwok@$KWOK_VERSION" >/dev/null 2>&1
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
GO
  go mod tidy >/dev/null 2>&1
  go build -trimpath -ldflags "-s -w" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
  local src
  src=$(source_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
  # The stages that make Deployments Available and Job pods Succeed without a kubelet.
  mkdir -p "$out/../stages"
  local stage
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
      pod/general/pod-ready pod/general/pod-complete pod/general/pod-delete; do
    cp "$src/kustomize/stage/$stage.yaml" "$out/../stages/"
  done
}

# --- entry -------------------------------------------------------------------

emit() { echo "$1 $2"; }

engine() {
  if command -v pulumi >/dev/null 2>&1 && [ -z "${E2E_BUILD_ENGINE:-}" ]; then
    say "pulumi on PATH ($(command -v pulumi)): using it and its plugins"
    emit pulumi "$(dirname "$(command -v pulumi)")"
    return 0
  fi
  build_once pulumi "$PULUMI_VERSION" build_pulumi_cli
  emit pulumi "$AP_CACHE/pulumi-$PULUMI_VERSION/bin"
  build_once pulumi-resource-kubernetes "$K8S_PROVIDER_VERSION" build_kubernetes_provider
  emit pulumi-resource-kubernetes "$AP_CACHE/pulumi-resource-kubernetes-$K8S_PROVIDER_VERSION/bin"
  build_once pulumi-resource-random "$RANDOM_PROVIDER_VERSION" build_random_provider
  emit pulumi-resource-random "$AP_CACHE/pulumi-resource-random-$RANDOM_PROVIDER_VERSION/bin"
}

control_plane() {
  build_once kubernetes "$KUBERNETES_VERSION" build_kubernetes
  emit kubernetes "$AP_CACHE/kubernetes-$KUBERNETES_VERSION/bin"
  build_once etcd "$ETCD_VERSION" build_etcd
  emit etcd "$AP_CACHE/etcd-$ETCD_VERSION/bin"
  build_once kwok "$KWOK_VERSION" build_kwok
  emit kwok "$AP_CACHE/kwok-$KWOK_VERSION/bin"
}

case "${1:-all}" in
  engine) engine ;;
  control-plane) control_plane ;;
  all) control_plane; engine ;;
  *) echo "usage: $0 [engine|control-plane|all]" >&2; exit 2 ;;
esac
