#!/usr/bin/env bash
# `npm test`: set up what is missing, then run every mocha suite against the
# real kernel and the real Pulumi CLI. Extra arguments go to mocha.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
toolchain=$(bash scripts/pulumi-toolchain.sh)
# The toolchain directory also holds our dynamic provider plugin script.
export PATH="$toolchain:$PATH"
exec npx --no-install mocha "$@"
