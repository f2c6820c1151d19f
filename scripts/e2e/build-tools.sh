#!/usr/bin/env bash
# Builds the real Pulumi engine (CLI, Python language host, kubernetes and random
# providers) and a Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from Go modules plus
# the public source archives the module proxy refuses.
#
# Each tool lands in $AP_CACHE/<tool>-<version>-<recipe digest>/bin. The digest covers
# everything that shapes the output (the version, the Go toolchain and flags, the build
# functions' own text, the variables they read, the vendored archives' checksums), so an
# edit to this script rebuilds exactly the tools it touches and a stale entry is never
# found. Built in a temp dir and moved into place only when complete, so an interrupted
# build is never mistaken for a finished one. A `pulumi` on PATH skips the engine.
#
# Usage: build-tools.sh [engine|control-plane|kwok-stages|all]   (default: all)
#          prints on stdout one line per tool: "<name> <bin dir> <version>"
#          (progress goes to stderr)
#        build-tools.sh --verify [part]
#          builds nothing: checks that every tool of the part is cached under the recipe
#          this script gives it; names each missing or stale tool and exits 1 if any is
#        build-tools.sh --digests [part]
#          prints "<name> <version> <recipe digest>" per tool (CI cache keys)
set -euo pipefail

PULUMI_VERSION=v3.274.1
K8S_PROVIDER_VERSION=4.34.2
K8S_PROVIDER_SCHEMA_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4@v4.0.0-20260115033456-f47bc2d6f199
RANDOM_PROVIDER_VERSION=4.21.4
KUBERNETES_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
COREDNS_VERSION=v1.15.0
KNP_VERSION=v0.8.0
# Kernels without the native nft `queue` expression (CONFIG_NFT_QUEUE) but with the xtables
# NFQUEUE target get a kube-network-policies whose queue statements use that target
# (build_kube_network_policies); auto decides from /proc/config.gz.
KNP_XT_QUEUE=${KNP_XT_QUEUE:-auto}
if [ "$KNP_XT_QUEUE" = auto ]; then
  KNP_XT_QUEUE=0
  # grep reads it all (no -q): an early exit would fail zcat under pipefail, at random.
  if zcat /proc/config.gz 2>/dev/null | grep '^# CONFIG_NFT_QUEUE is not set' >/dev/null; then KNP_XT_QUEUE=1; fi
fi
IMAGE_TAG=1
# The Debian root filesystem the Python and psql images share (rootfs-bookworm): debootstrap
# minbase of this suite plus these packages, from the mirror the host's apt uses (where it
# comes from is not part of the recipe; what is installed is). psql >= 15 for the role
# provisioner's \getenv; python-is-python3 for the charts' `python -m ...` commands.
ROOTFS_SUITE=bookworm
ROOTFS_PACKAGES="python3 python-is-python3 postgresql-client-15"
# The Python the images run (bookworm's 3.11): pip installs the hashed pins for it, for
# glibc 2.36 (every manylinux tag up to it), whatever the host's own Python is.
IMAGE_PYTHON=3.11
IMAGE_GLIBC_MINOR=36
# kwok's `fast` stages: a pod is Running and Ready as soon as it is scheduled (the
# `general` set's pod-ready waits for an Initialized condition only its pod-create sets),
# a Job's pod Succeeds at once, and a deleted pod goes at once instead of after a jitter
# up to its grace period (a sandbox runner's is run timeout + drain).
KWOK_STAGES="node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease
pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# Public Apache-2.0 sources the Go module proxy refuses, vendored with their provenance
# (sources/README.md), so a clean clone builds everything from its own files.
SOURCES=${E2E_SOURCES:-$here/sources}
AP_CACHE=${AP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-perimeter}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
mkdir -p "$AP_CACHE"

