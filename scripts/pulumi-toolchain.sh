#!/usr/bin/env bash
# Makes sure the Pulumi CLI v3.248.0 and its Node.js, YAML and Python
# language hosts are available, and prints the directory that holds them.
#
# A `pulumi` of the right version on PATH is used as it is. Otherwise both are
# built once from their Go modules (through the Go module proxy) into a cache
# directory outside the repository, so later clones and CI runs reuse them.
# Nothing is downloaded at run time of a stack.
set -euo pipefail

PULUMI_VERSION=v3.248.0
# See the language host step below for why its version differs.
LANGUAGE_HOST_VERSION=v3.68.0
# The YAML host is its own module (pulumi-yaml), tagged and served by the proxy.
YAML_HOST_VERSION=v1.25.0
CACHE_ROOT=${PULUMI_EBPF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-ebpf}
BIN_DIR=$CACHE_ROOT/pulumi-$PULUMI_VERSION/bin

log() { echo "pulumi-toolchain: $*" >&2; }

# `go mod tidy` of the wrapper module in the current directory: resolves and
# records every module the build needs (go.sum). Its output is shown only when
# it fails, and then the script stops: a build without a complete go.sum fails
# later with a less clear message.
tidy() {
  local out
  if ! out=$(GOFLAGS=-mod=mod go mod tidy 2>&1); then
    log "go mod tidy failed in $(basename "$PWD") (the wrapper module of this script):"
    printf '%s\n' "$out" >&2
    exit 1
  fi
}

# Builds package $3 of a wrapper module requiring module $1 at version $2
# (its tools.go imports $3) into $4, with the version variable $5 stamped $2.
# Used for the language hosts, which are found beside the CLI without warnings.
build_host() {
  local module=$1 version=$2 package=$3 out=$4 version_var=$5 work
  command -v go >/dev/null 2>&1 || {
    log "no $(basename "$out") in $(dirname "$out") and no Go toolchain to build it; install Go"
    exit 1
  }
  work=$(mktemp -d)
  cat >"$work/go.mod" <<MOD
module pulumiebpf.local/$(basename "$out")

go 1.24

require $module $version
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >"$work/tools.go"
  (
    cd "$work"
    tidy
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X $version_var=$version" \
      -o "$out.part" "$package"
  ) || { rm -rf "$work"; exit 1; }
  rm -rf "$work"
  mv "$out.part" "$out"
}

