// The demo stack that `npm run demo` deploys: the configuration maps of an
// imaginary XDP firewall, pinned under /sys/fs/bpf/pulumi-ebpf-demo.
import { PinnedMap } from "pulumi-ebpf";

const root = "/sys/fs/bpf/pulumi-ebpf-demo";

// Source addresses the XDP program lets through (1 = allow, 2 = allow + log).
const allowList = new PinnedMap("allow-list", {
  pinPath: `${root}/allow_v4`,
  mapType: "hash",
  name: "xdp_allow_v4",
  keyType: "ipv4",
  valueType: "u8",
  maxEntries: 1024,
  flags: ["no_prealloc"],
  contents: [
    { key: "10.0.0.1", value: 1 },
    { key: "10.0.0.2", value: 1 },
    { key: "192.168.1.10", value: 2 },
  ],
});

// Feature flags the program reads on every packet; frozen, so user space
// cannot change them behind the declaration's back. With BTF of the struct
// (the default for typed codecs, said here to make it visible), `bpftool map
// dump pinned /sys/fs/bpf/pulumi-ebpf-demo/features` shows enabled and
// rateLimitPps by name.
const featureFlags = new PinnedMap("feature-flags", {
  pinPath: `${root}/features`,
  mapType: "array",
  name: "xdp_features",
  keyType: "u32",
  valueType: { struct: [{ name: "enabled", type: "u8" }, { name: "rateLimitPps", type: "u32" }] },
  valueSize: 8,
  btf: true,
  maxEntries: 4,
  freeze: true,
  contents: [
    { key: 0, value: { enabled: 1, rateLimitPps: 100000 } },
    { key: 1, value: { enabled: 0, rateLimitPps: 0 } },
  ],
});

// Next hops by destination prefix (value = egress ifindex).
const routes = new PinnedMap("routes", {
  pinPath: `${root}/routes_v4`,
  mapType: "lpm_trie",
  name: "xdp_routes_v4",
  keyType: "lpm_ipv4",
  valueType: "u32",
  maxEntries: 256,
  flags: ["no_prealloc"],
  contents: [
    { key: "0.0.0.0/0", value: 1 },
    { key: "10.0.0.0/8", value: 2 },
    { key: "10.1.0.0/16", value: 3 },
  ],
});

// Per-CPU packet counters: the XDP program writes them, so only the declared
// slots are managed ("merge") and what the program counts is not drift.
const counters = new PinnedMap("counters", {
  pinPath: `${root}/counters`,
  mapType: "percpu_array",
  name: "xdp_counters",
  keyType: "u32",
  valueType: "u64",
  maxEntries: 8,
  contentsPolicy: "merge",
  contents: [{ key: 7, value: "0" }],
});

export const maps = {
  allowList: { pinPath: allowList.pinPath, mapId: allowList.mapId, entries: allowList.entryCount },
  featureFlags: { pinPath: featureFlags.pinPath, mapId: featureFlags.mapId, frozen: featureFlags.frozen },
  routes: { pinPath: routes.pinPath, mapId: routes.mapId, entries: routes.entryCount },
  counters: { pinPath: counters.pinPath, mapId: counters.mapId, digest: counters.contentsDigest },
};
