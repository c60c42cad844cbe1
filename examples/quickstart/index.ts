// Quickstart: one pinned hash map whose keys are IPv4 addresses and whose
// values are u32 rate limits (packets per second), written in typed notation
// instead of hex. `pulumi up` creates and pins it; edit `contents` and run
// `pulumi up` again to change the entries in place (same kernel map ID).
import * as pulumi from "@pulumi/pulumi";
import { PinnedMap } from "pulumi-ebpf";

const config = new pulumi.Config();
// The directory for the pins (a bpffs mount); tests point it at a private one.
const pinRoot = config.get("pinRoot") ?? "/sys/fs/bpf/pulumi-ebpf-examples/quickstart";

const rateLimits = new PinnedMap("rate-limits", {
  pinPath: `${pinRoot}/rate_limits`,
  mapType: "hash",
  name: "rate_limits",
  keyType: "ipv4", // key size 4 is implied by the codec
  valueType: "u32", // value size 4 likewise
  maxEntries: 1024,
  contents: [
    { key: "10.0.0.1", value: 1000 },
    { key: "10.0.0.2", value: 5000 },
    { key: "192.168.1.10", value: 250 },
  ],
});

export const pinPath = rateLimits.pinPath;
export const mapId = rateLimits.mapId;
export const entryCount = rateLimits.entryCount;
export const contentsDigest = rateLimits.contentsDigest;
