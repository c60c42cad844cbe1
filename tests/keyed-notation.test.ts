// The keyed form of contents in the dynamic provider (provider/dynamic/keyed.ts),
// without the CLI: what check returns for each kind of key and value, that
// both declared forms check to the same state, that failures name the key
// the user wrote, and that keyless maps keep their arrays. Then, on a real
// map, the provider's read and update over state recorded as an array.
import assert from "node:assert/strict";
import * as path from "node:path";

import { provider } from "../provider/dynamic";
import { arrayForm, keyedForm, keyNotation } from "../provider/dynamic/keyed";
import { describeDrift } from "../provider/core";
import { usePrivateBpffs } from "./fixtures/bpffs";
import { dumpU32, updateU32 } from "./fixtures/bpftool";

type Props = Record<string, unknown>;

const checked = async (news: Props) => {
  const result = await provider.check({}, news);
  assert.equal(result.failures, undefined, JSON.stringify(result.failures));
  return result.inputs as Props;
};

describe("keyed contents: notation", function () {
  // Check looks at the host too: the pin paths lie in a private bpffs.
  const notationBpffs = usePrivateBpffs();
  const hash = { pinPath: "", mapType: "hash", maxEntries: 16 };
  let queuePin = "";
  before(() => {
    const dir = notationBpffs().dir("keyed");
    hash.pinPath = path.join(dir, "m");
    queuePin = path.join(dir, "q");
  });

  it("check returns keyed contents in canonical order, from the array form and from the keyed form alike", async () => {
    const fromArray = await checked({ ...hash, keyType: "ipv4", valueType: "u32", contents: [{ key: "10.0.0.2", value: 2 }, { key: "10.0.0.1", value: "0x1" }] });
    assert.deepEqual(fromArray.contents, { "10.0.0.1": 1, "10.0.0.2": 2 });
    assert.deepEqual(Object.keys(fromArray.contents as Props), ["10.0.0.1", "10.0.0.2"]);
    const fromKeyed = await checked({ ...hash, keyType: "ipv4", valueType: "u32", contents: { "10.0.0.2": 2, "10.0.0.1": 1 } });
    assert.deepEqual(fromKeyed, fromArray);
  });

  it("numbers and structs are keyed by their JSON, and read back to the same keys", async () => {
    const u32 = await checked({ ...hash, keyType: "u32", valueType: "u32", contents: [{ key: 10, value: 1 }, { key: "0x2", value: 2 }] });
    assert.deepEqual(u32.contents, { 2: 2, 10: 1 });
    assert.deepEqual(arrayForm({ ...hash, keyType: "u32", valueType: "u32", contents: u32.contents }), [{ key: 2, value: 2 }, { key: 10, value: 1 }]);
    const keyType = { struct: [{ name: "port", type: "u16" }, { name: "proto", type: "u8" }] };
    const struct = await checked({ ...hash, keyType, keySize: 4, valueType: "u8", contents: [{ key: { proto: 6, port: 80 }, value: 1 }] });
    assert.deepEqual(struct.contents, { '{"port":80,"proto":6}': 1 });
    assert.deepEqual(await checked({ ...hash, keyType, keySize: 4, valueType: "u8", contents: struct.contents }), struct);
    // A string key that looks like a number stays a string key.
    const strings = await checked({ ...hash, keyType: "string", keySize: 4, valueType: "u8", contents: [{ key: "7", value: 1 }] });
    assert.deepEqual(strings.contents, { 7: 1 });
    assert.deepEqual(arrayForm({ ...hash, keyType: "string", keySize: 4, valueType: "u8", contents: strings.contents }), [{ key: "7", value: 1 }]);
    assert.equal(keyNotation({ a: 1 }), '{"a":1}');
  });

  it("per-CPU values: one value when all CPUs agree, { perCpuValues } when they differ, both ways", async () => {
    const base = { ...hash, mapType: "percpu_hash", keyType: "u32", valueType: "u32" };
    const same = await checked({ ...base, contents: [{ key: 1, value: 5 }] });
    assert.deepEqual(same.contents, { 1: 5 });
    const keyed = { 1: 5, 2: { perCpuValues: [7, 8, ...new Array(64).fill(0)] } };
    assert.deepEqual(arrayForm({ ...base, contents: keyed }), [{ key: 1, value: 5 }, { key: 2, perCpuValues: keyed[2].perCpuValues }]);
  });

  it("failures in the keyed form name the key the user wrote", async () => {
    const result = await provider.check({}, { ...hash, keyType: "ipv4", valueType: "u8", contents: { "10.0.0.1": 1, "10.0.0.300": 1, "10.0.0.2": 999 } });
    const reasons = (result.failures ?? []).map((failure) => failure.reason);
    assert.ok(reasons.some((reason) => reason.startsWith('contents["10.0.0.300"]: ')), reasons.join("\n"));
    assert.ok(reasons.some((reason) => reason.startsWith('contents["10.0.0.2"].value: ') && /999/.test(reason)), reasons.join("\n"));
  });

  it("keyless maps (queue) keep the array, in push order", async () => {
    const queue = await checked({ pinPath: queuePin, mapType: "queue", valueType: "u32", maxEntries: 4, contents: [{ value: 3 }, { value: 1 }] });
    assert.deepEqual(queue.contents, [{ value: 3 }, { value: 1 }]);
    assert.deepEqual(keyedForm("queue", queue.contents), queue.contents);
  });

  it("describeDrift names up to 10 keys of each kind, then how many more", () => {
    assert.equal(describeDrift({ added: ["10.9.9.9"], changed: [{ port: 80 }], removed: [7] }), '1 added (10.9.9.9), 1 changed ({"port":80}), 1 removed (7)');
    const many = Array.from({ length: 12 }, (_, index) => index);
    assert.equal(describeDrift({ added: many }), "12 added (0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more)");
    assert.equal(describeDrift(undefined), "");
  });
});

