// Hostile and huge inputs to check: every case finishes with a bounded,
// named failure. Assertions are on the work done (the failures reported and
// their size), never on time. No kernel needed.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { CodecError, makeCodec, type CodecDecl } from "../provider/core/codecs";
import { SpecError, canonicalContents, checkSpec as checkOnHost } from "../provider/core/spec";

const P = "/sys/fs/bpf/test/bounds";
// Inputs alone: the pin path is not inspected on this host.
const checkSpec = (input: unknown) => checkOnHost(input, { pinLocation: false });

// The SpecError of checking `input`; fails the test if check passes or throws anything else.
function specError(input: Record<string, unknown>): SpecError {
  try {
    checkSpec({ pinPath: P, ...input });
  } catch (error) {
    assert.ok(error instanceof SpecError, `expected SpecError, got ${error instanceof Error ? `${error.name}: ${error.message.slice(0, 300)}` : String(error)}`);
    return error;
  }
  assert.fail("check passed");
}

// Asserts the failure list is capped: 100 failures, then "… and N more failures".
function assertCapped(error: SpecError, total: number, firstPath: RegExp): void {
  assert.equal(error.failures.length, 101, `${error.failures.length} failures`);
  assert.match(error.failures[0]!.path, firstPath);
  const last = error.failures[100]!;
  assert.equal(last.rule, `… and ${total - 100} more failures`);
  assert.ok(error.message.length < 100 * 600, `message of ${error.message.length} characters`);
}

function nested(depth: number): CodecDecl {
  let decl: CodecDecl = "u8";
  for (let level = 0; level < depth; level++) decl = { struct: [{ name: "a", type: decl, size: 1 }] };
  return decl;
}

