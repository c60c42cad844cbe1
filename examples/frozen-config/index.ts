// Frozen configuration: an array of C structs that a BPF program reads on
// every packet. `freeze: true` freezes the map after it is populated, so no
// process in user space can write it any more (BPF programs still read it).
// Changing `contents` later builds a new, frozen map beside the old one and
// swaps it into the pin path atomically: the path never goes missing.
import * as pulumi from "@pulumi/pulumi";
import { PinnedMap } from "pulumi-ebpf";

const config = new pulumi.Config();
const pinRoot = config.get("pinRoot") ?? "/sys/fs/bpf/pulumi-ebpf-examples/frozen-config";

// struct feature { __u8 enabled; /* 3 bytes padding */ __u32 rate_limit_pps; __u64 burst; };
const feature = {
  struct: [
    { name: "enabled", type: "u8" as const },
    { name: "rateLimitPps", type: "u32" as const }, // offset 4 (C alignment)
    { name: "burst", type: "u64" as const }, // offset 8; 64-bit values as decimal strings
  ],
};

const features = new PinnedMap("features", {
  pinPath: `${pinRoot}/features`,
  mapType: "array",
  name: "features",
  keyType: "u32",
  valueType: feature,
  valueSize: 16,
  maxEntries: 4,
  freeze: true,
  contents: [
    { key: 0, value: { enabled: 1, rateLimitPps: 100000, burst: "2000" } },
    { key: 1, value: { enabled: 0, rateLimitPps: 0, burst: "0" } },
    { key: 2, value: { enabled: 1, rateLimitPps: 5000, burst: "10000000000" } },
  ],
});

export const pinPath = features.pinPath;
export const mapId = features.mapId;
export const frozen = features.frozen;
export const abi = features.abi;