describe("keyed contents: state recorded as an array", function () {
  this.timeout(60_000);
  const bpffs = usePrivateBpffs();

  it("diff sees no change, update keeps the map and the entries, and read returns the keyed form", async () => {
    const pinPath = path.join(bpffs().dir("upgrade"), "m");
    const inputs = await checked({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, contents: [{ key: 1, value: 10 }, { key: 2, value: 20 }] });
    const created = await provider.create(inputs);
    // The state as the provider recorded it before contents were keyed.
    const old: Props = { ...(created.outs as Props), contents: [{ key: 1, value: 10 }, { key: 2, value: 20 }] };
    assert.deepEqual(await provider.diff(created.id, old, inputs), { changes: false });
    const frozen = await checked({ ...inputs, freeze: true });
    const updated = await provider.update(created.id, { ...old }, frozen);
    assert.equal((updated.outs as Props).mapId, old.mapId, "freeze true with unchanged contents is in place");
    assert.deepEqual(dumpU32(pinPath), { 1: 10, 2: 20 });
    const read = await provider.read(created.id, old);
    assert.deepEqual((read.props as Props).contents, { 1: 10, 2: 20 });
    assert.deepEqual((read.inputs as Props).contents, { 1: 10, 2: 20 });
    assert.equal((read.props as Props).drift, undefined);
    await provider.delete(created.id, updated.outs as Props);
  });

  it("a read that finds drift reports it keyed, with the one-line summary", async () => {
    const pinPath = path.join(bpffs().dir("drift"), "m");
    const inputs = await checked({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, contents: [{ key: 1, value: 10 }] });
    const created = await provider.create(inputs);
    updateU32(pinPath, 2, 20);
    updateU32(pinPath, 1, 11);
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
    let read;
    try {
      read = await provider.read(created.id, created.outs as Props);
    } finally {
      process.stderr.write = write;
    }
    assert.deepEqual((read.props as Props).contents, { 1: 11, 2: 20 });
    assert.deepEqual((read.props as Props).drift, { added: [2], changed: [1] });
    assert.deepEqual(written, [`pulumi-ebpf: ${pinPath}: drift: 1 added (2), 1 changed (1)\n`]);
    await provider.delete(created.id, created.outs as Props);
  });
});