# The YAML and Python language hosts, built into $1 when missing (each once;
# a later run only checks that they are there). The Python host is the
# v3.68.0 one of the sdk/v3 module, for the same reason as the Node.js host
# below; it runs `pulumi-language-python-exec` from beside itself.
language_hosts() {
  local dir=$1 started
  if [[ ! -x "$dir/pulumi-language-yaml" ]]; then
    started=$(date +%s)
    log "building pulumi-language-yaml $YAML_HOST_VERSION into $dir (one time, about 2 minutes)"
    build_host github.com/pulumi/pulumi-yaml "$YAML_HOST_VERSION" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
      "$dir/pulumi-language-yaml" github.com/pulumi/pulumi-yaml/pkg/version.Version
    log "built pulumi-language-yaml in $(($(date +%s) - started)) s"
  fi
  if [[ ! -x "$dir/pulumi-language-python" || ! -x "$dir/pulumi-language-python-exec" ]]; then
    started=$(date +%s)
    log "building pulumi-language-python $LANGUAGE_HOST_VERSION into $dir (one time)"
    build_host github.com/pulumi/pulumi/sdk/v3 "$LANGUAGE_HOST_VERSION" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python \
      "$dir/pulumi-language-python" github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
    local exec_script
    exec_script=$(GOFLAGS=-mod=mod go mod download -json "github.com/pulumi/pulumi/sdk/v3@$LANGUAGE_HOST_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')/python/cmd/pulumi-language-python-exec
    install -m 0755 "$exec_script" "$dir/pulumi-language-python-exec"
    log "built pulumi-language-python in $(($(date +%s) - started)) s"
  fi
}

# The dynamic provider plugin is our own two-line script (bin/); beside the
# CLI it is found without the engine's "using … from $PATH" warning.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
finish() {
  language_hosts "$1"
  if ! cmp -s "$repo_root/bin/pulumi-resource-pulumi-nodejs" "$1/pulumi-resource-pulumi-nodejs"; then
    install -m 0755 "$repo_root/bin/pulumi-resource-pulumi-nodejs" "$1/pulumi-resource-pulumi-nodejs"
  fi
  echo "$1"
  exit 0
}

# 1. A suitable pulumi already on PATH (with its language hosts beside it).
if command -v pulumi >/dev/null 2>&1; then
  on_path=$(command -v pulumi)
  if [[ "$("$on_path" version 2>/dev/null)" == "$PULUMI_VERSION" ]] &&
    [[ -x "$(dirname "$on_path")/pulumi-language-nodejs" ]] &&
    [[ -x "$(dirname "$on_path")/pulumi-language-yaml" ]] &&
    [[ -x "$(dirname "$on_path")/pulumi-language-python" ]]; then
    dirname "$on_path"
    exit 0
  fi
fi

# 2. A previous build in the cache.
if [[ -x "$BIN_DIR/pulumi" && -x "$BIN_DIR/pulumi-language-nodejs" ]] &&
  [[ "$("$BIN_DIR/pulumi" version 2>/dev/null)" == "$PULUMI_VERSION" ]]; then
  finish "$BIN_DIR"
fi

# 3. Build from the Go modules.
command -v go >/dev/null 2>&1 || {
  log "no pulumi $PULUMI_VERSION on PATH and no Go toolchain to build it; install Go or pulumi $PULUMI_VERSION"
  exit 1
}
started=$(date +%s)
log "building pulumi $PULUMI_VERSION from its Go modules into $BIN_DIR (one time, several minutes)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cli" "$work/lang" "$BIN_DIR.part"

# pkg/go.mod and sdk/go.mod carry replace directives, which `go install
# pkg@version` refuses; a wrapper module requires them and repeats the
# replaces that do not point at local directories.
cat >"$work/cli/go.mod" <<MOD
module pulumiebpf.local/pulumicli

go 1.24

require (
	github.com/pulumi/pulumi/pkg/v3 $PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 $PULUMI_VERSION
)

replace (
	github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
	golang.org/x/text => golang.org/x/text v0.3.8
)
MOD
cat >"$work/cli/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO

ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
[[ -x "$BIN_DIR.part/pulumi" ]] || (
  cd "$work/cli"
  tidy
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
    -o "$BIN_DIR.part/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
)

# The Node.js language host. Since v3.69 it is its own Go module
# (sdk/nodejs/cmd/pulumi-language-nodejs/v3, untagged), and the Go module proxy
# reachable here refuses that module path (403), so neither v3.248.0 nor any
# pseudo-version of it can be had. v3.68.0 is the last release that shipped
# the host inside the sdk/v3 module; it speaks the same LanguageRuntime
# protocol to the engine and runs @pulumi/pulumi's own `cmd/run`.
if [[ ! -x "$BIN_DIR.part/pulumi-language-nodejs" ]]; then
  cat >"$work/lang/go.mod" <<MOD
module pulumiebpf.local/pulumilang

go 1.24

require github.com/pulumi/pulumi/sdk/v3 $LANGUAGE_HOST_VERSION
MOD
  cat >"$work/lang/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
GO
  (
    cd "$work/lang"
    tidy
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGUAGE_HOST_VERSION" \
      -o "$BIN_DIR.part/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs
  )
fi

[[ "$("$BIN_DIR.part/pulumi" version)" == "$PULUMI_VERSION" ]] || {
  log "built pulumi does not report $PULUMI_VERSION"
  exit 1
}
rm -rf "$BIN_DIR"
mv "$BIN_DIR.part" "$BIN_DIR"
log "built in $(($(date +%s) - started)) s"
finish "$BIN_DIR"
