#!/usr/bin/env bash
# `npm run demo`: set up what is missing, deploy the demo stack (Pulumi.yaml,
# demo/) on the embedded local backend, and print what it made.
# Tear it down with: npm run -s pulumi -- destroy --yes --stack demo
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash scripts/bpffs.sh /sys/fs/bpf
pulumi() { bash scripts/pulumi.sh "$@"; }
pulumi stack select --create demo --non-interactive >/dev/null
pulumi up --yes --skip-preview --non-interactive --stack demo
echo
echo "== stack outputs"
pulumi stack output --json --stack demo
echo
echo "== the maps as the kernel reports them"
pins=$(pulumi stack output --json --stack demo | node -e 'const o = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(Object.values(o.maps).map((m) => m.pinPath).join(" "))')
# shellcheck disable=SC2086
node scripts/map-summary.js $pins
echo
echo "Tear down: npm run -s pulumi -- destroy --yes --stack demo"
