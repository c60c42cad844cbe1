// One allow list per host, under the host's own /sys/fs/bpf. The agent runs
// this program on every host of the fleet, each host in its own stack
// (`host-<node name>`), and sets the config `ebpf:host` to the host's name.
"use strict";
const pulumi = require("@pulumi/pulumi");
const { PinnedMap } = require("pulumi-ebpf");

const host = new pulumi.Config("ebpf").require("host");

const allowList = new PinnedMap("allow-list", {
  pinPath: "/sys/fs/bpf/fleet/allow_v4",
  mapType: "hash",
  name: "fleet_allow_v4",
  keyType: "ipv4",
  valueType: "u8",
  maxEntries: 1024,
  flags: ["no_prealloc"],
  contents: [
    { key: "10.0.0.1", value: 1 },
    { key: "10.0.0.2", value: 1 },
  ],
});

exports.host = host;
exports.allowListId = allowList.mapId;
