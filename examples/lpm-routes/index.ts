// Routes by longest-prefix match: an lpm_trie whose keys are written as CIDR
// strings (the lpm_ipv4 codec encodes struct bpf_lpm_trie_key: a u32 prefix
// length followed by the address) and whose values are egress ifindexes.
import * as pulumi from "@pulumi/pulumi";
import { PinnedMap } from "pulumi-ebpf";

const config = new pulumi.Config();
const pinRoot = config.get("pinRoot") ?? "/sys/fs/bpf/pulumi-ebpf-examples/lpm-routes";

const routes = new PinnedMap("routes-v4", {
  pinPath: `${pinRoot}/routes_v4`,
  mapType: "lpm_trie",
  name: "routes_v4",
  keyType: "lpm_ipv4", // key size 8 implied
  valueType: "u32",
  maxEntries: 1024,
  flags: ["no_prealloc"], // the kernel requires it for lpm_trie
  contents: [
    { key: "0.0.0.0/0", value: 1 }, // default route
    { key: "10.0.0.0/8", value: 2 },
    { key: "10.1.0.0/16", value: 3 },
    { key: "192.168.1.0/24", value: 4 },
  ],
});

const routes6 = new PinnedMap("routes-v6", {
  pinPath: `${pinRoot}/routes_v6`,
  mapType: "lpm_trie",
  name: "routes_v6",
  keyType: "lpm_ipv6", // key size 20 implied
  valueType: "u32",
  maxEntries: 1024,
  flags: ["no_prealloc"],
  contents: [
    { key: "::/0", value: 1 },
    { key: "2001:db8::/32", value: 2 },
  ],
});

export const v4 = { pinPath: routes.pinPath, mapId: routes.mapId, entries: routes.entryCount };
export const v6 = { pinPath: routes6.pinPath, mapId: routes6.mapId, entries: routes6.entryCount };
