#!/usr/bin/env bash
# Makes the map that the Pulumi program then takes over: a hash map pinned by
# bpftool, the way a loader or an earlier tool would have left it, with one
# entry that the declaration keeps and one that it does not.
# Usage: ./setup.sh [pin directory]   (default /sys/fs/bpf/pulumi-ebpf-examples/adopt-existing)
set -euo pipefail
dir=${1:-/sys/fs/bpf/pulumi-ebpf-examples/adopt-existing}
pin=$dir/blocked_ports
mkdir -p "$dir"
if [[ -e $pin ]]; then
  echo "$pin already exists" >&2
  exit 1
fi
# u16 port (host order) -> u8 verdict; no_prealloc = BPF_F_NO_PREALLOC (1).
bpftool map create "$pin" type hash key 2 value 1 entries 128 name blocked_ports flags 1
bpftool map update pinned "$pin" key 0x17 0x00 value 0x01 # port 23 (telnet): kept
bpftool map update pinned "$pin" key 0x15 0x00 value 0x01 # port 21 (ftp): not declared, removed on adoption
echo "made $pin:"
bpftool map show pinned "$pin"
