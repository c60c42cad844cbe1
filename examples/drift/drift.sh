#!/usr/bin/env bash
# Drift detection, end to end: deploy the quotas map, change it behind
# Pulumi's back with bpftool (an extra key, a changed value, a deleted key),
# show that `pulumi preview --refresh --expect-no-changes` exits 7 and names
# the drifted entries, then repair the map with `pulumi up --refresh`.
#
# Usage: ./drift.sh [stack]          (default stack: dev)
#   PIN_ROOT=/some/bpffs/dir ./drift.sh   pins there instead of /sys/fs/bpf/…
# Runs the CLI through scripts/pulumi.sh (the project's local backend);
# PULUMI_* variables already set win. Tear down: pulumi destroy --yes --stack <stack>
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
stack=${1:-dev}
pulumi() { bash "$here/../../scripts/pulumi.sh" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

pulumi stack select --create "$stack" --non-interactive >/dev/null
if [[ -n ${PIN_ROOT:-} ]]; then pulumi config set --stack "$stack" pinRoot "$PIN_ROOT"; fi

step "pulumi up: deploy the declared quotas {1: 100, 2: 200, 3: 300}"
pulumi up --yes --skip-preview --non-interactive --stack "$stack"
pin=$(pulumi stack output --stack "$stack" pinPath)

step "clean check: pulumi preview --refresh --expect-no-changes"
pulumi preview --refresh --expect-no-changes --non-interactive --stack "$stack" >/dev/null
echo "exit 0: the kernel matches the declaration"

step "behind Pulumi's back: add tenant 4, change tenant 2 to 999, delete tenant 3"
# Keys and values are u32 in host byte order (little endian here).
bpftool map update pinned "$pin" key 4 0 0 0 value 0x90 0x01 0 0 # 4 -> 400
bpftool map update pinned "$pin" key 2 0 0 0 value 0xe7 0x03 0 0 # 2 -> 999
bpftool map delete pinned "$pin" key 3 0 0 0
bpftool map dump pinned "$pin"

step "drift check: pulumi preview --refresh --expect-no-changes --diff"
rc=0
pulumi preview --refresh --expect-no-changes --diff --non-interactive --stack "$stack" || rc=$?
echo "exit $rc"
if [[ $rc -ne 7 ]]; then
  echo "drift.sh: expected exit 7 (changes) from the drift check, got $rc" >&2
  exit 1
fi

step "repair: pulumi up --refresh"
pulumi up --refresh --yes --skip-preview --non-interactive --stack "$stack"

step "check again: pulumi preview --refresh --expect-no-changes"
pulumi preview --refresh --expect-no-changes --non-interactive --stack "$stack" >/dev/null
echo "exit 0: repaired"
bpftool map dump pinned "$pin"
echo
echo "Tear down: (cd $here && bash ../../scripts/pulumi.sh destroy --yes --stack $stack)"
