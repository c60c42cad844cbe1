// The provider plugin (bin/pulumi-resource-ebpf) through the real Pulumi CLI,
// the YAML language host and the real kernel, checked with bpftool: the YAML
// example's whole lifecycle (drift, in-place change, new map, a map gone
// behind the stack's back, destroy); bad input refused at preview; `pulumi
// import` of maps bpftool made (hex, typed), then `up` keeping the map ID;
// the detailed diff of a mixed change; a YAML `get:`; a stack made with the
// dynamic provider moving to the plugin without a new kernel map; and
// `pulumi-ebpf install-plugin`.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { mountPrivateBpffs, type PrivateBpffs } from "./fixtures/bpffs";
import { bpftool, dumpHex, mapShow } from "./fixtures/bpftool";
import { allOutput, newYamlStack, resourcesOfType, showRun, type YamlStack } from "./fixtures/plugin";
import { newPulumiStack, REPO_ROOT, runOk, usePulumiStack, type PulumiStack } from "./fixtures/pulumi";
import { detailedDiffOf, entryPath } from "../provider/plugin/detailed";
import { parseImportId } from "../provider/plugin/importid";

const YAML_EXAMPLE = path.join(REPO_ROOT, "examples", "yaml-allowlist");
const E2E_PROJECT = path.join(REPO_ROOT, "tests", "fixtures", "e2e-project");
const PLUGIN_TYPE = "ebpf:index:PinnedMap";

/** The live entries of an ipv4-keyed map, by address, values as little-endian integers. */
function dumpIpv4(pin: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { key, value } of dumpHex(pin)) out[[...Buffer.from(key, "hex")].join(".")] = Buffer.from(value, "hex").readUIntLE(0, value.length / 2);
  return out;
}

/** bpftool's `map update` arguments for an ipv4 key and a u32 value. */
const ipv4U32 = (ip: string, value: number) => ["key", ...ip.split("."), "value", ...[...Buffer.from(Uint32Array.of(value).buffer)].map(String)];

describe("provider plugin: the pieces without the engine", function () {
  it("names changed contents entries and inputs in the detailed diff, and never a replace", function () {
    const olds = { pinPath: "/sys/fs/bpf/a", mapType: "hash", keyType: "ipv4", valueType: "u8", maxEntries: 8, contents: { "10.0.0.1": 1, "10.0.0.2": 2, "10.0.0.3": 3 } };
    const news = { ...olds, maxEntries: 16, contents: { "10.0.0.1": 1, "10.0.0.2": 5, "10.0.0.9": 9 } };
    assert.deepEqual(detailedDiffOf(olds, news), {
      maxEntries: "update", 'contents["10.0.0.2"]': "update", 'contents["10.0.0.3"]': "delete", 'contents["10.0.0.9"]': "add",
    });
    // Array-form state equals the same entries keyed: no change.
    assert.deepEqual(detailedDiffOf({ ...olds, contents: [{ key: "10.0.0.3", value: 3 }, { key: "10.0.0.1", value: 1 }, { key: "10.0.0.2", value: 2 }] }, olds), {});
    assert.equal(entryPath('{"port":80}'), 'contents["{\\"port\\":80}"]');
    assert.equal(entryPath("a\\b"), undefined);
  });

  it("reads an import ID as a pin path or a typed JSON spec, and names what is wrong with a bad one", function () {
    assert.deepEqual(parseImportId("/sys/fs/bpf/x"), { pinPath: "/sys/fs/bpf/x" });
    assert.deepEqual(parseImportId('{"pinPath":"/sys/fs/bpf/x","keyType":"ipv4","valueType":"u8"}'), { pinPath: "/sys/fs/bpf/x", keyType: "ipv4", valueType: "u8" });
    assert.throws(() => parseImportId('{"pinPath":"/sys/fs/bpf/x","keytype":"ipv4"}'), /keytype/);
    assert.throws(() => parseImportId("{not json"), /not a pin path and not a JSON object/);
  });
});

