#!/usr/bin/env bash
# Installs what this checkout needs and is missing, and rebuilds what is out of
# date: npm dependencies, the native addon, the TypeScript build, the Pulumi
# CLI v3.248.0 with its Node.js language host, bpftool and valgrind.
# Safe to run again: each step is skipped when already done, and then nothing
# is printed. A step that runs says so in one line on stderr ("setup: ..."); a
# step that fails shows its tool's output and exits non-zero.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { echo "setup: $*" >&2; }

# Runs a step quietly: its output is shown only if it fails.
step() {
  local what=$1
  shift
  log "$what"
  local out
  out=$(mktemp "${TMPDIR:-/tmp}/pulumi-ebpf-setup.XXXXXX")
  if ! "$@" >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    log "failed: $what ($*)"
    exit 1
  fi
  rm -f "$out"
}

# A digest of the files that find(1) lists for the given arguments (their
# paths and contents): a build is current when the digest of its sources equals
# the one recorded beside its output. Unlike an mtime check this also notices
# deleted and renamed sources.
digest() {
  find "$@" -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

# npm dependencies: `npm ci` when node_modules is missing or older than the lock file.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  # --ignore-scripts: the only install script in the tree is our own addon
  # build (node-gyp-build), which the next step runs and records.
  step "installing npm dependencies (npm ci)" npm ci --no-audit --no-fund --ignore-scripts
fi

# The native addon (build/Release/bpf.node, which node-gyp-build loads before
# any prebuild): rebuilt when native/src or binding.gyp changed since it was built.
addon_stamp=build/Release/.sources.sha256
addon_sources=$(digest native/src binding.gyp -type f)
if [[ ! -f build/Release/bpf.node || "$(cat "$addon_stamp" 2>/dev/null)" != "$addon_sources" ]]; then
  step "building the native addon (node-gyp rebuild)" npx --no-install node-gyp rebuild
  echo "$addon_sources" >"$addon_stamp"
fi

# TypeScript: recompiled from a clean dist/ when any source (or the set of
# sources) changed, so the output of a deleted file (a test above all) cannot
# linger in dist/ and keep running.
ts_stamp=dist/.sources.sha256
ts_sources=$(digest native provider sdk tests bench tsconfig.json -type f \( -name '*.ts' -o -name tsconfig.json \))
if [[ ! -d dist || "$(cat "$ts_stamp" 2>/dev/null)" != "$ts_sources" ]]; then
  rm -rf dist
  step "compiling TypeScript into a clean dist/ (tsc)" npx --no-install tsc -p tsconfig.json
  echo "$ts_sources" >"$ts_stamp"
fi

# The Pulumi CLI and language host (built once into a cache outside the repo;
# the script says so itself when it builds).
bash scripts/pulumi-toolchain.sh >/dev/null

# A Python virtualenv with pulumi==3.248.0 (and what generated SDKs need:
# parver, semver; setuptools and wheel to install one) in the toolchain cache:
# the Python example's suite runs its program with it (tests/fixtures/plugin-python.ts).
py_venv=${PULUMI_EBPF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-ebpf}/python-pulumi-3.248.0
if ! "$py_venv/bin/python" -c 'import pulumi, parver, semver, setuptools, wheel' >/dev/null 2>&1; then
  step "creating the Python virtualenv with pulumi==3.248.0 ($py_venv)" \
    bash -c 'python3 -m venv "$1" && "$1/bin/pip" install --quiet pulumi==3.248.0 "parver>=0.2.1" "semver>=2.8.1" setuptools wheel' _ "$py_venv"
fi

# bpftool (the independent reader the tests check our maps with), valgrind
# (the binding's memcheck suite), and clang with libbpf-dev (the libbpf-reuse
# suite builds a BPF object and a libbpf loader), from Debian.
missing=()
command -v bpftool >/dev/null 2>&1 || missing+=(bpftool)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v clang >/dev/null 2>&1 || missing+=(clang)
[[ -f /usr/include/bpf/libbpf.h ]] || missing+=(libbpf-dev)
if [[ ${#missing[@]} -gt 0 ]]; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    step "updating the Debian package lists (apt-get update)" apt-get update -qq
    step "installing ${missing[*]} (apt-get install)" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    log "${missing[*]} not installed and cannot be installed here (needs root and apt-get); the tests that use them will fail"
  fi
fi

# PostgreSQL (initdb and pg_ctl under /usr/lib/postgresql/<version>/bin): the
# fleet suite starts a private server as the shared Pulumi backend.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    [[ ${#missing[@]} -gt 0 ]] || step "updating the Debian package lists (apt-get update)" apt-get update -qq
    step "installing postgresql (apt-get install)" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  else
    log "postgresql not installed and cannot be installed here (needs root and apt-get); the fleet suite will fail"
  fi
fi

# moto's server mode (moto_server): a local S3 endpoint the fleet S3 suite
# uses as the shared Pulumi backend.
if ! command -v moto_server >/dev/null 2>&1; then
  step "installing moto_server (pip install 'moto[server]')" pip install 'moto[server]'
fi
