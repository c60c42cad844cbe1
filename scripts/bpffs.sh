#!/usr/bin/env bash
# Makes sure /sys/fs/bpf (or $1) is a bpffs mount, mounting it if needed.
set -euo pipefail
dir=${1:-/sys/fs/bpf}
if [[ "$(stat -f -c %t "$dir" 2>/dev/null)" == "cafe4a11" ]]; then
  exit 0
fi
mkdir -p "$dir"
mount -t bpf bpf "$dir" || {
  echo "bpffs: cannot mount a bpffs at $dir (needs root or CAP_SYS_ADMIN): mount -t bpf bpf $dir" >&2
  exit 1
}