say() { printf '[e2e-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Per tool: "<version>|<build functions>|<vendored archives>|<variables it reads>|<repo files>
# |<tools it copies from>" (the last two optional). A repo file ending in / is a directory:
# every file under it (tree_files) is in the digest, path and content.
tool_spec() {
  case $1 in
    pulumi) echo "$PULUMI_VERSION|build_pulumi_cli|pulumi-language-python.tar.gz|PULUMI_VERSION" ;;
    pulumi-resource-kubernetes) echo "$K8S_PROVIDER_VERSION|build_kubernetes_provider|pulumi-kubernetes.tar.gz|K8S_PROVIDER_VERSION K8S_PROVIDER_SCHEMA_MODULE" ;;
    pulumi-resource-random) echo "$RANDOM_PROVIDER_VERSION|build_random_provider build_bridged_provider|pulumi-random.tar.gz|RANDOM_PROVIDER_VERSION" ;;
    kubernetes) echo "$KUBERNETES_VERSION|build_kubernetes kube_module||KUBERNETES_VERSION" ;;
    kubernetes-node) echo "$KUBERNETES_VERSION|build_kubernetes_node kube_module||KUBERNETES_VERSION" ;;
    coredns) echo "$COREDNS_VERSION|build_coredns||COREDNS_VERSION" ;;
    kube-network-policies) echo "$KNP_VERSION|build_kube_network_policies||KNP_VERSION KNP_XT_QUEUE" ;;
    image-pause) echo "$IMAGE_TAG|build_image_pause pack_image write_image|||images/pause/pause.c" ;;
    image-probe) echo "$IMAGE_TAG|build_image_probe pack_image write_image passwd_files|||images/probe/main.go" ;;
    image-coredns) echo "$IMAGE_TAG|build_image_coredns pack_image write_image passwd_files||||coredns" ;;
    rootfs-bookworm) echo "$ROOTFS_SUITE|build_rootfs_bookworm debian_mirror||ROOTFS_SUITE ROOTFS_PACKAGES" ;;
    image-role-provisioner) echo "$IMAGE_TAG|build_image_role_provisioner pack_on_base write_image base_rootfs nonroot_user|||\
|rootfs-bookworm" ;;
    image-mcp-exports) echo "$IMAGE_TAG|build_image_mcp_exports pack_on_base write_image base_rootfs nonroot_user pip_target copy_tree \
py_compile tree_files||IMAGE_PYTHON IMAGE_GLIBC_MINOR|servers/requirements.txt servers/__init__.py servers/runtime/ \
servers/exports/|rootfs-bookworm" ;;
    image-sandbox-worker) echo "$IMAGE_TAG|build_image_sandbox_worker pack_on_base write_image base_rootfs nonroot_user pip_target \
copy_tree py_compile tree_files||IMAGE_PYTHON IMAGE_GLIBC_MINOR|sandbox/requirements.txt sandbox/|rootfs-bookworm" ;;
    etcd) echo "$ETCD_VERSION|build_etcd||ETCD_VERSION" ;;
    kwok) echo "$KWOK_VERSION|build_kwok||KWOK_VERSION" ;;
    kwok-stages) echo "$KWOK_VERSION|build_kwok_stages||KWOK_VERSION KWOK_STAGES" ;;
    *) echo "unknown tool $1" >&2; return 2 ;;
  esac
}
HELPERS="build_once source_dir extract minify_json"

# tree_files DIR: the files under the repo directory DIR, relative to the repo, sorted;
# bytecode caches left by test runs are not part of it. Named in the spec of each tool
# that copies a tree (not a helper of all: that would change every tool's digest).
tree_files() {
  (cd "$repo" && find "${1%/}" -name __pycache__ -prune -o -type f ! -name '*.pyc' -print | LC_ALL=C sort)
}

# The text a tool's digest is taken of; kept in its cache entry so --verify can say what
# changed.
recipe() {
  local name=$1 version fns sources vars files deps item
  IFS='|' read -r version fns sources vars files deps <<<"$(tool_spec "$name")"
  echo "tool $name"
  echo "version $version"
  echo "go $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH) CGO_ENABLED=$CGO_ENABLED GOFLAGS=$GOFLAGS"
  for item in $vars; do echo "var $item=${!item}"; done
  for item in $sources; do echo "source $item $(sha256sum <"$SOURCES/$item" | cut -d' ' -f1)"; done
  for item in $files; do
    if [ "${item%/}" != "$item" ]; then
      echo "tree $item $(tree_files "$item" | (cd "$repo" && xargs -r sha256sum) | sha256sum | cut -d' ' -f1)"
    else
      echo "file $item $(sha256sum <"$repo/$item" | cut -d' ' -f1)"
    fi
  done
  for item in $deps; do echo "uses $item $(digest "$item")"; done
  for item in $HELPERS $fns; do declare -f "$item"; done
}
digest() { recipe "$1" | sha256sum | cut -c1-16; }
version_of() { local spec; spec=$(tool_spec "$1"); echo "${spec%%|*}"; }
entry() { echo "$AP_CACHE/$1-$(version_of "$1")-$(digest "$1")"; }

