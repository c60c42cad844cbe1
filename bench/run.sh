#!/usr/bin/env bash
# `npm run bench`: the benchmark of issue 5. Sets up what is missing (npm
# dependencies, the native addon, the TypeScript build, the Pulumi toolchain,
# bpftool: scripts/setup.sh), compiles the C baseline (cc -O2), builds the
# cilium/ebpf peer from the Go module proxy into a cache outside the
# repository, mounts a private bpffs, runs bench/main.ts and unmounts.
# Prints the table; writes bench/results.json. Knobs: see BENCHMARKS.md
# (BENCH_ENTRIES, BENCH_TYPED_ENTRIES, BENCH_REPEAT, BENCH_PULUMI=0, …).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { echo "bench: $*" >&2; }

[[ $(id -u) -eq 0 ]] || log "not root: mounting a bpffs and creating maps will likely fail"

if ! bash scripts/setup.sh; then
  log "scripts/setup.sh failed; compiling what the benchmark needs and carrying on (missing pieces are reported as skipped)"
  npx --no-install tsc -p tsconfig.json >&2 || true
fi
[[ -f dist/bench/main.js ]] || { log "dist/bench/main.js is missing (TypeScript build failed)"; exit 1; }

# The C baseline: raw bpf(2) syscalls, compiled now.
mkdir -p bench/bin
cc -O2 -Wall -o bench/bin/baseline bench/baseline.c

# The cilium/ebpf peer: our bench/cilium/main.go in a module under the cache,
# with the library at a pinned version from the Go module proxy.
CILIUM_EBPF_VERSION=${CILIUM_EBPF_VERSION:-v0.22.0}
cache=${PULUMI_EBPF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-ebpf}/bench
peer_dir=$cache/cilium-peer-$CILIUM_EBPF_VERSION
export BENCH_CILIUM_VERSION=$CILIUM_EBPF_VERSION
build_peer() {
  command -v go >/dev/null 2>&1 || { echo "no Go toolchain (go) on PATH"; return 1; }
  mkdir -p "$peer_dir"
  if [[ -x $peer_dir/cilium-peer ]] && cmp -s bench/cilium/main.go "$peer_dir/main.go"; then return 0; fi
  cp bench/cilium/main.go "$peer_dir/main.go"
  printf 'module pulumiebpf.local/benchpeer\n\ngo 1.24\n' >"$peer_dir/go.mod"
  rm -f "$peer_dir/go.sum"
  (
    cd "$peer_dir"
    export GOMODCACHE=$cache/gomod GOFLAGS=-mod=mod
    go get "github.com/cilium/ebpf@$CILIUM_EBPF_VERSION" >&2 && go mod tidy >&2 && go build -o cilium-peer . >&2
  ) || { echo "could not fetch or build github.com/cilium/ebpf@$CILIUM_EBPF_VERSION (see above)"; return 1; }
}
if reason=$(build_peer); then
  export BENCH_CILIUM=$peer_dir/cilium-peer
else
  export BENCH_CILIUM_SKIP=$reason
  log "skipping cilium/ebpf: $reason"
fi

# A private bpffs and a scratch directory, removed on exit.
bpffs=$(mktemp -d /tmp/pulumi-ebpf-bench-bpffs-XXXXXX)
work=$(mktemp -d /tmp/pulumi-ebpf-bench-work-XXXXXX)
mount -t bpf bpf "$bpffs"
cleanup() {
  umount -l "$bpffs" 2>/dev/null || true
  rmdir "$bpffs" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

BENCH_PIN_DIR=$bpffs BENCH_WORK_DIR=$work BENCH_BASELINE=$root/bench/bin/baseline \
  node --expose-gc --max-old-space-size=8192 dist/bench/main.js
