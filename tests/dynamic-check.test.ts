// The dynamic provider's handling of property bags, through its `provider`
// object against the real kernel (a private bpffs): check refuses properties
// the core does not know (a misspelled input is not silently dropped), while
// recorded state, which holds outputs and the provider's own records beside
// the inputs, still reads back, diffs and updates; a refresh whose contents
// file is gone fails naming it; a merge-mode contents file records its keys,
// so an update deletes exactly the keys the file dropped. Also the key set
// record (packKeys/unpackKeys) on its own.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { packKeys, unpackKeys } from "../provider/core";
import { provider } from "../provider/dynamic/index";
import { usePrivateBpffs } from "./fixtures/bpffs";
import { dumpU32, updateU32 } from "./fixtures/bpftool";

type Props = Record<string, unknown>;

// What the dynamic provider host passes beside the user's inputs.
const SERIALIZED_PROVIDER = { __provider: "exports.handler = …" };

const u32 = (value: number) => {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(value);
  return key;
};

function writeJsonLines(file: string, entries: Record<number, number>): void {
  fs.writeFileSync(file, Object.entries(entries).map(([key, value]) => JSON.stringify({ key: Number(key), value })).join("\n") + "\n");
}

/** check, asserting that it found nothing wrong; returns the inputs the engine would keep. */
async function checkedInputs(news: Props): Promise<Props> {
  const result = await provider.check({}, { ...news, ...SERIALIZED_PROVIDER });
  assert.deepEqual(result.failures ?? [], [], "check failures");
  return result.inputs as Props;
}

describe("dynamic provider: check refuses unknown properties", function () {
  // Check looks at the host too: the pin path lies in a private bpffs.
  const bpffs = usePrivateBpffs();
  const base = { pinPath: "", mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8 };
  before(() => {
    base.pinPath = path.join(bpffs().dir("check"), "m");
  });

  it("refuses a misspelled input (contentPolicy) instead of running the map in exact mode", async () => {
    const result = await provider.check({}, { ...base, contentPolicy: "merge", contents: [], ...SERIALIZED_PROVIDER });
    const failures = result.failures ?? [];
    assert.equal(failures.length, 1, JSON.stringify(failures));
    assert.equal(failures[0]!.property, "contentPolicy");
    // The core's rule ("unknown property", and the closest known name where it offers one).
    assert.match(failures[0]!.reason, /^contentPolicy: .*(unknown property|did you mean)/i);
  });

  it("refuses an output given as an input (mapId), and still reports the other failures", async () => {
    const result = await provider.check({}, { ...base, mapId: 7, maxEntries: -1, ...SERIALIZED_PROVIDER });
    const properties = (result.failures ?? []).map((failure) => failure.property).sort();
    assert.deepEqual(properties, ["mapId", "maxEntries"]);
  });

  it("refuses a misspelled input while other values are not known yet (a preview), and lets such inputs through otherwise", async () => {
    const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // the engine's marker for a value known only at update time
    const typo = await provider.check({}, { ...base, pinPath: unknown, contentPolicy: "merge", ...SERIALIZED_PROVIDER });
    assert.deepEqual((typo.failures ?? []).map((failure) => failure.property), ["contentPolicy"]);
    const fine = await provider.check({}, { ...base, pinPath: unknown, contentsPolicy: "merge", ...SERIALIZED_PROVIDER });
    assert.equal(fine.failures, undefined);
    assert.equal((fine.inputs as Props).pinPath, unknown);
  });

  it("accepts the user's inputs beside the serialized provider, and returns them canonical", async () => {
    const inputs = await checkedInputs({ ...base, contentsPolicy: "merge", contents: [{ key: "0x2", value: 1 }, { key: 1, value: 2 }] });
    assert.equal(inputs.contentsPolicy, "merge");
    // Keyed by key notation (numbers as JSON), in canonical order.
    assert.deepEqual(inputs.contents, { 1: 2, 2: 1 });
    assert.equal(inputs.__provider, SERIALIZED_PROVIDER.__provider);
  });
});