describe("provider plugin: the YAML example through the CLI", function () {
  this.timeout(180_000);
  let pinRoot = "";
  const env = usePulumiStack(YAML_EXAMPLE);
  const pin = () => path.join(pinRoot, "allow_v4");

  before(() => {
    pinRoot = path.join(env.bpffs().root, "yaml-allowlist");
    env.stack().setConfig({ pinRoot });
  });

  it("deploys the map bpftool confirms, refreshes clean, and exits 7 on drift", async function () {
    const up = await env.stack().ok(["up", "--yes"]);
    assert.match(up.stdout, /\+ 2 created/);
    const info = mapShow(pin());
    assert.equal(info.type, "hash");
    assert.equal(info.name, "xdp_allow_v4");
    assert.equal(info.max_entries, 1024);
    assert.deepEqual(dumpIpv4(pin()), { "10.0.0.1": 1, "192.168.1.10": 2 });
    assert.equal((await env.stack().outputs()).mapId, info.id);
    await env.stack().ok(["preview", "--refresh", "--expect-no-changes"]);
    bpftool("map", "update", "pinned", pin(), "key", "10", "9", "9", "9", "value", "1");
    const drift = await env.stack().run(["preview", "--refresh", "--expect-no-changes"]);
    assert.equal(drift.code, 7, allOutput(drift));
    assert.match(allOutput(drift), /drift: 1 added \(10\.9\.9\.9\)/);
    // Repair: up --refresh brings the map back in place.
    await env.stack().ok(["up", "--yes", "--refresh"]);
    assert.deepEqual(dumpIpv4(pin()), { "10.0.0.1": 1, "192.168.1.10": 2 });
    assert.equal(mapShow(pin()).id, info.id);
  });

  it("changes a value in place (same map ID) and an ABI field with a new map, saying which", async function () {
    const before = mapShow(pin()).id;
    env.stack().setConfig({ pinRoot, gatewayValue: 5 });
    const preview = await env.stack().ok(["preview", "--diff"]);
    assert.match(preview.stdout, /~ 192\.168\.1\.10: 2 => 5/);
    const up = await env.stack().ok(["up", "--yes"]);
    assert.match(up.stdout, /applied in place: \+0 ~1 -0/);
    assert.equal(mapShow(pin()).id, before);
    assert.deepEqual(dumpIpv4(pin()), { "10.0.0.1": 1, "192.168.1.10": 5 });

    env.stack().setConfig({ pinRoot, gatewayValue: 5, maxEntries: 2048 });
    const rebuild = await env.stack().ok(["preview"]);
    assert.match(rebuild.stdout, /update \[diff: ~maxEntries\]/);
    assert.match(rebuild.stdout, /a new kernel map will be built and swapped in \(maxEntries changed\)/);
    const applied = await env.stack().ok(["up", "--yes"]);
    assert.match(applied.stdout, /new kernel map: maxEntries 1024 → 2048/);
    const after = mapShow(pin());
    assert.notEqual(after.id, before);
    assert.equal(after.max_entries, 2048);
    assert.deepEqual(dumpIpv4(pin()), { "10.0.0.1": 1, "192.168.1.10": 5 });
  });

  it("reports a map unpinned (and its directory removed) behind its back as gone on refresh, and up pins a new one", async function () {
    fs.rmSync(pin());
    fs.rmdirSync(pinRoot);
    const refresh = await env.stack().ok(["refresh", "--yes"]);
    assert.match(refresh.stdout, /- 1 deleted/);
    assert.equal((await resourcesOfType(env.stack(), PLUGIN_TYPE)).length, 0);
    await env.stack().ok(["up", "--yes"]);
    assert.equal(mapShow(pin()).max_entries, 2048);
    assert.deepEqual(dumpIpv4(pin()), { "10.0.0.1": 1, "192.168.1.10": 5 });
  });

  it("destroys: the pin and the directory it made are gone", async function () {
    await env.stack().ok(["destroy", "--yes"]);
    assert.equal(fs.existsSync(pin()), false);
    assert.equal(fs.existsSync(pinRoot), false);
  });
});

