// Packed tables (provider/core/table.ts, packed.ts, livetable.ts): the
// representation large contents travel in. Pinned down here: the table
// functions agree with the straightforward entry-by-entry versions they
// replace (digest, sort, compare), a contents file's fast line path and the
// full notation give the same bytes and the same messages, the parse cache
// never serves a changed file, and a read-back of a real map names drifted
// keys in the key codec's order with their counts, checked against bpftool.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { canonicalContents, checkSpec as checkSpecOnHost, createPinnedMap, declaredDigest, observePinnedMap, SpecError } from "../provider/core";
import { contentsDigest } from "../provider/core/reconcile";
import { compareTables, smallest, sortTable, tableDigest, TableBuilder } from "../provider/core/table";
import { dumpU32, updateU32, deleteU32 } from "./fixtures/bpftool";
import { usePrivateBpffs } from "./fixtures/bpffs";

// A fixed pseudo-random sequence, so a failure reproduces.
function randomBytes(seed: { value: number }, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let index = 0; index < length; index++) {
    seed.value = (Math.imul(seed.value, 1103515245) + 12345) >>> 0;
    out[index] = seed.value >>> 24;
  }
  return out;
}

const checkSpec = (input: Record<string, unknown>) => checkSpecOnHost(input, { pinLocation: false });

