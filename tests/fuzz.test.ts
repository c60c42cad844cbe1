// Hostile input: property-based tests (fast-check) over spec validation and
// every codec. Each generated input either validates or fails with
// SpecError/CodecError whose every failure names a path; nothing else is
// thrown, nothing hangs, and no bpf(2) command runs before validation passes.
// The total number of generated cases is printed at the end of the suite.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";

import * as native from "../native/index";
import { CodecError, SCALAR_CODECS, decodePerCpu, encodePerCpu, fixedSize, makeCodec, type CodecDecl } from "../provider/core/codecs";
import { provider } from "../provider/dynamic/index";
import { MAP_FLAG_NAMES, MAP_TYPE_NAMES } from "../provider/core/maptypes";
import { SpecError, checkSpec as checkOnHost } from "../provider/core/spec";

// Inputs alone: generated pin paths are not inspected on this host.
const checkSpec = (input: unknown) => checkOnHost(input, { pinLocation: false });
import { usePrivateBpffs } from "./fixtures/bpffs";

const RUNS = Number(process.env.PULUMI_EBPF_FUZZ_RUNS ?? 2000);
// A single validation must never take long, whatever the input.
const PER_CASE_MS = 2000;
let totalCases = 0;

function checkProperty<T>(arb: fc.Arbitrary<T>, predicate: (value: T) => void, numRuns = RUNS): void {
  let runs = 0;
  fc.assert(fc.property(arb, (value) => {
    runs++;
    const started = Date.now();
    predicate(value);
    const took = Date.now() - started;
    if (took > PER_CASE_MS) throw new Error(`one case took ${took} ms`);
  }), { numRuns, seed: process.env.PULUMI_EBPF_FUZZ_SEED ? Number(process.env.PULUMI_EBPF_FUZZ_SEED) : undefined });
  totalCases += runs;
}

/** Asserts a named failure: SpecError/CodecError with every failure naming a path and a rule. */
function assertNamed(error: unknown, allowRootPath = false): void {
  if (!(error instanceof SpecError) && !(error instanceof CodecError)) {
    throw new Error(`expected SpecError or CodecError, got ${error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : String(error)}`);
  }
  assert.ok(error.failures.length > 0, "at least one failure");
  for (const failure of error.failures) {
    assert.equal(typeof failure.rule, "string");
    assert.ok(failure.rule.length > 0, "a failure names its rule");
    if (!allowRootPath) assert.ok(failure.path.length > 0, `a failure names its path: ${JSON.stringify(failure)}`);
  }
}

// ---- generators

const weirdNumber = fc.oneof(
  fc.integer({ min: -10, max: 70000 }),
  fc.constantFrom(0, 1, 4, 8, 16, 0xffffffff, 0x100000000, -1, 2 ** 53, Number.MAX_SAFE_INTEGER, 1.5, NaN, Infinity, -0),
  fc.double(),
);
const weird = fc.oneof(weirdNumber, fc.string(), fc.constant(null), fc.boolean(), fc.anything({ maxDepth: 2 }));
const scalarCodec = fc.constantFrom(...SCALAR_CODECS);
const codecDecl: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  decl: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalarCodec,
    scalarCodec,
    fc.record({ struct: fc.array(tie("field"), { minLength: 0, maxLength: 4 }) }),
    weird,
  ),
  field: fc.record({
    name: fc.oneof(fc.constantFrom("a", "b", "c", "hex", "x_1"), fc.string({ maxLength: 4 })),
    type: tie("decl"),
    offset: fc.option(fc.integer({ min: -1, max: 40 }), { nil: undefined }),
    size: fc.option(fc.integer({ min: -1, max: 40 }), { nil: undefined }),
  }, { requiredKeys: ["name", "type"] }),
})).decl;