describe("provider plugin: pulumi import of a map bpftool made", function () {
  this.timeout(180_000);
  let bpffs: PrivateBpffs;
  let stack: YamlStack | undefined;
  let dir = "";
  const pin = () => path.join(dir, "allow");

  before(async function () {
    bpffs = mountPrivateBpffs();
    dir = bpffs.dir("import");
    stack = await newYamlStack("plugin-import", "resources: {}\n");
  });
  after(async function () {
    try {
      const problems = (await stack?.cleanup()) ?? [];
      if (problems.length > 0) console.warn(`cleanup: ${problems.join("; ")}`);
    } finally {
      bpffs.unmount();
    }
  });

  it("refuses bad input at preview, naming the entry and the rule, before anything is pinned", async function () {
    stack!.writeProgram(`resources:
  bad:
    type: ebpf:index:PinnedMap
    properties:
      pinPath: ${path.join(dir, "bad", "map")}
      mapType: hash
      keyType: ipv4
      valueType: u8
      maxEntries: 8
      contents:
        10.0.0.1: 300
        10.0.0.2: 1
`);
    const preview = await stack!.run(["preview"]);
    assert.notEqual(preview.code, 0);
    assert.match(allOutput(preview), /contents\["10\.0\.0\.1"\]\.value: 300 does not fit u8 \(0\.\.255\)/);
    const up = await stack!.run(["up", "--yes"]);
    assert.notEqual(up.code, 0);
    assert.equal(fs.existsSync(path.join(dir, "bad")), false);
    stack!.writeProgram("resources: {}\n");
  });

  it("refuses what it cannot import, naming the cause", async function () {
    const missing = await stack!.run(["import", PLUGIN_TYPE, "nothing", path.join(dir, "nothing"), "--yes"]);
    assert.notEqual(missing.code, 0);
    assert.match(allOutput(missing), /does not exist/);
    bpftool("map", "create", path.join(dir, "wide"), "type", "hash", "key", "8", "value", "4", "entries", "4", "name", "wide");
    const misfit = await stack!.run(["import", PLUGIN_TYPE, "wide", JSON.stringify({ pinPath: path.join(dir, "wide"), keyType: "ipv4" }), "--yes"]);
    assert.notEqual(misfit.code, 0);
    assert.match(allOutput(misfit), /the codecs do not fit the live map/);
    assert.match(allOutput(misfit), /keyType: ipv4 needs a size of 4 bytes, not 8/);
  });

  it("imports a map without codecs: hex contents, its ABI and name", async function () {
    const hexPin = path.join(dir, "hex");
    bpftool("map", "create", hexPin, "type", "hash", "key", "4", "value", "4", "entries", "16", "name", "hex_map");
    bpftool("map", "update", "pinned", hexPin, ...ipv4U32("10.0.0.1", 7));
    const imported = await stack!.ok(["import", PLUGIN_TYPE, "hex", hexPin, "--yes", "--protect=false"]);
    assert.match(imported.stdout, /= 1 imported/);
    const [state] = await resourcesOfType(stack!, PLUGIN_TYPE);
    assert.deepEqual(state!.inputs, { pinPath: hexPin, mapType: "hash", name: "hex_map", keySize: 4, valueSize: 4, maxEntries: 16, contents: { "0a000001": "07000000" } });
    assert.equal(state!.outputs.mapId, mapShow(hexPin).id);
    // Out of the state again, the map left as it is.
    await stack!.ok(["state", "delete", state!.urn, "--yes"]);
    assert.equal(dumpHex(hexPin).length, 1);
  });

  it("imports with typed contents, generates YAML, and the next up keeps the map ID", async function () {
    bpftool("map", "create", pin(), "type", "hash", "key", "4", "value", "4", "entries", "64", "name", "fw_allow");
    for (const [ip, value] of [["10.0.0.1", 1], ["10.0.0.2", 2], ["10.0.0.3", 3]] as const) bpftool("map", "update", "pinned", pin(), ...ipv4U32(ip, value));
    const mapId = mapShow(pin()).id;
    const out = path.join(bpffs.root, "..", `plugin-import-${process.pid}.yaml`);
    try {
      const imported = await stack!.ok(["import", PLUGIN_TYPE, "allow", JSON.stringify({ pinPath: pin(), keyType: "ipv4", valueType: "u32" }), "--yes", "--out", out]);
      assert.match(imported.stdout, /= 1 imported/);
      const generated = fs.readFileSync(out, "utf8");
      for (const line of [/type: ebpf:PinnedMap/, /keyType: ipv4/, /valueType: u32/, /10\.0\.0\.2: 2/, /name: fw_allow/, /protect: true/]) assert.match(generated, line);
      const [state] = await resourcesOfType(stack!, PLUGIN_TYPE);
      assert.equal(state!.id, pin(), "the ID is the pin path, not the JSON import ID");
      assert.equal(state!.outputs.mapId, mapId);
      // The generated code is the program; the next up changes nothing.
      stack!.writeProgram(generated);
      const same = await stack!.ok(["up", "--yes"]);
      assert.doesNotMatch(same.stdout, /updated|created|replaced/);
      await stack!.ok(["preview", "--expect-no-changes"]);
      assert.equal(mapShow(pin()).id, mapId);
    } finally {
      fs.rmSync(out, { force: true });
    }
  });

  it("previews a mixed change by entry and input, then applies it to the same map", async function () {
    const mapId = mapShow(pin()).id;
    // Adds 10.0.0.9 (sorts last), changes 10.0.0.2, removes 10.0.0.3; unprotects for the destroy.
    const program = (maxEntries: number) => `resources:
  allow:
    type: ebpf:PinnedMap
    properties:
      pinPath: ${pin()}
      mapType: hash
      name: fw_allow
      keyType: ipv4
      valueType: u32
      maxEntries: ${maxEntries}
      contents:
        10.0.0.1: 1
        10.0.0.2: 20
        10.0.0.9: 9
`;
    // With an ABI change too (previewed only): the inputs and the reason for a new kernel map.
    stack!.writeProgram(program(128));
    const mixed = await stack!.ok(["preview", "--diff"]);
    showRun("plugin preview --diff of entries and maxEntries", mixed);
    assert.match(mixed.stdout, /~ maxEntries: 64 => 128/);
    assert.match(allOutput(mixed), /a new kernel map will be built and swapped in \(maxEntries changed\)/);
    const summary = await stack!.ok(["preview"]);
    showRun("plugin preview of entries and maxEntries", summary);
    assert.match(summary.stdout, /update \[diff: ~contents,maxEntries\]/);
    assert.match(summary.stdout, /a new kernel map will be built and swapped in \(maxEntries changed\)/);
    stack!.writeProgram(program(64));
    const preview = await stack!.ok(["preview"]);
    showRun("plugin preview of a mixed change", preview);
    assert.match(preview.stdout, /update \[diff: ~contents\]/);
    const diff = await stack!.ok(["preview", "--diff"]);
    showRun("plugin preview --diff of a mixed change", diff);
    assert.match(diff.stdout, /~ 10\.0\.0\.2: 2 => 20/);
    assert.match(diff.stdout, /- 10\.0\.0\.3: 3/);
    assert.match(diff.stdout, /\+ 10\.0\.0\.9: 9/);
    assert.doesNotMatch(diff.stdout, /10\.0\.0\.1: 1/, "an unchanged entry is not in the detailed diff");
    const up = await stack!.ok(["up", "--yes"]);
    assert.match(up.stdout, /applied in place: \+1 ~1 -1/);
    assert.equal(mapShow(pin()).id, mapId);
    assert.deepEqual(dumpIpv4(pin()), { "10.0.0.1": 1, "10.0.0.2": 20, "10.0.0.9": 9 });
    await stack!.ok(["destroy", "--yes"]);
    assert.equal(fs.existsSync(pin()), false);
  });
});

