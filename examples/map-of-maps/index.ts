// Maps of maps: a hash_of_maps that selects a per-tenant allow list. Its
// values are the pin paths of other PinnedMaps (their `pinPath` outputs), so
// Pulumi creates the inner maps first; the kernel stores their map IDs and
// read-back expresses them as the declared pin paths again.
import * as pulumi from "@pulumi/pulumi";
import { PinnedMap } from "pulumi-ebpf";

const config = new pulumi.Config();
const pinRoot = config.get("pinRoot") ?? "/sys/fs/bpf/pulumi-ebpf-examples/map-of-maps";

// Every inner map must match the outer map's innerMap template.
const allowListTemplate = { mapType: "hash" as const, keySize: 4, valueSize: 1, maxEntries: 256 };

function allowList(tenant: string, addresses: string[]): PinnedMap {
  return new PinnedMap(`allow-${tenant}`, {
    pinPath: `${pinRoot}/allow_${tenant}`,
    ...allowListTemplate,
    keyType: "ipv4",
    valueType: "u8",
    contents: addresses.map((address) => ({ key: address, value: 1 })),
  });
}

const red = allowList("red", ["10.0.0.1", "10.0.0.2"]);
const blue = allowList("blue", ["10.1.0.1"]);

const tenants = new PinnedMap("tenants", {
  pinPath: `${pinRoot}/tenants`,
  mapType: "hash_of_maps",
  name: "tenants",
  keyType: "u32", // tenant ID
  maxEntries: 16,
  innerMap: allowListTemplate,
  contents: [
    { key: 1, value: red.pinPath },
    { key: 2, value: blue.pinPath },
  ],
});

export const outer = { pinPath: tenants.pinPath, mapId: tenants.mapId, entries: tenants.entryCount };
export const inner = { red: red.mapId, blue: blue.mapId };
