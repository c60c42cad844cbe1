// The stack that drift.sh tampers with: per-tenant byte quotas in a hash map
// (u32 tenant ID -> u32 megabytes).
import * as pulumi from "@pulumi/pulumi";
import { PinnedMap } from "pulumi-ebpf";

const config = new pulumi.Config();
const pinRoot = config.get("pinRoot") ?? "/sys/fs/bpf/pulumi-ebpf-examples/drift";

const quotas = new PinnedMap("quotas", {
  pinPath: `${pinRoot}/quotas`,
  mapType: "hash",
  name: "quotas",
  keyType: "u32",
  valueType: "u32",
  maxEntries: 64,
  contents: [
    { key: 1, value: 100 },
    { key: 2, value: 200 },
    { key: 3, value: 300 },
  ],
});

export const pinPath = quotas.pinPath;
export const mapId = quotas.mapId;
export const contentsDigest = quotas.contentsDigest;