describe("packed tables", () => {
  describe("the table functions agree with the entry-by-entry ones", () => {
    for (const [keySize, valueBytes] of [[1, 1], [4, 8], [3, 5], [16, 4], [6, 40], [37, 3]] as const) {
      it(`sorts, deduplicates and digests ${keySize}-byte keys and ${valueBytes}-byte values like Buffer.compare and contentsDigest`, () => {
        const seed = { value: keySize * 1000 + valueBytes };
        const builder = new TableBuilder(keySize, valueBytes, 4);
        const entries: { key: Buffer; value: Buffer; origin: number }[] = [];
        for (let index = 0; index < 3000; index++) {
          // Small keys repeat (duplicates); the first occurrence must win.
          const key = keySize === 1 ? Buffer.from([index % 200]) : randomBytes(seed, keySize);
          const value = randomBytes(seed, valueBytes);
          builder.append(key, value, index + 10);
          entries.push({ key, value, origin: index + 10 });
        }
        const { table, duplicates, origins } = sortTable(keySize, valueBytes, builder.count, builder.keys, builder.values, builder.origins);
        const firstByKey = new Map<string, (typeof entries)[number]>();
        const expectedDuplicates: [number, number][] = [];
        for (const entry of entries) {
          const first = firstByKey.get(entry.key.toString("hex"));
          if (first) expectedDuplicates.push([first.origin, entry.origin]);
          else firstByKey.set(entry.key.toString("hex"), entry);
        }
        const expected = [...firstByKey.values()].sort((a, b) => Buffer.compare(a.key, b.key));
        assert.equal(table.count, expected.length);
        expected.forEach((entry, index) => {
          assert.ok(table.keyAt(index).equals(entry.key), `key ${index}`);
          assert.ok(table.valueAt(index).equals(entry.value), `value ${index}`);
          assert.equal(origins[index], entry.origin);
        });
        assert.deepEqual(duplicates.map(([first, second]) => [first, second]).sort((a, b) => a[1]! - b[1]!), expectedDuplicates);
        assert.equal(tableDigest(table), contentsDigest(expected.map(({ key, value }) => ({ key, value }))));
      });
    }

    it("compares two tables key by key like a Map-based comparison", () => {
      // from: keys 0..2999; to: keys 1000..3999, every 7th shared key with another value.
      const make = (first: number, last: number, bump: (key: number) => number) => {
        const builder = new TableBuilder(2, 1);
        for (let key = last; key >= first; key--) builder.append(Buffer.from([key >> 8, key & 255]), Buffer.from([bump(key)]), key);
        return sortTable(2, 1, builder.count, builder.keys, builder.values).table;
      };
      const from = make(0, 2999, () => 0);
      const to = make(1000, 3999, (key) => (key % 7 === 0 ? 1 : 0));
      const difference = compareTables(from, to);
      const map = (table: typeof from) => new Map(Array.from({ length: table.count }, (_, index) => [table.keyAt(index).toString("hex"), table.valueAt(index).toString("hex")]));
      const [a, b] = [map(from), map(to)];
      const hex = (table: typeof from, indices: Uint32Array) => [...indices].map((index) => table.keyAt(index).toString("hex"));
      assert.deepEqual(hex(to, difference.added), [...b.keys()].filter((key) => !a.has(key)));
      assert.deepEqual(hex(from, difference.removed), [...a.keys()].filter((key) => !b.has(key)));
      assert.deepEqual(hex(to, difference.changed), [...b.keys()].filter((key) => a.has(key) && a.get(key) !== b.get(key)));
      assert.ok(difference.added.length > 0 && difference.removed.length > 0 && difference.changed.length > 0, "the test data exercises every kind");
    });

    it("picks the smallest indices by a comparison without sorting them all", () => {
      const values = Uint32Array.from({ length: 5000 }, (_, index) => (index * 7919) % 5000);
      const compare = (a: number, b: number) => (a % 97) - (b % 97) || a - b;
      assert.deepEqual(smallest(values, 20, compare), [...values].sort(compare).slice(0, 20));
      assert.deepEqual(smallest(values.subarray(0, 5), 20, compare), [...values.subarray(0, 5)].sort(compare));
    });
  });

  describe("contents files: the fast line path and the full notation agree", () => {
    let tmp = "";
    before(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-packed-"));
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const base = { pinPath: "/sys/fs/bpf/x/m", mapType: "hash", keyType: "u32", valueType: "i64", maxEntries: 64 };

    it("gives the same table as the same entries declared inline, whatever the line shape", () => {
      const lines = [
        `{"key":1,"value":2}`, // fast path
        `{ "key" : 3 ,\t"value" : -4 }`, // fast path, with whitespace and a negative value
        `{"value":6,"key":5}`, // another member order: full path
        `{"key":"7","value":"-8"}`, // strings: the codec's path
        `{"key":9,"value":{"hex":"0a00000000000000"}}`, // the raw escape
        `{"key":10,"value":1e1}`, // an exponent: full path, still the integer 10
        `{"key":11,"value":"9223372036854775807"}`, // beyond 2^53, as a string
        `{"key":12,"value":12}\r`, // a CRLF line end
        `   `, // blank
        `{"key":4294967295,"value":-9007199254740991}`, // the largest u32, the smallest safe integer
      ];
      const file = path.join(tmp, "shapes.jsonl");
      fs.writeFileSync(file, `${lines.join("\n")}\n\n`);
      const fromFile = checkSpec({ ...base, contentsFile: file });
      const inline = checkSpec({ ...base, contents: lines.filter((line) => line.trim()).map((line) => JSON.parse(line) as Record<string, unknown>) });
      assert.equal(fromFile.table!.count, 9);
      assert.ok(fromFile.table!.keys.equals(inline.table!.keys));
      assert.ok(fromFile.table!.values.equals(inline.table!.values));
      assert.equal(declaredDigest(fromFile), declaredDigest(inline));
      assert.deepEqual(canonicalContents(fromFile).slice(0, 3), [{ key: 1, value: "2" }, { key: 3, value: "-4" }, { key: 5, value: "6" }]);
    });

    it("spreads a per-CPU value written on the fast path to every CPU, as inline does", () => {
      const file = path.join(tmp, "percpu.jsonl");
      fs.writeFileSync(file, `{"key":1,"value":5}\n{"key":2,"perCpuValues":[1,2]}\n`);
      const spec = { ...base, mapType: "percpu_hash", valueType: "u32" };
      const host = { cpus: () => 2, pinLocation: false as const };
      const fromFile = checkSpecOnHost({ ...spec, contentsFile: file }, host);
      const inline = checkSpecOnHost({ ...spec, contents: [{ key: 1, value: 5 }, { key: 2, perCpuValues: [1, 2] }] }, host);
      assert.equal(fromFile.table!.valueBytes, 16);
      assert.ok(fromFile.table!.values.equals(inline.table!.values));
      assert.equal(fromFile.table!.values.toString("hex"), "0500000000000000050000000000000001000000000000000200000000000000");
    });

    it("names the file and line of every bad entry, fast-path lines included", () => {
      const file = path.join(tmp, "bad.jsonl");
      fs.writeFileSync(file, [
        `{"key":1,"value":1}`,
        `{"key":-1,"value":1}`, // a negative key for u32
        `{"key":2,"value":9007199254740993}`, // 16 digits: a double has lost precision
        `{"key":01,"value":1}`, // a leading zero is not JSON
        `{"key":1,"value":2}`, // a duplicate of line 1
        `{"key":3,"value":1,"extra":true}`, // a member the notation does not have
        `{"key":4,"value":1.5}`,
      ].join("\n"));
      assert.throws(() => checkSpec({ ...base, contentsFile: file }), (error: unknown) => {
        assert.ok(error instanceof SpecError);
        const at = (line: number) => `contentsFile ${file} line ${line}`;
        const lines = error.failures.map((failure) => `${failure.path}: ${failure.rule}`);
        assert.equal(lines.length, 6, lines.join("\n"));
        assert.equal(lines[0], `${at(2)}.key: -1 does not fit u32 (0..4294967295)`);
        assert.equal(lines[1], `${at(3)}.value: 9007199254740992 is beyond 2^53 and has lost precision; give it as a decimal string`);
        assert.equal(lines[2], `${at(4)}: is not JSON`);
        assert.ok(lines[3]!.startsWith(`${at(6)}: must be an object { key?, value?, perCpuValues? }: `), lines[3]);
        assert.equal(lines[4], `${at(7)}.value: 1.5 is not an integer`);
        assert.equal(lines[5], `${at(5)}.key: duplicates ${at(1)}.key (both are 01000000)`);
        return true;
      });
    });

    it("refuses an array index beyond maxEntries on the fast path with the rule's message", () => {
      const file = path.join(tmp, "array.jsonl");
      fs.writeFileSync(file, `{"key":0,"value":1}\n{"key":4,"value":1}\n`);
      assert.throws(() => checkSpec({ pinPath: "/sys/fs/bpf/x/a", mapType: "array", keyType: "u32", valueType: "u32", maxEntries: 4, contentsFile: file }),
        new RegExp(`contentsFile ${file} line 2\\.key: index 4 is beyond the array \\(maxEntries 4\\)`));
    });

    it("reads an array index from the key's bytes on the fast path too (a u32be key 1 is index 16777216)", () => {
      const file = path.join(tmp, "array-be.jsonl");
      fs.writeFileSync(file, `{"key":1,"value":1}\n`);
      assert.throws(() => checkSpec({ pinPath: "/sys/fs/bpf/x/a", mapType: "array", keyType: "u32be", valueType: "u32", maxEntries: 16, contentsFile: file }),
        new RegExp(`contentsFile ${file} line 1\\.key: index 16777216 is beyond the array \\(maxEntries 16\\)`));
    });

    it("takes a byte order mark at the start of the file only, as a whole-file decode would", () => {
      const file = path.join(tmp, "bom.jsonl");
      fs.writeFileSync(file, `\ufeff{"key":1,"value":1}\n\ufeff{"key":2,"value":2}\n`);
      assert.throws(() => checkSpec({ ...base, contentsFile: file }), (error: unknown) => {
        assert.ok(error instanceof SpecError);
        assert.deepEqual(error.failures.map((failure) => `${failure.path}: ${failure.rule}`), [`contentsFile ${file} line 2: is not JSON`]);
        return true;
      });
    });

    it("reports many duplicates of one key with the key and both lines, capped, each found once", () => {
      const file = path.join(tmp, "same.jsonl");
      const count = 50_000;
      fs.writeFileSync(file, `${Array.from({ length: count }, () => `{"key":7,"value":1}`).join("\n")}\n`);
      assert.throws(() => checkSpec({ ...base, maxEntries: count, contentsFile: file }), (error: unknown) => {
        assert.ok(error instanceof SpecError);
        assert.equal(error.listed.length, 100);
        assert.equal(error.failures[0]!.path, `contentsFile ${file} line 2.key`);
        assert.equal(error.failures[0]!.rule, `duplicates contentsFile ${file} line 1.key (both are 07000000)`);
        assert.equal(error.omitted, count - 1 - 100);
        return true;
      });
    });

    it("reuses the parse of an unchanged file, and never serves a changed one (same size and mtime)", () => {
      const file = path.join(tmp, "cached.jsonl");
      fs.writeFileSync(file, `{"key":1,"value":1}\n{"key":2,"value":2}\n`);
      const first = checkSpec({ ...base, contentsFile: file });
      const again = checkSpec({ ...base, contentsFile: file });
      assert.equal(again.table, first.table, "an unchanged file is not parsed again");
      // Another codec reads the same bytes differently: not the same cache entry.
      const otherCodec = checkSpec({ ...base, valueType: "u64", contentsFile: file });
      assert.notEqual(otherCodec.table, first.table);
      // Same size, mtime put back: the content digest tells them apart.
      const { atime, mtime } = fs.statSync(file);
      fs.writeFileSync(file, `{"key":1,"value":7}\n{"key":2,"value":2}\n`);
      fs.utimesSync(file, atime, mtime);
      const changed = checkSpec({ ...base, contentsFile: file });
      assert.deepEqual(canonicalContents(changed), [{ key: 1, value: "7" }, { key: 2, value: "2" }]);
    });
  });

  describe("read-back of a real map", () => {
    const bpffs = usePrivateBpffs();

    it("agrees with bpftool, digests like the entry path, and names drifted keys in codec order with counts", () => {
      const dir = bpffs().dir("drift");
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-packed-")), "drift.jsonl");
      const count = 10000;
      fs.writeFileSync(file, Array.from({ length: count }, (_, key) => `{"key":${key},"value":${key * 3}}`).join("\n"));
      try {
        const pinPath = path.join(dir, "table");
        const spec = checkSpecOnHost({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: count, contentsFile: file });
        const created = createPinnedMap(spec);
        assert.equal(created.entryCount, count);
        const seen = dumpU32(pinPath);
        assert.equal(Object.keys(seen).length, count);
        assert.equal(seen[4321], 4321 * 3);
        const clean = observePinnedMap(spec, created.mapId);
        assert.ok(clean.status === "ok");
        assert.equal(clean.observation.contentsDigest, declaredDigest(spec));
        assert.equal(clean.observation.driftFromDeclared(20), undefined);

        // 30 of each kind behind the core's back, with bpftool; keys chosen so
        // that byte order (little-endian) and numeric order differ.
        for (let index = 0; index < 30; index++) deleteU32(pinPath, 256 * index + 1);
        for (let index = 0; index < 30; index++) updateU32(pinPath, count + 256 * index, 1);
        for (let index = 0; index < 30; index++) updateU32(pinPath, 256 * index + 2, 0);
        const drifted = observePinnedMap(spec, created.mapId);
        assert.ok(drifted.status === "ok");
        const report = drifted.observation.driftFromDeclared(20)!;
        assert.deepEqual(report.counts, { added: 30, changed: 30, removed: 30 });
        assert.deepEqual(report.drift.removed, Array.from({ length: 20 }, (_, index) => 256 * index + 1));
        assert.deepEqual(report.drift.added, Array.from({ length: 20 }, (_, index) => count + 256 * index));
        assert.deepEqual(report.drift.changed, Array.from({ length: 20 }, (_, index) => 256 * index + 2));
        // The live digest is the one the entry-by-entry path computes over bpftool's view.
        const live = Object.entries(dumpU32(pinPath)).map(([key, value]) => {
          const entry = { key: Buffer.alloc(4), value: Buffer.alloc(4) };
          entry.key.writeUInt32LE(Number(key));
          entry.value.writeUInt32LE(value);
          return entry;
        });
        assert.equal(drifted.observation.contentsDigest, contentsDigest(live));
        assert.equal(drifted.observation.entryCount, count);
      } finally {
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
      }
    });
  });
});