# build_once NAME: runs NAME's build function in a scratch dir with $out as the target
# bin dir, unless its entry for the current recipe is complete. Other entries of NAME
# (older recipes) are removed once the new one is in place.
build_once() {
  local name=$1 version fn dest
  version=$(version_of "$name")
  fn=$(tool_spec "$name" | cut -d'|' -f2 | cut -d' ' -f1)
  dest=$(entry "$name")
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
  recipe "$name" > "$work/out/.recipe"
  touch "$work/out/.complete"
  rm -rf "$dest"
  mv "$work/out" "$dest"
  rm -rf "$work"
  local other
  for other in "$AP_CACHE"/*/.recipe; do
    [ -f "$other" ] && [ "$(dirname "$other")" != "$dest" ] || continue
    if [ "$(head -n 1 "$other")" = "tool $name" ]; then
      say "$name: removing the entry of an older recipe, $(dirname "$other")"
      rm -rf "$(dirname "$other")"
    fi
  done
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

# The wrapper module every k8s.io/kubernetes command is built in: k8s.io/kubernetes at its
# tag, each staging module replaced by its published version; then the named commands.
kube_module() {
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
  local cmd
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } > tools.go
  go mod tidy >/dev/null 2>&1
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
  done
  for cmd in "$@"; do
    say "  kubernetes: $cmd"
    go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

build_kubernetes() { kube_module kube-apiserver kube-controller-manager kube-scheduler kubectl; }

# --- the live node -----------------------------------------------------------

build_kubernetes_node() { kube_module kubelet kube-proxy; }

build_coredns() {
  go mod init ap.local/coredns >/dev/null 2>&1
  go get "github.com/coredns/coredns@$COREDNS_VERSION" >/dev/null 2>&1
  go build -trimpath -o "$out/coredns" \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    github.com/coredns/coredns
}

# kube-network-policies writes native nft `queue` rules. With KNP_XT_QUEUE=1 its three queue
# statements become the xtables NFQUEUE target (revision 3; struct xt_NFQ_info_v3 {u16
# queuenum, queues_total, flags} padded to 8 bytes) through nft_compat: on a kernel without
# CONFIG_NFT_QUEUE every rule sync otherwise fails with "netlink receive: no such file".
build_kube_network_policies() {
  go mod init ap.local/knp >/dev/null 2>&1
  # The module root has no package: `go get` the command itself, or go.sum lacks its deps.
  go get "sigs.k8s.io/kube-network-policies/cmd@$KNP_VERSION" >/dev/null 2>&1
  if [ "$KNP_XT_QUEUE" = 1 ]; then
    cp -r "$(go list -m -f '{{.Dir}}' sigs.k8s.io/kube-network-policies)" knp-src
    chmod -R u+w knp-src
    cat > knp-src/pkg/networkpolicy/xtqueue.go <<'GO'
package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// xtQueue is `queue num N [bypass]` as the xtables NFQUEUE target through nft_compat.
func xtQueue(num uint16, bypass bool) expr.Any {
	info := make([]byte, 8)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	if bypass {
		binary.NativeEndian.PutUint16(info[4:], 1) // NFQ_FLAG_BYPASS
	}
	u := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &u}
}
GO
    python3 - knp-src/pkg/networkpolicy <<'PY'
import pathlib, re, sys
d = pathlib.Path(sys.argv[1])
c = d / "controller.go"
s, n = re.subn(
    r"queue := &expr\.Queue\{Num: uint16\(c\.config\.QueueID\)\}\n\tif c\.config\.FailOpen \{\n"
    r"\t\tqueue\.Flag = expr\.QueueFlagBypass\n\t\}",
    "queue := xtQueue(uint16(c.config.QueueID), c.config.FailOpen)",
    c.read_text(),
)
assert n == 2, f"controller.go: {n} queue statements, expected 2"
c.write_text(s)
a = d / "dnsagent.go"
s = a.read_text().replace(
    "&expr.Queue{Num: uint16(n.nfQueueID), Flag: expr.QueueFlagBypass}",
    "xtQueue(uint16(n.nfQueueID), true)",
)
assert "expr.Queue" not in s, "dnsagent.go: a queue statement left"
a.write_text(s)
PY
    go mod edit -replace=sigs.k8s.io/kube-network-policies=./knp-src
  fi
  go build -trimpath -ldflags "-s -w" -o "$out/kube-network-policies" sigs.k8s.io/kube-network-policies/cmd
}

# --- the live node's images: docker-archive tars, no registry ----------------
# Each entry holds <name>.tar and <name>.ref (the reference the CRI knows it by).

passwd_files() { # rootfs: the users images run as
  mkdir -p "$1/etc" "$1/tmp"
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' > "$1/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$1/etc/group"
}

# pack_image NAME ROOTFS UMOCI-CONFIG-ARGS...: one layer of ROOTFS, configured with umoci,
# written as a docker-archive by skopeo.
pack_image() {
  local name=$1 rootfs=$2
  shift 2
  umoci init --layout layout
  umoci new --image "layout:$IMAGE_TAG"
  write_image "$name" "$rootfs" "$@"
}

# write_image NAME LAYER UMOCI-CONFIG-ARGS...: LAYER on the image at layout:$IMAGE_TAG, its
# config set, and the result as $out/NAME.tar (docker-archive) and the reference in NAME.ref.
write_image() {
  local name=$1 layer=$2 ref="localhost/agent-perimeter/$1:$IMAGE_TAG"
  shift 2
  umoci insert --image "layout:$IMAGE_TAG" "$layer" /
  umoci config --image "layout:$IMAGE_TAG" --author agent-perimeter --os linux --architecture amd64 "$@"
  umoci gc --layout layout
  skopeo --insecure-policy copy -q "oci:layout:$IMAGE_TAG" "docker-archive:$out/$name.tar:$ref"
  echo "$ref" > "$out/$name.ref"
}

build_image_pause() {
  mkdir -p rootfs
  gcc -static -Os -s -o rootfs/pause "$repo/images/pause/pause.c"
  pack_image pause rootfs --config.entrypoint /pause --config.user 65535:65535
}

build_image_probe() {
  mkdir -p rootfs/bin probe
  cp "$repo/images/probe/main.go" probe/
  (cd probe && go mod init ap.local/probe >/dev/null 2>&1 && go build -trimpath -ldflags "-s -w" -o ../rootfs/bin/probe .)
  passwd_files rootfs
  pack_image probe rootfs --config.entrypoint /bin/probe --config.user 65532:65532
}

build_image_coredns() {
  mkdir -p rootfs
  cp "$(entry coredns)/bin/coredns" rootfs/coredns
  passwd_files rootfs
  pack_image coredns rootfs --config.entrypoint /coredns
}

# The mirror of the host's apt sources for Debian's main archive (deb822 or one-line form).
debian_mirror() {
  local found
  found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | python3 -c '
import re, sys
text = sys.stdin.read()
for uri in re.findall(r"^\s*URIs:\s*(\S+)", text, re.M) + re.findall(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", text, re.M):
    if uri.rstrip("/").endswith("/debian"):
        print(uri)
        break
')
  [ -n "$found" ] || { say "no Debian mirror in /etc/apt/sources.list*"; return 1; }
  echo "$found"
}

# debootstrap minbase + ROOTFS_PACKAGES, without docs, manuals, locales, apt lists and logs;
# kept as one tar (numeric owners) that the images unpack.
build_rootfs_bookworm() {
  local mirror
  command -v debootstrap >/dev/null 2>&1 || { say "no debootstrap: bash scripts/setup.sh --live installs it"; return 1; }
  mirror=$(debian_mirror)
  say "  rootfs: debootstrap --variant=minbase $ROOTFS_SUITE from $mirror"
  if ! debootstrap --variant=minbase --include="${ROOTFS_PACKAGES// /,}" "$ROOTFS_SUITE" rootfs "$mirror" \
      >debootstrap.log 2>&1; then
    tail -n 20 debootstrap.log >&2
    return 1
  fi
  rm -rf rootfs/usr/share/doc/* rootfs/usr/share/man/* rootfs/usr/share/info/* \
    rootfs/usr/share/locale/* rootfs/var/cache/apt/* rootfs/var/lib/apt/lists/* \
    rootfs/var/cache/debconf/*-old rootfs/var/log/* rootfs/dev/* rootfs/run/* rootfs/tmp/*
  tar --numeric-owner -C rootfs -cf "$out/rootfs.tar" .
  # The same tree as the base layer of every image on it (pack_on_base): one blob, so the
  # node's containerd stores and unpacks it once for all of them.
  umoci init --layout "$out/layout"
  umoci new --image "$out/layout:base"
  umoci insert --image "$out/layout:base" rootfs /
  umoci gc --layout "$out/layout"
}

# pack_on_base NAME ROOTFS PATH... -- UMOCI-CONFIG-ARGS...: as pack_image, but rootfs-bookworm's
# base layer as is, and one layer of the PATHs of ROOTFS (what the image's build added or
# changed).
pack_on_base() {
  local name=$1 rootfs=$2 layer=$PWD/layer
  shift 2
  mkdir -p "$layer"
  while [ "$1" != -- ]; do
    (cd "$rootfs" && cp -a --parents "${1#/}" "$layer/")
    shift
  done
  shift
  cp -a "$(entry rootfs-bookworm)/bin/layout" layout
  umoci tag --image layout:base "$IMAGE_TAG"
  write_image "$name" "$layer" "$@"
}

base_rootfs() { # dir: the shared Debian root filesystem, unpacked
  mkdir -p "$1"
  tar --numeric-owner -xpf "$(entry rootfs-bookworm)/bin/rootfs.tar" -C "$1"
}

nonroot_user() { # rootfs [home]: user and group 65532 (nonroot) beside Debian's own
  local home=${2:-/nonexistent}
  echo "nonroot:x:65532:65532:nonroot:$home:/usr/sbin/nologin" >> "$1/etc/passwd"
  echo "nonroot:x:65532:" >> "$1/etc/group"
}

# pip_target REQUIREMENTS DIR: the hashed pins, no resolution, as wheels for the images'
# Python and glibc (not the host's), into DIR.
pip_target() {
  local platforms=(--platform manylinux2014_x86_64) minor  # pip adds manylinux2010 and 1
  for minor in $(seq 17 "$IMAGE_GLIBC_MINOR"); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 python3 -m pip install -q --no-cache-dir \
    --require-hashes --no-deps --only-binary=:all: --python-version "$IMAGE_PYTHON" \
    --implementation cp --abi "cp${IMAGE_PYTHON/./}" "${platforms[@]}" \
    --target "$2" -r "$repo/$1" 2>&1 | { grep -v "^WARNING: Running pip as the 'root' user" || true; } >&2
  [ "${PIPESTATUS[0]}" -eq 0 ]
}

copy_tree() { # repo-dir dest: every file tree_files lists, at its path relative to repo-dir
  local file rel
  for file in $(tree_files "$1"); do
    rel=${file#"${1%/}"/}
    install -D -m 0644 "$repo/$file" "$2/$rel"
  done
}

# py_compile ROOTFS DIR...: bytecode written now by the image's own interpreter (the
# root filesystem is read-only at run time, PYTHONDONTWRITEBYTECODE=1).
py_compile() {
  local rootfs=$1
  shift
  chroot "$rootfs" /usr/bin/python3 -m compileall -q "$@" >/dev/null
}

PY_ENV=(--config.env PYTHONDONTWRITEBYTECODE=1 --config.env PYTHONUNBUFFERED=1)
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The role-provisioning Job's image (infra/pure/database/job.py): /bin/sh, cat and psql >= 15
# (Debian's own binary first on PATH, not the perl wrapper), as 65532.
build_image_role_provisioner() {
  base_rootfs rootfs
  nonroot_user rootfs
  pack_on_base role-provisioner rootfs /etc/passwd /etc/group -- --config.user 65532:65532 \
    --config.env "PATH=/usr/lib/postgresql/15/bin:$IMAGE_PATH" --config.cmd psql --config.cmd --version
}

# servers/exports/Dockerfile on the shared root filesystem.
build_image_mcp_exports() {
  base_rootfs rootfs
  nonroot_user rootfs
  pip_target servers/requirements.txt rootfs/opt/server/site-packages
  install -D -m 0644 "$repo/servers/__init__.py" rootfs/opt/app/servers/__init__.py
  copy_tree servers/runtime rootfs/opt/app/servers/runtime
  copy_tree servers/exports rootfs/opt/app/servers/exports
  rm rootfs/opt/app/servers/exports/Dockerfile
  py_compile rootfs /opt/app /opt/server/site-packages
  pack_on_base mcp-exports rootfs /etc/passwd /etc/group /opt -- --config.user 65532:65532 "${PY_ENV[@]}" \
    --config.env "PATH=$IMAGE_PATH" --config.env PYTHONPATH=/opt/app:/opt/server/site-packages \
    --config.entrypoint python3 --config.entrypoint -m --config.entrypoint servers.exports
}

# sandbox/Dockerfile on the shared root filesystem: the SDK from its hashed pins, the
# `sandbox` package, bash, /workspace owned by 65532.
build_image_sandbox_worker() {
  base_rootfs rootfs
  nonroot_user rootfs /workspace
  pip_target sandbox/requirements.txt rootfs/opt/worker/site-packages
  copy_tree sandbox rootfs/opt/worker/site-packages/sandbox
  rm rootfs/opt/worker/site-packages/sandbox/{Dockerfile,requirements.in,requirements.txt}
  py_compile rootfs /opt/worker/site-packages
  install -d -o 65532 -g 65532 rootfs/workspace
  pack_on_base sandbox-worker rootfs /etc/passwd /etc/group /opt /workspace -- --config.user 65532:65532 "${PY_ENV[@]}" \
    --config.env "PATH=$IMAGE_PATH" --config.env PYTHONPATH=/opt/worker/site-packages \
    --config.workingdir /workspace --config.cmd python --config.cmd -m --config.cmd sandbox \
    --config.cmd --help
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
}

# The Stage files, and the kwok config the control plane runs with: all of them, in order.
build_kwok_stages() {
  local src stage sep=""
  src=$(source_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
  for stage in $KWOK_STAGES; do
    cp "$src/kustomize/stage/$stage.yaml" "$out/"
    { printf '%s' "$sep"; cat "$src/kustomize/stage/$stage.yaml"; } >>"$out/kwok.yaml"
    sep=$'---\n'
  done
}

# --- entry -------------------------------------------------------------------

ENGINE_TOOLS="pulumi pulumi-resource-kubernetes pulumi-resource-random"
CONTROL_PLANE_TOOLS="kubernetes etcd kwok kwok-stages"
NODE_TOOLS="kubernetes-node coredns kube-network-policies"
# The root filesystem the Python and psql images unpack: built first, not an image itself.
IMAGE_BASES="rootfs-bookworm"
IMAGES="image-pause image-probe image-coredns image-role-provisioner image-mcp-exports image-sandbox-worker"

user_pulumi() { command -v pulumi >/dev/null 2>&1 && [ -z "${E2E_BUILD_ENGINE:-}" ]; }

tools_of() {
  case $1 in
    engine) if user_pulumi; then echo ""; else echo "$ENGINE_TOOLS"; fi ;;
    control-plane) echo "$CONTROL_PLANE_TOOLS" ;;
    kwok-stages) echo "kwok-stages" ;;
    node) echo "$NODE_TOOLS" ;;
    images) echo "coredns $IMAGE_BASES $IMAGES" ;;  # image-coredns copies the coredns build
    live) echo "$NODE_TOOLS $IMAGE_BASES $IMAGES" ;;
    all) echo "$CONTROL_PLANE_TOOLS $(tools_of engine)" ;;
    *) echo "usage: $0 [--verify|--digests] [engine|control-plane|kwok-stages|node|images|live|all]" >&2; return 2 ;;
  esac
}

build() {
  local part=$1 name tools
  tools=$(tools_of "$part")
  if { [ "$part" = engine ] || [ "$part" = all ]; } && user_pulumi; then
    say "pulumi on PATH ($(command -v pulumi)): using it and its plugins"
    echo "pulumi $(dirname "$(command -v pulumi)") user"
  fi
  for name in $tools; do
    build_once "$name"
    echo "$name $(entry "$name")/bin $(version_of "$name")"
  done
}

verify() {
  local part=$1 name dest bad=0 other found
  for name in $(tools_of "$part"); do
    dest=$(entry "$name")
    if [ -f "$dest/.complete" ] && [ -f "$dest/.recipe" ] && cmp -s "$dest/.recipe" <(recipe "$name"); then
      echo "ok      $name $(version_of "$name") ($dest)"
      continue
    fi
    bad=1
    found=""
    for other in "$AP_CACHE"/*/.recipe; do
      [ -f "$other" ] && [ "$(head -n 1 "$other")" = "tool $name" ] && found=$other && break
    done
    if [ -n "$found" ]; then
      echo "STALE   $name: cached at $(dirname "$found") from another recipe; the script's differs in:"
      diff <(cat "$found") <(recipe "$name") | sed -n 's/^[<>] /    /p' | head -n 20 || true
    else
      echo "MISSING $name $(version_of "$name"): not built (expected at $dest)"
    fi
  done
  return "$bad"
}

case "${1:-all}" in
  --verify) verify "${2:-all}" ;;
  --digests) for n in $(tools_of "${2:-all}"); do echo "$n $(version_of "$n") $(digest "$n")"; done ;;
  *) tools_of "${1:-all}" >/dev/null && build "${1:-all}" ;;
esac
