#!/usr/bin/env bash
# Installs what this checkout needs and is missing, then prints nothing on
# success: npm dependencies (with the native addon build), the TypeScript
# build, the Pulumi CLI v3.248.0 with its Node.js language host, and bpftool.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { echo "setup: $*" >&2; }

# npm dependencies: `npm ci` when node_modules is missing or older than the lock file.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
fi

# The native addon: node-gyp-build uses a prebuild if one fits, else builds from source.
if [[ ! -f build/Release/bpf.node ]] && ! ls prebuilds/linux-x64/*.node >/dev/null 2>&1; then
  log "building the native addon"
  npx --no-install node-gyp rebuild >&2
fi

# TypeScript: rebuild when any source is newer than the last build.
stamp=dist/.build-stamp
if [[ ! -f $stamp ]] || [[ -n "$(find native provider sdk tests bench tsconfig.json -newer "$stamp" -name '*.ts' -o -newer "$stamp" -name tsconfig.json 2>/dev/null | head -n 1)" ]]; then
  log "compiling TypeScript"
  npx --no-install tsc -p tsconfig.json >&2
  touch "$stamp"
fi

# The Pulumi CLI and language host (built once into a cache outside the repo).
bash scripts/pulumi-toolchain.sh >/dev/null

# bpftool (the independent reader the tests check our maps with) and valgrind
# (the binding's memcheck suite), from Debian.
missing=()
command -v bpftool >/dev/null 2>&1 || missing+=(bpftool)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
if [[ ${#missing[@]} -gt 0 ]]; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    log "installing ${missing[*]} (Debian packages)"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    log "${missing[*]} not installed and cannot be installed here; the tests that use them will fail or skip"
  fi
fi