const valueFor = fc.oneof(
  fc.integer(), fc.bigInt().map(String), fc.ipV4(), fc.ipV6(), fc.ipV4().map((ip) => `${ip}/${ip.length % 33}`),
  fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b).toString("hex")),
  fc.uint8Array({ maxLength: 24 }).map((b) => ({ hex: Buffer.from(b).toString("hex") })),
  fc.string({ maxLength: 24 }), fc.constantFrom("aa:bb:cc:dd:ee:ff", "0x10", "-1", "18446744073709551615"),
  fc.dictionary(fc.constantFrom("a", "b", "c"), fc.oneof(fc.integer(), fc.string({ maxLength: 6 }))),
  weird,
);

const entry = fc.record({
  key: valueFor,
  value: valueFor,
  perCpuValues: fc.array(valueFor, { maxLength: 3 }),
  extra: weird,
}, { requiredKeys: [] });

/** A spec that is often close to valid: each property present or absent, plausible or hostile. */
function specArb(pinPath: fc.Arbitrary<string>): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(nearValid(pinPath), hostile(pinPath));
}

/** Mostly valid keyed maps with typed contents, whose entries may not fit. */
function nearValid(pinPath: fc.Arbitrary<string>): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({
    pinPath,
    mapType: fc.constantFrom("hash", "array", "lru_hash", "percpu_hash", "lpm_trie"),
    keyType: fc.constantFrom("u32", "ipv4", "lpm_ipv4", "i32", "u32be"),
    valueType: scalarCodec,
    valueSize: fc.option(fc.constantFrom(1, 4, 8, 16, 20), { nil: undefined }),
    maxEntries: fc.integer({ min: 1, max: 64 }),
    flags: fc.option(fc.constantFrom(["no_prealloc"], [], ["rdonly_prog"]), { nil: undefined }),
    contents: fc.array(fc.record({ key: fc.oneof(fc.integer({ min: 0, max: 70 }), fc.ipV4(), valueFor), value: valueFor }), { maxLength: 4 }),
    contentsPolicy: fc.constantFrom("exact", "merge"),
  }, { requiredKeys: ["pinPath", "mapType", "keyType", "valueType", "maxEntries", "contents"] });
}

/** Every property present or absent, plausible or hostile. */
function hostile(pinPath: fc.Arbitrary<string>): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({
    pinPath: fc.oneof(pinPath, pinPath, fc.string(), fc.constantFrom("relative/pin", "/sys/fs/bpf/../etc/x", "/a//b", "/sys/fs/bpf/x.y", "")),
    mapType: fc.oneof(fc.constantFrom(...MAP_TYPE_NAMES), fc.constantFrom(...MAP_TYPE_NAMES), weird),
    keySize: fc.oneof(fc.constantFrom(0, 1, 2, 4, 8, 16, 20), weirdNumber),
    valueSize: fc.oneof(fc.constantFrom(0, 1, 2, 4, 8, 16, 20), weirdNumber),
    maxEntries: fc.oneof(fc.integer({ min: 0, max: 300 }), weirdNumber),
    flags: fc.oneof(fc.array(fc.constantFrom(...MAP_FLAG_NAMES), { maxLength: 3 }), weird),
    name: fc.oneof(fc.string({ maxLength: 20 }), weird),
    keyType: codecDecl,
    valueType: codecDecl,
    contents: fc.oneof(fc.array(entry, { maxLength: 5 }), weird),
    contentsPolicy: fc.oneof(fc.constantFrom("exact", "merge"), weird),
    freeze: fc.oneof(fc.boolean(), weird),
    innerMap: fc.oneof(fc.record({ mapType: fc.constantFrom(...MAP_TYPE_NAMES), keySize: weirdNumber, valueSize: weirdNumber, maxEntries: weirdNumber }, { requiredKeys: ["mapType"] }), weird),
    ifExists: fc.oneof(fc.constantFrom("fail", "adopt", "replace"), weird),
    permissions: fc.oneof(fc.record({ mode: fc.oneof(fc.integer({ min: -1, max: 0o10000 }), fc.string({ maxLength: 5 })), uid: weirdNumber, gid: weirdNumber }, { requiredKeys: [] }), weird),
    numaNode: weirdNumber,
    mapExtra: fc.oneof(weirdNumber, fc.string({ maxLength: 8 })),
    [`unknown${""}`]: weird,
  }, { requiredKeys: [] });
}