describe("check bounds", function () {
  this.timeout(120_000);
  let tmp = "";
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-check-bounds-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe("D: unknown properties", () => {
    it("name the closest known property", () => {
      const error = specError({ mapType: "queue", valueSize: 4, maxEntries: 1, contentPolicy: "merge", keytype: "u32" });
      assert.deepEqual(error.message.split("\n"), [
        "contentPolicy: unknown property; did you mean contentsPolicy?",
        "keytype: unknown property; did you mean keyType?",
      ]);
    });
    it("100,000 unknown properties: suggestions for those listed, the rest counted", () => {
      const input: Record<string, unknown> = { mapType: "queue", valueSize: 4, maxEntries: 1 };
      for (let index = 0; index < 100_000; index++) input[`contentPolicy${index}`] = 1;
      const error = specError(input);
      assertCapped(error, 100_000, /^contentPolicy0$/);
      assert.equal(error.failures[0]!.rule, "unknown property; did you mean contentsPolicy?");
    });
    it("list the known ones when none is close", () => {
      assert.match(specError({ mapType: "queue", valueSize: 4, maxEntries: 1, bogus: 1 }).message, /^bogus: unknown property \(known: pinPath, mapType/);
    });
  });

  describe("E: hostile contents files", () => {
    const base = { mapType: "hash", keyType: "u32", valueSize: 8, valueType: { struct: [{ name: "s", type: "string", size: 8 }] }, maxEntries: 8 };

    it("refuses a FIFO without blocking on it, even with a writer behind it", async () => {
      const fifo = path.join(tmp, "fifo.jsonl");
      execFileSync("mkfifo", [fifo]);
      // A writer that would hand a reader one valid line: reading a FIFO is still refused.
      const writer = spawn("sh", ["-c", `printf '{"key":1,"value":{"s":"a"}}\\n' > ${JSON.stringify(fifo)}`], { stdio: "ignore" });
      try {
        const error = specError({ ...base, contentsFile: fifo });
        assert.deepEqual(error.message.split("\n"), [`contentsFile: ${fifo} is a FIFO; a contents file must be a regular file`]);
      } finally {
        writer.kill();
      }
    });

    it("refuses a character device (/dev/zero) without reading it", () => {
      const error = specError({ ...base, contentsFile: "/dev/zero" });
      assert.deepEqual(error.message.split("\n"), ["contentsFile: /dev/zero is a character device; a contents file must be a regular file"]);
    });

    it("refuses a file beyond 256 MiB, naming the bound", () => {
      const big = path.join(tmp, "big.jsonl");
      fs.writeFileSync(big, "");
      fs.truncateSync(big, 256 * 1024 * 1024 + 1); // sparse: no disk used
      const error = specError({ ...base, contentsFile: big });
      assert.deepEqual(error.message.split("\n"), [`contentsFile: ${big} has 268435457 bytes; a contents file may have at most 268435456 (256 MiB)`]);
    });

    it("refuses invalid UTF-8 with its line, instead of replacing it by U+FFFD", () => {
      const file = path.join(tmp, "latin1.jsonl");
      fs.writeFileSync(file, Buffer.concat([
        Buffer.from('{"key":1,"value":{"s":"ok"}}\n{"key":2,"value":{"s":"caf'), Buffer.from([0xe9]), Buffer.from('"}}\n'),
      ]));
      const error = specError({ ...base, contentsFile: file });
      assert.deepEqual(error.message.split("\n"), [`contentsFile ${file} line 2: is not valid UTF-8`]);
    });
  });

  describe("F: linear checks, sizes bounded by the kernel", () => {
    it("20,000 entries without a value: one failure each, counted past 100", () => {
      const contents = Array.from({ length: 20_000 }, (_, key) => ({ key }));
      const error = specError({ mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 20_000, contents });
      assertCapped(error, 20_000, /^contents\[0\]\.value$/);
    });

    it("2,000,000 empty lines in a contents file: two failures each, counted", () => {
      const file = path.join(tmp, "empty.jsonl");
      fs.writeFileSync(file, "{}\n".repeat(2_000_000));
      const error = specError({ mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 1000, contentsFile: file });
      assertCapped(error, 4_000_001, new RegExp(`^contentsFile ${file} line 1\\.key$`));
      assert.equal(error.failures[100]!.path, "contentsFile");
    });

    it("a struct of 100,000 fields all at offset 0: each overlap reported once", () => {
      const struct = Array.from({ length: 100_000 }, (_, index) => ({ name: `f${index}`, type: "u8", offset: 0 }));
      const error = specError({ mapType: "hash", keySize: 4, valueSize: 100_000, maxEntries: 1, valueType: { struct } });
      assertCapped(error, 99_999, /^valueType\.struct\[1\]$/);
      assert.equal(error.failures[0]!.rule, "field f1 (offset 0, 1 bytes) overlaps field f0 (offset 0, 1 bytes)");
    });

    it("a struct of 100,000 fields laid out in sequence checks and encodes", () => {
      const struct = Array.from({ length: 100_000 }, (_, index) => ({ name: `f${index}`, type: "u8" }));
      const spec = checkSpec({ pinPath: P, mapType: "hash", keyType: "u32", valueSize: 100_000, maxEntries: 1, valueType: { struct }, contents: [{ key: 1, value: { f99999: 7 } }] });
      assert.equal(spec.entries.length, 1);
      assert.equal((spec.entries[0]!.value as Buffer)[99_999], 7);
    });

    it("an array value of 4294967295 bytes is refused before any value is encoded", () => {
      const error = specError({ mapType: "array", valueSize: 4294967295, maxEntries: 1, valueType: "string", contents: [{ key: "00000000", value: "x" }] });
      assert.deepEqual(error.message.split("\n"), ["valueSize: array needs value size 1..2147483647, not 4294967295"]);
    });

    it("a value size beyond the hash family's bound is not encoded either", () => {
      const error = specError({ mapType: "hash", keyType: "u32", valueSize: 4294967295, maxEntries: 1, valueType: "string", contents: [{ key: 1, value: "x" }] });
      assert.deepEqual(error.message.split("\n"), ["valueSize: hash needs keySize + valueSize ≤ 4194255, not 4294967299"]);
    });

    it("a hash key size beyond the bound is refused without its value size, before a codec is built", () => {
      const error = specError({ mapType: "hash", keySize: 4294967295, maxEntries: 1, keyType: { struct: [{ name: "a", type: "u64" }] } });
      assert.deepEqual(error.message.split("\n"), [
        "valueSize: is required for hash (≥ 1)",
        "keySize: hash needs keySize ≤ 4194254 (keySize + valueSize ≤ 4194255), not 4294967295",
      ]);
    });
  });

  describe("G: bounded failures and messages", () => {
    it("quotes 64 characters of a 20 MB value and says how long it was", () => {
      const error = specError({ mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 1, contents: [{ key: 1, value: "9".repeat(20_000_000) }] });
      assert.deepEqual(error.message.split("\n"), [`contents[0].value: "${"9".repeat(64)}"… (20000000 bytes) does not fit u32 (0..4294967295)`]);
    });

    it("a million duplicate keys: 100 failures and a count", () => {
      const contents = Array.from({ length: 1_000_000 }, () => ({ key: 1, value: 1 }));
      const error = specError({ mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 1 << 20, contents });
      assertCapped(error, 999_999, /^contents\[1\]\.key$/);
      assert.equal(error.failures[0]!.rule, "duplicates contents[0].key (both are 01000000)");
    });

    it("a 20 MB unknown property name is cut", () => {
      const error = specError({ mapType: "queue", valueSize: 4, maxEntries: 1, ["x".repeat(20_000_000)]: 1 });
      assert.equal(error.failures.length, 1);
      assert.ok(error.message.length < 2000, `message of ${error.message.length} characters`);
      assert.match(error.failures[0]!.path, /… \(20000000 characters\)$/);
    });
  });

  describe("H: deep nesting", () => {
    it("a struct nested 600 deep is a failure naming the path, not a RangeError", () => {
      const error = specError({ mapType: "hash", keySize: 4, valueSize: 1, maxEntries: 1, valueType: nested(600) });
      assert.equal(error.failures.length, 1);
      assert.match(error.failures[0]!.path, /^valueType(\.struct\[0\]\.type){32}/);
      assert.equal(error.failures[0]!.rule, "structs nest deeper than 32 levels");
    });
    it("makeCodec refuses it with a CodecError", () => {
      assert.throws(() => makeCodec(nested(5000), 1, "keyType"), (error: unknown) => {
        assert.ok(error instanceof CodecError, String(error));
        assert.match(error.message, /^keyType\.struct\[0\]\.type.*: structs nest deeper than 32 levels$/);
        return true;
      });
    });
    it("32 levels still check", () => {
      const spec = checkSpec({ pinPath: P, mapType: "hash", keyType: "u32", valueSize: 1, maxEntries: 1, valueType: nested(32), contents: [{ key: 1, value: { hex: "05" } }] });
      assert.equal(spec.entries.length, 1);
    });
  });

  describe("I: field names that are Object.prototype's", () => {
    const valueType = { struct: [{ name: "__proto__", type: "u8" }, { name: "constructor", type: "u8" }, { name: "valueOf", type: "u8" }] };
    it("encode as fields: missing ones are zero, given ones are written", () => {
      const spec = checkSpec({
        pinPath: P, mapType: "hash", keyType: "u32", valueSize: 3, maxEntries: 4, valueType,
        contents: [{ key: 1, value: {} }, { key: 2, value: JSON.parse('{"__proto__": 1, "constructor": 2, "valueOf": 3}') }],
      });
      assert.deepEqual(spec.entries.map((entry) => (entry.value as Buffer).toString("hex")), ["000000", "010203"]);
    });
    it("read back with every field, __proto__ included", () => {
      const spec = checkSpec({ pinPath: P, mapType: "hash", keyType: "u32", valueSize: 3, maxEntries: 4, valueType, contents: [{ key: 1, value: { constructor: 2 } }] });
      const [entry] = canonicalContents(spec);
      assert.equal(JSON.stringify(entry), '{"key":1,"value":{"__proto__":0,"constructor":2,"valueOf":0}}');
    });
    it("are no codec names", () => {
      assert.throws(() => makeCodec("constructor" as CodecDecl, 4, "keyType"), /^CodecError: keyType: unknown codec "constructor"$/);
      assert.deepEqual(specError({ mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1, keyType: "toString" }).message.split(";")[0], 'keyType: "toString" is not a codec');
    });
  });
});