describe("dynamic provider: recorded state with outputs and the provider's records", function () {
  this.timeout(60_000);
  const bpffs = usePrivateBpffs();
  let tmp = "";
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-dynamic-check-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("reads back, diffs, updates and deletes from state holding every output (mapId, abi, frozen, …, drift)", async () => {
    const pinPath = path.join(bpffs().dir("state"), "m");
    const inputs = await checkedInputs({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, contents: [{ key: 1, value: 10 }] });
    const created = await provider.create(inputs);
    const outs: Props = { ...(created.outs as Props), ...SERIALIZED_PROVIDER };
    for (const output of ["mapId", "abi", "frozen", "entryCount", "contentsDigest"]) assert.ok(output in outs, `create reports ${output}`);
    updateU32(pinPath, 2, 20); // drift behind the provider's back
    const read = await provider.read(created.id, outs);
    assert.deepEqual((read.props as Props).drift, { added: [2] });
    const refreshed = { ...(read.props as Props), ...SERIALIZED_PROVIDER };
    assert.deepEqual(await provider.diff(created.id, refreshed, inputs), { changes: true, replaces: [], deleteBeforeReplace: false });
    const updated = await provider.update(created.id, refreshed, inputs);
    assert.equal((updated.outs as Props).mapId, outs.mapId);
    assert.deepEqual(dumpU32(pinPath), { 1: 10 });
    assert.deepEqual(await provider.diff(created.id, { ...(updated.outs as Props), ...SERIALIZED_PROVIDER }, inputs), { changes: false });
    await provider.delete(created.id, updated.outs as Props);
    assert.equal(fs.existsSync(pinPath), false);
  });

  it("a read-back whose contentsFile is gone fails naming the file, instead of turning the contents inline", async () => {
    const pinPath = path.join(bpffs().dir("gone"), "m");
    const file = path.join(tmp, "gone.jsonl");
    writeJsonLines(file, { 1: 10, 2: 20 });
    const inputs = await checkedInputs({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, contentsFile: file });
    const created = await provider.create(inputs);
    fs.rmSync(file);
    await assert.rejects(provider.read(created.id, created.outs as Props), (error: Error) => {
      assert.match(error.message, new RegExp(`contentsFile ${file}`));
      assert.match(error.message, /ENOENT/);
      return true;
    });
    fs.writeFileSync(file, "{\"key\": 1, \"value\": 10}\nnot json\n");
    await assert.rejects(provider.read(created.id, created.outs as Props), new RegExp(`contentsFile ${file} line 2: is not JSON`));
    await provider.delete(created.id, created.outs as Props);
  });

  it("merge mode with a contentsFile: an update deletes the keys the file dropped, and only those", async () => {
    const pinPath = path.join(bpffs().dir("merge"), "m");
    const file = path.join(tmp, "merge.jsonl");
    const declare = () => checkedInputs({
      pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 64, contentsPolicy: "merge", contentsFile: file,
    });
    writeJsonLines(file, { 1: 10, 2: 20, 3: 30, 4: 40 });
    const first = await declare();
    const created = await provider.create(first);
    assert.equal(typeof (created.outs as Props).contentsFileKeys, "string");
    updateU32(pinPath, 50, 500); // a BPF program's entry: nobody declared it
    writeJsonLines(file, { 1: 10, 3: 33 });
    const second = await declare();
    const updated = await provider.update(created.id, { ...(created.outs as Props), ...SERIALIZED_PROVIDER }, second);
    assert.deepEqual(dumpU32(pinPath), { 1: 10, 3: 33, 50: 500 });
    assert.equal((updated.outs as Props).mapId, (created.outs as Props).mapId);
    await provider.delete(created.id, updated.outs as Props);
  });
});

describe("packKeys / unpackKeys: the record of a key set", function () {
  it("round-trips any order and duplicates to the sorted set, for several key sizes", () => {
    assert.deepEqual(unpackKeys(packKeys([u32(3), u32(1), u32(3), u32(0)], 4), 4), [u32(0), u32(3), u32(1)].sort(Buffer.compare));
    for (const size of [1, 2, 8, 16, 20]) {
      const keys = Array.from({ length: 500 }, () => randomBytes(size));
      const unique = [...new Map(keys.map((key) => [key.toString("hex"), key])).values()].sort(Buffer.compare);
      assert.deepEqual(unpackKeys(packKeys(keys, size), size), unique, `${size}-byte keys`);
    }
    assert.deepEqual(unpackKeys(packKeys([], 4), 4), []);
    // Short keys are packed with doubles, long ones with BigInt: one format.
    const six = Array.from({ length: 300 }, () => randomBytes(6));
    const widened = six.map((key) => Buffer.concat([Buffer.alloc(2), key]));
    assert.equal(packKeys(six, 6).replace("keys1:6:", ""), packKeys(widened, 8).replace("keys1:8:", ""));
    assert.deepEqual(unpackKeys(packKeys([Buffer.alloc(4), Buffer.alloc(4, 0xff)], 4), 4), [Buffer.alloc(4), Buffer.alloc(4, 0xff)]);
  });

  it("refuses keys of the wrong size, another key size, and a corrupt record", () => {
    assert.throws(() => packKeys([Buffer.alloc(3)], 4), RangeError);
    const record = packKeys([u32(1)], 4);
    assert.throws(() => unpackKeys(record, 8), /holds 4-byte keys, not 8-byte keys/);
    assert.throws(() => unpackKeys("keys1:4:!!!", 4), /not a key set record/);
    assert.throws(() => unpackKeys("keys1:4:AAAA", 4), /does not inflate|corrupt|truncated/);
    // A delta that runs past the key size is corrupt, not wrapped around.
    assert.throws(() => unpackKeys(packKeys([Buffer.alloc(8, 0xff)], 8).replace("keys1:8:", "keys1:4:"), 4), /corrupt/);
  });

  it("stays compact at 100k keys (sizes logged)", () => {
    const sequential = Array.from({ length: 100_000 }, (_, index) => u32(index));
    let seed = 12345;
    const random = Array.from({ length: 100_000 }, () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return u32(seed);
    });
    const sizes = { sequential: packKeys(sequential, 4).length, random: packKeys(random, 4).length };
    console.log(`      packKeys at 100k u32 keys: sequential ${sizes.sequential} B, pseudo-random ${sizes.random} B (raw keys: 400000 B)`);
    assert.ok(sizes.sequential < 4096, `sequential: ${sizes.sequential} B`);
    // 100k random u32 keys hold ~17 bits each; the record's text takes about 25 (base64 of the deflated deltas).
    assert.ok(sizes.random < 100_000 * 3.5, `random: ${sizes.random} B`);
    assert.equal(unpackKeys(packKeys(random, 4), 4).length, new Set(random.map((key) => key.toString("hex"))).size);
  });
});