describe("provider plugin: a YAML get: of a map bpftool made", function () {
  this.timeout(120_000);
  let bpffs: PrivateBpffs;
  let stack: YamlStack | undefined;

  before(() => {
    bpffs = mountPrivateBpffs();
  });
  after(async function () {
    try {
      const problems = (await stack?.cleanup()) ?? [];
      if (problems.length > 0) console.warn(`cleanup: ${problems.join("; ")}`);
    } finally {
      bpffs.unmount();
    }
  });

  it("reads the map (hex contents, map ID) without managing it: destroy leaves it pinned", async function () {
    const pin = path.join(bpffs.dir("get"), "seen");
    bpftool("map", "create", pin, "type", "hash", "key", "4", "value", "4", "entries", "8", "name", "seen");
    bpftool("map", "update", "pinned", pin, ...ipv4U32("1.2.3.4", 5));
    stack = await newYamlStack("plugin-get", `resources:
  seen:
    type: ebpf:index:PinnedMap
    get:
      id: ${pin}
outputs:
  mapId: \${seen.mapId}
  contents: \${seen.contents}
`);
    await stack.ok(["up", "--yes"]);
    const outputs = await stack.outputs();
    assert.equal(outputs.mapId, mapShow(pin).id);
    assert.deepEqual(outputs.contents, { "01020304": "05000000" });
    await stack.ok(["destroy", "--yes"]);
    assert.equal(dumpHex(pin).length, 1, "still pinned, entries untouched");
  });
});