/** Calls every bpf-facing entry point of the binding through counters. */
function countSyscalls(): { count(): number; restore(): void } {
  let calls = 0;
  const mod = native as unknown as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  for (const name of ["createMap", "openPinnedMap", "openMapById", "nextMapId", "renameat2", "mapInfoByFd"]) {
    const original = mod[name] as (...args: unknown[]) => unknown;
    saved.set(name, original);
    mod[name] = (...args: unknown[]) => {
      calls++;
      return original(...args);
    };
  }
  const proto = native.MapFd.prototype as unknown as Record<string, unknown>;
  const savedProto = new Map<string, unknown>();
  for (const name of ["pin", "update", "updateBatch", "freeze", "lookup", "delete", "deleteBatch", "lookupBatch"]) {
    const original = proto[name] as (...args: unknown[]) => unknown;
    savedProto.set(name, original);
    proto[name] = function (this: unknown, ...args: unknown[]) {
      calls++;
      return original.apply(this, args);
    };
  }
  return {
    count: () => calls,
    restore() {
      for (const [name, fn] of saved) mod[name] = fn;
      for (const [name, fn] of savedProto) proto[name] = fn;
    },
  };
}

describe("fuzz: hostile input", function () {
  this.timeout(120_000);
  const bpffs = usePrivateBpffs();

  after(function () {
    // eslint-disable-next-line no-console
    console.log(`      fuzz: ${totalCases} generated cases ran`);
  });

  it("checkSpec: any value validates or throws SpecError naming each path", function () {
    checkProperty(fc.anything(), (input) => {
      try {
        checkSpec(input);
      } catch (error) {
        // A non-object input fails as a whole: "must be an object" at the root.
        assertNamed(error, typeof input !== "object" || input === null || Array.isArray(input));
      }
    });
  });

  it("checkSpec: near-valid specs validate (and re-check to the same spec) or throw SpecError naming each path", function () {
    let valid = 0;
    checkProperty(specArb(fc.constant("/sys/fs/bpf/fuzz/pin")), (input) => {
      let spec;
      try {
        spec = checkSpec(input);
      } catch (error) {
        assertNamed(error);
        return;
      }
      valid++;
      const { keyType, valueType, ...rest } = spec;
      const again = checkSpec({ ...rest, ...(keyType !== null && { keyType }), ...(valueType !== null && { valueType }) });
      assert.deepEqual(again, spec);
    }, RUNS * 2);
    assert.ok(valid > 0, "some generated specs are valid");
  });

  it("provider check and create: no bpf(2) command and nothing pinned before validation passes", async function () {
    const dir = bpffs().dir("fuzz");
    const counter = countSyscalls();
    let refused = 0;
    try {
      // The spy must see calls before its zero means anything: one valid map,
      // created and deleted through the same provider path, is counted.
      const probe = await provider.create({ pinPath: path.join(dir, "probe"), mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 1, contents: [{ key: 1, value: 1 }] });
      const probeCalls = counter.count();
      assert.ok(probeCalls >= 3, `the spy counted the probe's create, populate and pin (${probeCalls} calls)`);
      await provider.delete(probe.id, probe.outs);
      assert.deepEqual(fs.readdirSync(dir), [], "the probe is gone");
      // Hostile specs aimed at the private bpffs; the ones that validate are skipped.
      const samples = fc.sample(specArb(fc.constant(path.join(dir, "pin"))), { numRuns: RUNS, seed: 42 });
      totalCases += samples.length;
      for (const input of samples) {
        let valid = true;
        try {
          checkSpec(input);
        } catch {
          valid = false;
        }
        if (valid) continue;
        refused++;
        const before = counter.count();
        const checked = await provider.check({}, input);
        assert.ok(checked.failures && checked.failures.length > 0, "check reports failures");
        for (const failure of checked.failures!) assert.ok(failure.property.length > 0 || failure.reason.length > 0);
        await assert.rejects(provider.create(input), (error) => {
          assertNamed(error, true);
          return true;
        });
        assert.equal(counter.count(), before, "no bpf(2) command before validation passes");
      }
    } finally {
      counter.restore();
    }
    assert.deepEqual(fs.readdirSync(dir), [], "nothing was pinned or created in the bpffs directory");
    assert.ok(refused > RUNS / 4, `most hostile specs are refused (${refused})`);
  });

  it("codecs: makeCodec builds or throws CodecError; encode gives exactly size bytes or a named CodecError", function () {
    checkProperty(fc.tuple(codecDecl, fc.integer({ min: 0, max: 40 }), valueFor), ([decl, size, value]) => {
      let codec;
      try {
        codec = makeCodec(decl as CodecDecl, size, "valueType");
      } catch (error) {
        assertNamed(error);
        for (const failure of (error as CodecError).failures) assert.ok(failure.path.startsWith("valueType"), failure.path);
        return;
      }
      assert.equal(codec.size, size);
      try {
        const bytes = codec.encode(value, "contents[0].value");
        assert.equal(bytes.length, size);
        // Canonical round trip: encode(decode(encode(x))) = encode(x).
        assert.deepEqual(codec.encode(codec.decode(bytes), "rt"), bytes);
      } catch (error) {
        assertNamed(error);
        for (const failure of (error as CodecError).failures) assert.ok(failure.path.startsWith("contents[0].value"), failure.path);
      }
    }, RUNS * 2);
  });

  it("codecs: decode never throws on any bytes of the right size, and encode(decode(b)) = b", function () {
    for (const name of SCALAR_CODECS) {
      const arb = fc.tuple(fc.integer({ min: 1, max: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }));
      checkProperty(arb, ([variable, raw]) => {
        const size = fixedSize(name) ?? variable;
        const codec = makeCodec(name, size, "k");
        const bytes = Buffer.from(raw.subarray(0, size));
        const decoded = codec.decode(bytes);
        assert.deepEqual(codec.encode(decoded, "k"), bytes, `${name}: ${JSON.stringify(decoded)}`);
        assert.equal(codec.compare(bytes, bytes), 0);
      }, Math.ceil(RUNS / 4));
    }
  });

  it("codecs: struct decode/encode round-trips any bytes, including non-zero padding", function () {
    const decl: CodecDecl = { struct: [{ name: "a", type: "u8" }, { name: "b", type: "u32" }, { name: "c", type: "ipv4" }, { name: "d", type: "string", size: 3 }] };
    const codec = makeCodec(decl, 16, "v");
    checkProperty(fc.uint8Array({ minLength: 16, maxLength: 16 }), (raw) => {
      const bytes = Buffer.from(raw);
      assert.deepEqual(codec.encode(codec.decode(bytes), "v"), bytes);
    });
  });

  it("per-CPU values: encodePerCpu throws only CodecError naming the path; decodePerCpu round-trips", function () {
    const codec = makeCodec("u32", 4, "v");
    checkProperty(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.oneof(fc.record({ value: valueFor }), fc.record({ perCpuValues: fc.array(valueFor, { maxLength: 9 }) }))), ([cpus, input]) => {
      try {
        const bytes = encodePerCpu(codec, input as never, cpus, "contents[3]");
        assert.equal(bytes.length, 8 * cpus);
        const back = decodePerCpu(codec, bytes, cpus);
        assert.deepEqual(encodePerCpu(codec, back as never, cpus, "rt"), bytes);
      } catch (error) {
        assertNamed(error);
        for (const failure of (error as CodecError).failures) assert.ok(failure.path.startsWith("contents[3]"), failure.path);
      }
    });
  });
});
