#!/usr/bin/env bash
# Makes sure the Pulumi CLI and its Node.js language host, both v3.248.0, are
# available, and prints the directory that holds them.
#
# A `pulumi` of the right version on PATH is used as it is. Otherwise both are
# built once from their Go modules (through the Go module proxy) into a cache
# directory outside the repository, so later clones and CI runs reuse them.
# Nothing is downloaded at run time of a stack.
set -euo pipefail

PULUMI_VERSION=v3.248.0
# The nodejs language host module has no tag of its own; this is the commit of
# tag v3.248.0 of pulumi/pulumi.
PULUMI_COMMIT=a88168d865b7fd428e5a929cc54aeceaf72d203f
CACHE_ROOT=${PULUMI_EBPF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-ebpf}
BIN_DIR=$CACHE_ROOT/pulumi-$PULUMI_VERSION/bin

log() { echo "pulumi-toolchain: $*" >&2; }

# 1. A suitable pulumi already on PATH (with its language host beside it).
if command -v pulumi >/dev/null 2>&1; then
  on_path=$(command -v pulumi)
  if [[ "$("$on_path" version 2>/dev/null)" == "$PULUMI_VERSION" ]] &&
    [[ -x "$(dirname "$on_path")/pulumi-language-nodejs" ]]; then
    dirname "$on_path"
    exit 0
  fi
fi

# 2. A previous build in the cache.
if [[ -x "$BIN_DIR/pulumi" && -x "$BIN_DIR/pulumi-language-nodejs" ]] &&
  [[ "$("$BIN_DIR/pulumi" version 2>/dev/null)" == "$PULUMI_VERSION" ]]; then
  echo "$BIN_DIR"
  exit 0
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
(
  cd "$work/cli"
  GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
    -o "$BIN_DIR.part/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
)

cat >"$work/lang/go.mod" <<MOD
module pulumiebpf.local/pulumilang

go 1.24
MOD
cat >"$work/lang/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
GO
(
  cd "$work/lang"
  GOFLAGS=-mod=mod go get "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$PULUMI_COMMIT" >/dev/null
  GOFLAGS=-mod=mod go get "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" >/dev/null 2>&1 || true
  GOFLAGS=-mod=mod go mod edit -replace github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e \
    -replace golang.org/x/text=golang.org/x/text@v0.3.8
  GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
    -o "$BIN_DIR.part/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
)

[[ "$("$BIN_DIR.part/pulumi" version)" == "$PULUMI_VERSION" ]] || {
  log "built pulumi does not report $PULUMI_VERSION"
  exit 1
}
rm -rf "$BIN_DIR"
mv "$BIN_DIR.part" "$BIN_DIR"
log "built in $(($(date +%s) - started)) s"
echo "$BIN_DIR"