describe("provider plugin: a dynamic-provider stack moves to the plugin", function () {
  this.timeout(240_000);
  let bpffs: PrivateBpffs;
  let dynamicStack: PulumiStack | undefined;
  let pluginStack: YamlStack | undefined;

  before(async function () {
    bpffs = mountPrivateBpffs();
  });
  after(async function () {
    try {
      for (const stack of [pluginStack, dynamicStack]) {
        const problems = (await stack?.cleanup()) ?? [];
        if (problems.length > 0) console.warn(`cleanup: ${problems.join("; ")}`);
      }
    } finally {
      bpffs.unmount();
    }
  });

  it("keeps the map: state delete in the old stack, ifExists adopt under ebpf:index:PinnedMap", async function () {
    const pin = path.join(bpffs.dir("migrate"), "routes");
    const declaration = { pinPath: pin, mapType: "hash", keyType: "ipv4", valueType: "u32", maxEntries: 32, contents: { "10.0.0.1": 1, "10.0.0.2": 2 } };
    dynamicStack = await newPulumiStack(E2E_PROJECT, { maps: { routes: declaration } });
    await dynamicStack.ok(["up", "--yes"]);
    const mapId = mapShow(pin).id;
    const [dynamicState] = await resourcesOfType(dynamicStack, "pulumi-nodejs:dynamic/ebpf:PinnedMap");
    // 1. Forget the map in the old stack (nothing is unpinned), and drop it from that program.
    await dynamicStack.ok(["state", "delete", dynamicState!.urn, "--yes"]);
    dynamicStack.setConfig({ maps: {} });
    await dynamicStack.ok(["up", "--yes"]);
    assert.equal(mapShow(pin).id, mapId);
    // 2. Declare it under the plugin's type with ifExists: adopt.
    pluginStack = await newYamlStack("plugin-migrate", `resources:
  routes:
    type: ebpf:index:PinnedMap
    properties:
      pinPath: ${pin}
      mapType: hash
      keyType: ipv4
      valueType: u32
      maxEntries: 32
      ifExists: adopt
      contents:
        10.0.0.1: 1
        10.0.0.2: 2
        10.0.0.3: 3
`);
    const up = await pluginStack.ok(["up", "--yes"]);
    assert.match(up.stdout, /\+ 2 created/);
    assert.equal(mapShow(pin).id, mapId, "adopted, not rebuilt");
    assert.deepEqual(dumpIpv4(pin), { "10.0.0.1": 1, "10.0.0.2": 2, "10.0.0.3": 3 });
    const [pluginState] = await resourcesOfType(pluginStack, PLUGIN_TYPE);
    assert.equal(pluginState!.outputs.mapId, mapId);
    await pluginStack.ok(["preview", "--refresh", "--expect-no-changes"]);
    // The plugin stack now owns the map: its destroy unpins it.
    await pluginStack.ok(["destroy", "--yes"]);
    assert.equal(fs.existsSync(pin), false);
  });
});

describe("provider plugin: pulumi-ebpf install-plugin", function () {
  this.timeout(180_000);
  let bpffs: PrivateBpffs;
  let stack: YamlStack | undefined;

  before(() => {
    bpffs = mountPrivateBpffs();
  });
  after(async function () {
    try {
      const problems = (await stack?.cleanup()) ?? [];
      if (problems.length > 0) console.warn(`cleanup: ${problems.join("; ")}`);
    } finally {
      bpffs.unmount();
    }
  });

  it("installs the plugin where the CLI finds it: a project without plugins: deploys", async function () {
    const pin = path.join(bpffs.dir("installed"), "flags");
    stack = await newYamlStack("plugin-installed", `resources:
  flags:
    type: ebpf:index:PinnedMap
    properties:
      pinPath: ${pin}
      mapType: array
      keyType: u32
      valueType: u32
      maxEntries: 4
      contents:
        "0": 1
        "3": 42
`, { localPlugin: false });
    // Before: the engine has no ebpf plugin (downloads are off).
    const missing = await stack.run(["preview"]);
    assert.notEqual(missing.code, 0, allOutput(missing));
    assert.match(allOutput(missing), /no resource plugin 'pulumi-resource-ebpf' found/, allOutput(missing));
    const installed = runOk("node", [path.join(REPO_ROOT, "bin", "pulumi-ebpf"), "install-plugin"], { env: stack.env });
    assert.match(installed.stdout, /installed the resource plugin ebpf 0\.1\.0/);
    const listed = runOk("pulumi", ["plugin", "ls", "--json"], { env: stack.env });
    assert.ok((JSON.parse(listed.stdout) as { name: string; kind: string }[]).some((p) => p.name === "ebpf" && p.kind === "resource"), listed.stdout);
    await stack.ok(["up", "--yes"]);
    assert.equal(mapShow(pin).type, "array");
    const values = dumpHex(pin).map(({ value }) => Buffer.from(value, "hex").readUInt32LE(0));
    assert.deepEqual(values, [1, 0, 0, 42]);
    await stack.ok(["destroy", "--yes"]);
    assert.equal(fs.existsSync(pin), false);
  });
});
