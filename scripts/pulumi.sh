#!/usr/bin/env bash
# `npm run pulumi -- <args>`: the Pulumi CLI v3.248.0 with this project's
# embedded defaults: a local file backend inside the project, a fixed
# passphrase for local secrets, no update checks and no plugin downloads.
# Every argument is passed through. Variables already set by the caller win.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
toolchain=$(bash "$root/scripts/pulumi-toolchain.sh")
state=$root/.pulumi-state
mkdir -p "$state/backend" "$state/home"
# The toolchain directory also holds our dynamic provider plugin script.
export PATH="$toolchain:$PATH"
export PULUMI_HOME=${PULUMI_HOME:-$state/home}
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$state/backend}
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-pulumi-ebpf-local}
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=${PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK:-true}
exec pulumi "$@"
