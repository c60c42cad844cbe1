// Adopting a map made outside Pulumi. Run ./setup.sh first: it pins a hash map
// with bpftool. `ifExists: "adopt"` makes create take that map over instead
// of failing, if its ABI (type, sizes, max entries, flags, name) matches the
// declaration — otherwise it fails naming each differing field — and then
// reconciles its contents to the declared ones as a delta. From then on the
// map is managed like any other; `pulumi destroy` unpins it.
import * as pulumi from "@pulumi/pulumi";
import { PinnedMap } from "pulumi-ebpf";

const config = new pulumi.Config();
const pinRoot = config.get("pinRoot") ?? "/sys/fs/bpf/pulumi-ebpf-examples/adopt-existing";

const blockedPorts = new PinnedMap("blocked-ports", {
  pinPath: `${pinRoot}/blocked_ports`,
  ifExists: "adopt",
  mapType: "hash",
  name: "blocked_ports",
  keyType: "u16",
  valueType: "u8",
  maxEntries: 128,
  flags: ["no_prealloc"],
  contents: [
    { key: 23, value: 1 }, // telnet
    { key: 445, value: 1 }, // smb
  ],
});

export const pinPath = blockedPorts.pinPath;
// The ID of the map setup.sh made: adoption keeps the kernel map.
export const mapId = blockedPorts.mapId;
export const entryCount = blockedPorts.entryCount;
