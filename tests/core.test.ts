// The map lifecycle core (provider/) against the real kernel: every creatable
// type from its minimal spec checked by bpftool, check-time refusals matched
// to the kernel's own, delta reconciliation with a concurrent writer, atomic
// swaps under a concurrent reader, fault injection, owned-only delete,
// adoption, pin safety and the contents digest. No mocks; each suite pins
// into a private bpffs, and concurrency comes from child processes (the core
// is synchronous).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import * as native from "../native/index";
import {
  checkSpec, compareAbi, createPinnedMap, declaredDigest, deletePinnedMap, ensurePinParent, checkPinLocation,
  isEbpfError, observePinnedMap, pinnedMapId, updatePinnedMap, EbpfError, MAP_TYPES, MAP_TYPE_NAMES, SpecError,
  STAGING_INFIX, flagsToMask, type MapObservation, type MapSpec, type MapTypeName, type PinnedMapSpecInput,
} from "../provider/core/index";
import { kernelMaxCpus, possibleCpuCount } from "../provider/core/maptypes";
import { usePrivateBpffs } from "./fixtures/bpffs";
import { bpftoolJson as bpftool, mapShow as bpftoolShow } from "./fixtures/bpftool";
import { u32, u64 } from "./fixtures/bytes";

// ---------------------------------------------------------------- helpers

const NATIVE = path.join(__dirname, "..", "native");

function fdCount(): number {
  return fs.readdirSync("/proc/self/fd").length;
}


/** Every entry of a u32 → u64 hash or array as a Map (walked with get-next-key, independent of the core). */
function readU32U64(pin: string): Map<number, bigint> {
  const m = native.openPinnedMap(pin, "ro", native.plainValueBytes);
  try {
    const out = new Map<number, bigint>();
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(4);
      if (!m.nextKeyInto(prev, next)) return out;
      const value = m.lookup(next);
      if (value) out.set(next.readUInt32LE(0), value.readBigUInt64LE(0));
      prev = next;
    }
  } finally {
    m.close();
  }
}

/** Runs `fn`, which must throw; returns what it threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected an exception");
}

function assertEbpf(fn: () => unknown, kind: string): EbpfError {
  const error = thrown(fn);
  assert.ok(isEbpfError(error), `expected EbpfError ${kind}, got ${String(error)}`);
  assert.equal(error.kind, kind, error.message);
  return error;
}

function stagingLeft(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => name.includes(STAGING_INFIX));
}

interface Child {
  /** Resolves when the child printed "ready". */
  ready: Promise<void>;
  /** Resolves with the JSON the child printed last, once it exits with 0. */
  result: Promise<Record<string, number>>;
}

/**
 * Runs `script` in a child node process that has `native` (dist/native) in
 * scope. The script prints "ready" once it is running and a JSON line at the
 * end; it stops when `stopFile` exists.
 */
function runChild(script: string): Child {
  const child = spawn(process.execPath, ["-e", `const native = require(${JSON.stringify(NATIVE)});\n${script}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes("ready\n")) onReady();
  });
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const result = new Promise<Record<string, number>>((resolve, reject) => {
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`child exited with ${code}: ${err}`));
      const lines = out.trim().split("\n");
      resolve(JSON.parse(lines[lines.length - 1]!) as Record<string, number>);
    });
  });
  return { ready: Promise.race([ready, result.then(() => undefined)]), result };
}

// ---------------------------------------------------------------- suite

describe("lifecycle core", function () {
  this.timeout(60_000);
  const bpffs = usePrivateBpffs();
  const check = (input: PinnedMapSpecInput): MapSpec => checkSpec(input);

  // -------------------------------------------------------------- types
  describe("every creatable map type", () => {
    // The minimal spec of each type: what checkSpec requires, nothing more.
    const MINIMAL: Partial<Record<MapTypeName, Omit<PinnedMapSpecInput, "pinPath" | "mapType">>> = {
      hash: { keySize: 4, valueSize: 4, maxEntries: 1 },
      array: { valueSize: 4, maxEntries: 1 },
      perf_event_array: {},
      percpu_hash: { keySize: 4, valueSize: 4, maxEntries: 1 },
      percpu_array: { valueSize: 4, maxEntries: 1 },
      stack_trace: { valueSize: 8, maxEntries: 1 },
      cgroup_array: { maxEntries: 1 },
      lru_hash: { keySize: 4, valueSize: 4, maxEntries: 1 },
      lru_percpu_hash: { keySize: 4, valueSize: 4, maxEntries: 1 },
      lpm_trie: { keySize: 5, valueSize: 1, maxEntries: 1, flags: ["no_prealloc"] },
      array_of_maps: { maxEntries: 1, innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 } },
      hash_of_maps: { keySize: 4, maxEntries: 1, innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 } },
      devmap: { maxEntries: 1 },
      sockmap: { maxEntries: 1 },
      cpumap: { maxEntries: 1 },
      xskmap: { maxEntries: 1 },
      sockhash: { keySize: 1, maxEntries: 1 },
      reuseport_sockarray: { maxEntries: 1 },
      queue: { valueSize: 1, maxEntries: 1 },
      stack: { valueSize: 1, maxEntries: 1 },
      devmap_hash: { maxEntries: 1 },
      ringbuf: { maxEntries: 4096 },
      bloom_filter: { valueSize: 1, maxEntries: 1 },
      user_ringbuf: { maxEntries: 4096 },
      arena: { maxEntries: 1, flags: ["mmapable"] },
    };
    const creatable = MAP_TYPE_NAMES.filter((t) => !MAP_TYPES[t].unsupported);

    it("has a minimal spec for every type without `unsupported`", () => {
      assert.deepEqual(Object.keys(MINIMAL).sort(), [...creatable].sort());
    });

    /** Creates `input`, reads it back, and checks our read-back and bpftool agree with the spec. */
    function roundTrip(input: PinnedMapSpecInput): { spec: MapSpec; created: MapObservation } {
      const spec = check(input);
      const created = createPinnedMap(spec);
      const observed = observePinnedMap(spec, created.mapId);
      assert.equal(observed.status, "ok");
      const obs = (observed as { observation: MapObservation }).observation;
      assert.equal(obs.mapId, created.mapId);
      const live = native.openPinnedMap(spec.pinPath, "ro", native.plainValueBytes);
      try {
        assert.deepEqual(compareAbi(spec, live.info), [], `${spec.mapType} compares unequal to its own spec`);
      } finally {
        live.close();
      }
      const info = MAP_TYPES[spec.mapType];
      const show = bpftoolShow(spec.pinPath);
      // bpftool 7.1 predates arena and prints its number instead of a name.
      assert.ok(show.type === spec.mapType || show.type === info.id, `bpftool type ${show.type} for ${spec.mapType}`);
      assert.equal(show.id, obs.mapId);
      assert.equal(show.bytes_key, obs.abi.keySize);
      assert.equal(show.bytes_value, obs.abi.valueSize);
      assert.equal(show.max_entries, obs.abi.maxEntries);
      assert.equal(show.flags, flagsToMask(obs.abi.flags));
      // What we read back is what was declared, after the kernel's adjustments.
      assert.equal(obs.abi.mapType, spec.mapType);
      assert.equal(obs.abi.keySize, spec.keySize);
      assert.equal(obs.abi.valueSize, spec.valueSize);
      for (const f of spec.flags) assert.ok(obs.abi.flags.includes(f), `${f} missing from ${obs.abi.flags.join(",")}`);
      assert.equal(obs.frozen, spec.freeze);
      assert.equal(obs.contentsDigest, declaredDigest(spec));
      return { spec, created };
    }

    for (const type of Object.keys(MINIMAL) as MapTypeName[]) {
      it(`creates ${type} from its minimal spec; read-back, compareAbi and bpftool agree`, () => {
        const dir = bpffs().dir(type);
        const inner = MINIMAL[type]!;
        const { spec } = roundTrip({ pinPath: `${dir}/m`, mapType: type, ...inner });
        // Defaults filled in by checkSpec.
        assert.equal(spec.contentsPolicy, "exact");
        assert.equal(spec.ifExists, "fail");
        assert.equal(spec.freeze, false);
        assert.ok(Number.isInteger(spec.keySize) && Number.isInteger(spec.valueSize) && spec.maxEntries > 0);
        if (type === "perf_event_array") assert.equal(spec.maxEntries, possibleCpuCount());
        if (type === "devmap" || type === "devmap_hash") assert.equal(bpftoolShow(spec.pinPath).flags, 1 << 7);
        assert.deepEqual(stagingLeft(dir), []);
      });
    }

    // Specs at the edge of each rule that checkSpec accepts must be accepted
    // by the kernel too, and compare equal after its adjustments.
    const EDGES: Array<[string, Omit<PinnedMapSpecInput, "pinPath">]> = [
      ["lru_hash no_common_lru (max_entries rounded up)", { mapType: "lru_hash", keySize: 4, valueSize: 4, maxEntries: 3, flags: ["no_common_lru"] }],
      ["percpu_hash value 32768", { mapType: "percpu_hash", keySize: 4, valueSize: 32768, maxEntries: 1 }],
      ["lpm_trie key 260", { mapType: "lpm_trie", keySize: 260, valueSize: 1, maxEntries: 1, flags: ["no_prealloc"] }],
      ["cpumap max_entries NR_CPUS", { mapType: "cpumap", maxEntries: kernelMaxCpus() }],
      ["sockhash key 512 value 8", { mapType: "sockhash", keySize: 512, valueSize: 8, maxEntries: 1 }],
      ["devmap value 8", { mapType: "devmap", valueSize: 8, maxEntries: 1 }],
      ["bloom_filter 15 hashes", { mapType: "bloom_filter", valueSize: 4, maxEntries: 8, mapExtra: 15 }],
      ["hash no_prealloc zero_seed rdonly_prog numaNode 0", { mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 8, flags: ["no_prealloc", "zero_seed", "rdonly_prog"], numaNode: 0, name: "edge.hash_01" }],
      ["array mmapable frozen", { mapType: "array", valueSize: 8, maxEntries: 4, flags: ["mmapable"], freeze: true }],
      ["ringbuf 8 pages", { mapType: "ringbuf", maxEntries: 8 * 4096 }],
      ["arena with address", { mapType: "arena", maxEntries: 4, flags: ["mmapable"], mapExtra: "0x100000000" }],
    ];
    for (const [label, input] of EDGES) {
      it(`kernel accepts the edge spec ${label}`, () => {
        const dir = bpffs().dir("edge");
        roundTrip({ pinPath: `${dir}/m`, ...input } as PinnedMapSpecInput);
      });
    }
  });

  // -------------------------------------------------------------- check
  describe("refusals at check time", () => {
    // Each invalid spec: the property the failure must name, a word of the
    // rule, and the raw BPF_MAP_CREATE attributes the kernel refuses (null
    // where the rule is ours, e.g. flags that would block populating).
    const INVALID: Array<[Omit<PinnedMapSpecInput, "pinPath">, string, RegExp, native.MapCreateAttrs | null]> = [
      [{ mapType: "lru_hash", keySize: 4, valueSize: 4, maxEntries: 4, flags: ["no_prealloc"] }, "flags[0]", /ENOTSUPP|no_prealloc/,
        { mapType: 9, keySize: 4, valueSize: 4, maxEntries: 4, mapFlags: 1 }],
      [{ mapType: "array", keySize: 8, valueSize: 4, maxEntries: 4 }, "keySize", /exactly 4/,
        { mapType: 2, keySize: 8, valueSize: 4, maxEntries: 4 }],
      [{ mapType: "array", valueSize: 4, maxEntries: 4, flags: ["no_prealloc"] }, "flags[0]", /no_prealloc/,
        { mapType: 2, keySize: 4, valueSize: 4, maxEntries: 4, mapFlags: 1 }],
      [{ mapType: "lpm_trie", keySize: 8, valueSize: 4, maxEntries: 4 }, "flags", /requires no_prealloc/,
        { mapType: 11, keySize: 8, valueSize: 4, maxEntries: 4 }],
      [{ mapType: "lpm_trie", keySize: 4, valueSize: 4, maxEntries: 4, flags: ["no_prealloc"] }, "keySize", /5\.\.260/,
        { mapType: 11, keySize: 4, valueSize: 4, maxEntries: 4, mapFlags: 1 }],
      [{ mapType: "ringbuf", maxEntries: 12288 }, "maxEntries", /power of two/,
        { mapType: 27, keySize: 0, valueSize: 0, maxEntries: 12288 }],
      [{ mapType: "ringbuf", maxEntries: 4096, flags: ["rdonly_prog"] }, "flags[0]", /does not accept/,
        { mapType: 27, keySize: 0, valueSize: 0, maxEntries: 4096, mapFlags: 1 << 7 }],
      [{ mapType: "perf_event_array", valueSize: 8 }, "valueSize", /exactly 4/,
        { mapType: 4, keySize: 4, valueSize: 8, maxEntries: 1 }],
      [{ mapType: "devmap", maxEntries: 4, flags: ["rdonly_prog"] }, "flags[0]", /sets it by itself/,
        { mapType: 14, keySize: 4, valueSize: 4, maxEntries: 4, mapFlags: 1 << 7 }],
      [{ mapType: "cpumap", maxEntries: kernelMaxCpus() + 1 }, "maxEntries", /NR_CPUS/,
        { mapType: 16, keySize: 4, valueSize: 4, maxEntries: kernelMaxCpus() + 1 }],
      [{ mapType: "queue", keySize: 4, valueSize: 4, maxEntries: 4 }, "keySize", /exactly 0/,
        { mapType: 22, keySize: 4, valueSize: 4, maxEntries: 4 }],
      [{ mapType: "bloom_filter", valueSize: 4, maxEntries: 4, mapExtra: 16 }, "mapExtra", /0\.\.15/,
        { mapType: 30, keySize: 0, valueSize: 4, maxEntries: 4, mapExtra: 16 }],
      [{ mapType: "arena", maxEntries: 4 }, "flags", /requires mmapable/,
        { mapType: 33, keySize: 0, valueSize: 0, maxEntries: 4 }],
      [{ mapType: "percpu_hash", keySize: 4, valueSize: 32769, maxEntries: 1 }, "valueSize", /32768/,
        { mapType: 5, keySize: 4, valueSize: 32769, maxEntries: 1 }],
      [{ mapType: "percpu_array", valueSize: 4, maxEntries: 1, numaNode: 0 }, "numaNode", /NUMA/,
        { mapType: 6, keySize: 4, valueSize: 4, maxEntries: 1, mapFlags: 4, numaNode: 0 }],
      [{ mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 0 }, "maxEntries", /≥ 1/,
        { mapType: 1, keySize: 4, valueSize: 4, maxEntries: 0 }],
      [{ mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1, name: "a-name" }, "name", /A-Za-z0-9_\./,
        { mapType: 1, keySize: 4, valueSize: 4, maxEntries: 1, mapName: "a-name" }],
      [{ mapType: "hash_of_maps", keySize: 4, maxEntries: 1 }, "innerMap", /is required/, null],
      [{ mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1, flags: ["rdonly"] }, "flags[0]", /populating/, null],
      [{ mapType: "prog_array", maxEntries: 1 }, "mapType", /not supported/, null],
    ];
    for (const [input, property, rule, attrs] of INVALID) {
      const label = `${input.mapType} ${property} ${rule.source}`;
      it(`refuses ${label} with SpecError naming ${property}${attrs ? "; the kernel refuses it too" : ""}`, () => {
        const error = thrown(() => checkSpec({ pinPath: `${bpffs().root}/never`, ...input }));
        assert.ok(error instanceof SpecError, String(error));
        const line = error.message.split("\n").find((l) => l.startsWith(`${property}: `));
        assert.ok(line, `no failure for ${property} in:\n${error.message}`);
        assert.match(line, rule);
        assert.ok(!fs.existsSync(`${bpffs().root}/never`));
        if (attrs) {
          const kernel = thrown(() => native.createMap(attrs, native.plainValueBytes).close());
          assert.ok(native.isBpfError(kernel), `the kernel accepted what checkSpec refuses: ${label}`);
        }
      });
    }

    it("a pinPath off bpffs fails checkSpec, and createPinnedMap refuses it too (NotBpffs) before touching the kernel", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "not-bpffs-"));
      try {
        const input = { pinPath: `${dir}/m`, mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1 } as const;
        assert.throws(() => check(input), /^SpecError: pinPath: .* is not on a bpffs mount/);
        // A spec checked without the host (recorded state) still meets the pin layer's own check.
        const spec = checkSpec(input, { pinLocation: false });
        const error = assertEbpf(() => createPinnedMap(spec), "NotBpffs");
        assert.match(error.message, /mount -t bpf/);
        assert.deepEqual(fs.readdirSync(dir), []);
      } finally {
        fs.rmSync(dir, { recursive: true });
      }
    });
  });

  // -------------------------------------------------------------- reconcile
  describe("reconciliation", () => {
    const hashSpec = (pinPath: string, contents: Array<[number, number | string]>, extra: Partial<PinnedMapSpecInput> = {}) =>
      check({
        pinPath, mapType: "hash", keyType: "u32", valueType: "u64", maxEntries: 1 << 17,
        contents: contents.map(([key, value]) => ({ key, value })), ...extra,
      });

    it("exact removes undeclared keys; merge leaves them alone", () => {
      const dir = bpffs().dir("policy");
      for (const policy of ["exact", "merge"] as const) {
        const pin = `${dir}/${policy}`;
        const v1 = hashSpec(pin, [[1, 10], [2, 20]], { contentsPolicy: policy });
        const created = createPinnedMap(v1);
        // Another tool adds an entry.
        const other = native.openPinnedMap(pin, "rw", native.plainValueBytes);
        other.update(u32(99), u64(990));
        other.close();
        const v2 = hashSpec(pin, [[1, 11], [3, 30]], { contentsPolicy: policy });
        const updated = updatePinnedMap(v1, v2, created.mapId);
        assert.equal(updated.mapId, created.mapId);
        const live = readU32U64(pin);
        if (policy === "exact") {
          assert.deepEqual([...live].sort(), [[1, 11n], [3, 30n]]);
          assert.equal(updated.entryCount, 2);
        } else {
          assert.equal(live.get(99), 990n);
          assert.equal(live.get(1), 11n);
          assert.equal(live.get(3), 30n);
          // The managed view shows the declared keys only, and its digest ignores key 99.
          assert.deepEqual(updated.contents, [{ key: 1, value: "11" }, { key: 3, value: "30" }]);
          assert.equal(updated.contentsDigest, declaredDigest(v2));
        }
      }
    });

    it("updates are deltas: same map ID, untouched keys keep their value, other writers' entries survive", () => {
      const pin = `${bpffs().dir("delta")}/m`;
      const v1 = hashSpec(pin, [[1, 10], [2, 20], [3, 30]], { contentsPolicy: "merge" });
      const created = createPinnedMap(v1);
      const other = native.openPinnedMap(pin, "rw", native.plainValueBytes);
      try {
        other.update(u32(50), u64(500)); // undeclared, written by someone else
        const v2 = hashSpec(pin, [[1, 10], [2, 21], [3, 30], [4, 40]], { contentsPolicy: "merge" });
        const mid = updatePinnedMap(v1, v2, created.mapId);
        other.update(u32(50), u64(501)); // the other writer changes its entry mid-way
        const v3 = hashSpec(pin, [[1, 10], [2, 22], [3, 30], [4, 40]], { contentsPolicy: "merge" });
        const last = updatePinnedMap(v2, v3, mid.mapId);
        assert.equal(mid.mapId, created.mapId);
        assert.equal(last.mapId, created.mapId);
        assert.equal(bpftoolShow(pin).id, created.mapId);
        assert.deepEqual([...readU32U64(pin)].sort((a, b) => a[0] - b[0]), [[1, 10n], [2, 22n], [3, 30n], [4, 40n], [50, 501n]]);
      } finally {
        other.close();
      }
    });

    it("merge: a concurrent writer's keys all survive many updates, and a declared key never goes missing", async () => {
      const pin = `${bpffs().dir("writer")}/m`;
      const stop = `${os.tmpdir()}/pulumi-ebpf-stop-${process.pid}-writer`;
      fs.rmSync(stop, { force: true });
      const declared = (round: number) =>
        Array.from({ length: 2000 }, (_, i): [number, number] => [i, i % 2 === round % 2 ? i : i * 1000 + round]);
      let spec = hashSpec(pin, declared(0), { contentsPolicy: "merge" });
      const created = createPinnedMap(spec);
      const BASE = 1_000_000;
      const CAP = 100_000;
      const writer = runChild(`
        const fs = require("fs");
        const map = native.openPinnedMap(${JSON.stringify(pin)}, "rw", native.plainValueBytes);
        const key = Buffer.alloc(4), value = Buffer.alloc(8), out = Buffer.alloc(8), stable = Buffer.alloc(4);
        stable.writeUInt32LE(7);
        let writes = 0, lookups = 0, misses = 0;
        process.stdout.write("ready\\n");
        while (!fs.existsSync(${JSON.stringify(stop)})) {
          for (let j = 0; j < 64; j++) {
            if (writes < ${CAP}) {
              key.writeUInt32LE(${BASE} + writes);
              value.writeBigUInt64LE(BigInt(writes) * 3n + 1n);
              map.update(key, value, 0);
              writes++;
            }
            lookups++;
            if (!map.lookupInto(stable, out)) misses++;
          }
        }
        map.close();
        process.stdout.write(JSON.stringify({ writes, lookups, misses }) + "\\n");
      `);
      await writer.ready;
      const writerKeys = () => [...readU32U64(pin).keys()].filter((k) => k >= BASE).length;
      const before = writerKeys();
      let updates = 0;
      try {
        // At least 5 updates, and on until the writer has been seen writing
        // during them (bounded by count, not by time: CI machines are loaded).
        while (updates < 5 || (writerKeys() === before && updates < 500)) {
          const next = hashSpec(pin, declared(updates + 1), { contentsPolicy: "merge" });
          assert.equal(updatePinnedMap(spec, next, created.mapId).mapId, created.mapId);
          spec = next;
          updates++;
        }
      } finally {
        fs.writeFileSync(stop, "");
      }
      const after = writerKeys();
      const { writes, lookups, misses } = await writer.result;
      fs.rmSync(stop, { force: true });
      const live = readU32U64(pin);
      let losses = 0;
      for (let i = 0; i < writes; i++) if (live.get(BASE + i) !== BigInt(i) * 3n + 1n) losses++;
      console.log(`      merge writer: ${writes} writes, ${losses} lost, ${updates} updates (${after - before} writes landed during them), ${lookups} lookups of a declared key, ${misses} misses`);
      assert.ok(after > before, "the writer did not write while the updates ran");
      assert.equal(losses, 0);
      assert.equal(misses, 0);
      for (const [k, v] of declared(updates)) assert.equal(live.get(k), BigInt(v));
    });

    it("arrays: exact resets undeclared indices to zero, in place", () => {
      const pin = `${bpffs().dir("array")}/m`;
      const v1 = check({ pinPath: pin, mapType: "array", keyType: "u32", valueType: "u64", maxEntries: 8,
        contents: [1, 2, 3, 4].map((i) => ({ key: i, value: i * 10 })) });
      const created = createPinnedMap(v1);
      const other = native.openPinnedMap(pin, "rw", native.plainValueBytes);
      other.update(u32(6), u64(66));
      other.close();
      const v2 = check({ ...v1, keyType: "u32", valueType: "u64", contents: [{ key: 2, value: 21 }, { key: 4, value: 40 }] } as PinnedMapSpecInput);
      const updated = updatePinnedMap(v1, v2, created.mapId);
      assert.equal(updated.mapId, created.mapId);
      const live = readU32U64(pin);
      assert.deepEqual([...live].sort((a, b) => a[0] - b[0]), [[0, 0n], [1, 0n], [2, 21n], [3, 0n], [4, 40n], [5, 0n], [6, 0n], [7, 0n]]);
      assert.equal(updated.entryCount, 2);
      assert.deepEqual(updated.contents, [{ key: 2, value: "21" }, { key: 4, value: "40" }]);
    });

    it("maps of maps: values are pin paths of maps made by createPinnedMap; read-back shows the paths", () => {
      const dir = bpffs().dir("mom");
      const innerSpec = (name: string) => check({ pinPath: `${dir}/${name}`, mapType: "array", valueSize: 4, maxEntries: 1 });
      const innerA = createPinnedMap(innerSpec("a"));
      const innerB = createPinnedMap(innerSpec("b"));
      const innerC = createPinnedMap(innerSpec("c"));
      const outer = (contents: Array<[number, string]>) => check({
        pinPath: `${dir}/outer`, mapType: "hash_of_maps", keyType: "u32", maxEntries: 8,
        innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 },
        contents: contents.map(([key, value]) => ({ key, value: `${dir}/${value}` })),
      });
      const v1 = outer([[1, "a"], [2, "b"]]);
      const created = createPinnedMap(v1);
      assert.deepEqual(created.contents, [{ key: 1, value: `${dir}/a` }, { key: 2, value: `${dir}/b` }]);
      assert.equal(created.contentsDigest, declaredDigest(v1));
      const ids = (pin: string) => new Map(bpftool<Array<{ key: string[]; value: string[] }>>("map", "dump", "pinned", pin)
        .map((e) => [Buffer.from(e.key.map((h) => parseInt(h, 16))).readUInt32LE(0), Buffer.from(e.value.map((h) => parseInt(h, 16))).readUInt32LE(0)]));
      assert.deepEqual(ids(`${dir}/outer`), new Map([[1, innerA.mapId], [2, innerB.mapId]]));
      // Refresh reads the same back.
      const observed = observePinnedMap(v1, created.mapId);
      assert.equal(observed.status, "ok");
      assert.deepEqual((observed as { observation: MapObservation }).observation.contents, created.contents);
      // Update in place: key 2 now points at c, key 1 removed (exact), key 3 added.
      const v2 = outer([[2, "c"], [3, "a"]]);
      const updated = updatePinnedMap(v1, v2, created.mapId);
      assert.equal(updated.mapId, created.mapId);
      assert.deepEqual(updated.contents, [{ key: 2, value: `${dir}/c` }, { key: 3, value: `${dir}/a` }]);
      assert.deepEqual(ids(`${dir}/outer`), new Map([[2, innerC.mapId], [3, innerA.mapId]]));
      assert.equal(updated.contentsDigest, declaredDigest(v2));
    });
  });

  // -------------------------------------------------------------- swap
  describe("swap", () => {
    it("an ABI change swaps in a new map ID while a concurrent reader never sees the pin missing", async () => {
      const pin = `${bpffs().dir("swap")}/m`;
      const stop = `${os.tmpdir()}/pulumi-ebpf-stop-${process.pid}-swap`;
      fs.rmSync(stop, { force: true });
      const spec = (maxEntries: number) => check({
        pinPath: pin, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries,
        contents: [{ key: 1, value: maxEntries }],
      });
      let current = spec(16);
      let owned = createPinnedMap(current).mapId;
      const reader = runChild(`
        const fs = require("fs");
        let opens = 0, failures = 0;
        const seen = new Set();
        const codes = {};
        process.stdout.write("ready\\n");
        while (!fs.existsSync(${JSON.stringify(stop)})) {
          for (let j = 0; j < 100; j++) {
            try {
              const m = native.openPinnedMap(${JSON.stringify(pin)}, "ro", native.plainValueBytes);
              seen.add(m.info.id);
              m.close();
              opens++;
            } catch (e) {
              failures++;
              codes[e.code] = (codes[e.code] || 0) + 1;
            }
          }
        }
        process.stdout.write(JSON.stringify({ opens, failures, distinctIds: seen.size, enoent: codes.ENOENT || 0 }) + "\\n");
      `);
      await reader.ready;
      const ids = new Set<number>([owned]);
      const SWAPS = 200;
      try {
        for (let i = 1; i <= SWAPS; i++) {
          const next = spec(16 + (i % 2) * 16);
          const observation = updatePinnedMap(current, next, owned);
          assert.notEqual(observation.mapId, owned);
          assert.equal(observation.abi.maxEntries, next.maxEntries);
          ids.add(observation.mapId);
          owned = observation.mapId;
          current = next;
        }
      } finally {
        fs.writeFileSync(stop, "");
      }
      const { opens, failures, distinctIds, enoent } = await reader.result;
      fs.rmSync(stop, { force: true });
      console.log(`      swap reader: ${opens} opens, ${failures} failures (${enoent} ENOENT), ${distinctIds} distinct map IDs seen over ${SWAPS} swaps`);
      assert.equal(ids.size, SWAPS + 1);
      assert.equal(failures, 0);
      assert.ok(opens > 1000, `only ${opens} opens`);
      assert.ok(distinctIds > 1, "the reader did not overlap the swaps");
      assert.equal(bpftoolShow(pin).id, owned);
      const live = native.openPinnedMap(pin, "ro", native.plainValueBytes);
      try {
        assert.equal(live.lookup(u32(1))?.readUInt32LE(0), current.maxEntries);
      } finally {
        live.close();
      }
      assert.deepEqual(stagingLeft(path.dirname(pin)), []);
    });
  });

  // -------------------------------------------------------------- faults
  describe("failure injection", () => {
    const saved = { fault: process.env.PULUMI_EBPF_FAULT, mode: process.env.PULUMI_EBPF_FAULT_MODE };
    afterEach(() => {
      for (const [name, value] of [["PULUMI_EBPF_FAULT", saved.fault], ["PULUMI_EBPF_FAULT_MODE", saved.mode]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });
    function withFault<T>(point: string, fn: () => T): T {
      process.env.PULUMI_EBPF_FAULT = point;
      process.env.PULUMI_EBPF_FAULT_MODE = "throw";
      try {
        return fn();
      } finally {
        delete process.env.PULUMI_EBPF_FAULT;
      }
    }
    const spec = (pinPath: string, maxEntries: number, values: number[]) => check({
      pinPath, mapType: "hash", keyType: "u32", valueType: "u64", maxEntries,
      contents: values.map((value, key) => ({ key, value })),
    });

    for (const point of ["populate", "write:0", "before-rename"]) {
      it(`create failing at ${point}: nothing pinned, no staging pin, no fd left open`, () => {
        const dir = bpffs().dir(`create_${point}`);
        const fds = fdCount();
        const error = thrown(() => withFault(point, () => createPinnedMap(spec(`${dir}/m`, 8, [1, 2, 3]))));
        assert.match(String(error), new RegExp(`injected fault at ${point}`));
        assert.deepEqual(fs.readdirSync(dir), []);
        assert.equal(fdCount(), fds);
      });

      it(`update (new kernel map) failing at ${point}: old map still pinned with its ID and contents`, () => {
        const dir = bpffs().dir(`update_${point}`);
        const v1 = spec(`${dir}/m`, 8, [1, 2, 3]);
        const created = createPinnedMap(v1);
        const fds = fdCount();
        const v2 = spec(`${dir}/m`, 16, [4, 5, 6, 7]);
        const error = thrown(() => withFault(point, () => updatePinnedMap(v1, v2, created.mapId)));
        assert.match(String(error), new RegExp(`injected fault at ${point}`));
        assert.equal(pinnedMapId(`${dir}/m`), created.mapId);
        assert.deepEqual([...readU32U64(`${dir}/m`)].sort((a, b) => a[0] - b[0]), [[0, 1n], [1, 2n], [2, 3n]]);
        assert.deepEqual(fs.readdirSync(dir), ["m"]);
        assert.equal(fdCount(), fds);
        // Without the fault the same update goes through.
        const updated = updatePinnedMap(v1, v2, created.mapId);
        assert.notEqual(updated.mapId, created.mapId);
        assert.equal(updated.abi.maxEntries, 16);
      });
    }

    it("create failing in the kernel mid-populate (an incompatible inner map): nothing pinned, no fd left open", () => {
      const dir = bpffs().dir("kernel_fail");
      createPinnedMap(check({ pinPath: `${dir}/good`, mapType: "array", valueSize: 4, maxEntries: 1 }));
      createPinnedMap(check({ pinPath: `${dir}/wide`, mapType: "array", valueSize: 8, maxEntries: 1 }));
      const fds = fdCount();
      const outer = check({
        pinPath: `${dir}/outer`, mapType: "array_of_maps", keyType: "u32", maxEntries: 4,
        innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 },
        contents: [{ key: 0, value: `${dir}/good` }, { key: 1, value: `${dir}/good` }, { key: 2, value: `${dir}/wide` }],
      });
      const error = thrown(() => createPinnedMap(outer));
      assert.ok(isEbpfError(error, "Kernel"), String(error));
      assert.equal(error.code, "EINVAL");
      assert.match(error.message, /outer/);
      assert.deepEqual(fs.readdirSync(dir).sort(), ["good", "wide"]);
      assert.equal(fdCount(), fds);
    });

    it("create with an inner pin path that does not exist: PinNotFound, nothing pinned, no fd left open", () => {
      const dir = bpffs().dir("inner_missing");
      createPinnedMap(check({ pinPath: `${dir}/good`, mapType: "array", valueSize: 4, maxEntries: 1 }));
      const fds = fdCount();
      const outer = check({
        pinPath: `${dir}/outer`, mapType: "hash_of_maps", keyType: "u32", maxEntries: 4,
        innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 },
        contents: [{ key: 0, value: `${dir}/good` }, { key: 1, value: `${dir}/absent` }],
      });
      const error = thrown(() => createPinnedMap(outer));
      assert.ok(isEbpfError(error, "PinNotFound"), String(error));
      assert.match(error.message, /absent/);
      assert.deepEqual(fs.readdirSync(dir), ["good"]);
      assert.equal(fdCount(), fds);
    });

    it("stale staging pins of a dead process are removed by the next pin; a live process's are kept", () => {
      const dir = bpffs().dir("stale");
      const pin = `${dir}/m`;
      assert.throws(() => process.kill(999999, 0), /ESRCH|EINVAL/);
      // Staging names carry pid, start time and the staged map's ID (see stagingName).
      const stat = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[19]!;
      const pinStaging = (pid: number, start: string) => {
        const m = native.createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 1 }, native.plainValueBytes);
        const p = `${pin}${STAGING_INFIX}${pid}_${start}_${m.info.id}`;
        m.pin(p);
        m.close();
        return p;
      };
      const dead = pinStaging(999999, "0");
      const alive = pinStaging(process.ppid, stat(process.ppid));
      createPinnedMap(spec(pin, 4, [1]));
      assert.ok(!fs.existsSync(dead), "the dead process's staging pin is still there");
      assert.ok(fs.existsSync(alive), "a live process's staging pin was removed");
      fs.unlinkSync(alive);
    });
  });

  // -------------------------------------------------------------- delete
  describe("delete", () => {
    const spec = (pinPath: string) => check({ pinPath, mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });

    it("unpins the map it owns", () => {
      const pin = `${bpffs().dir("del")}/m`;
      const { mapId } = createPinnedMap(spec(pin));
      const warnings: string[] = [];
      assert.equal(deletePinnedMap(pin, mapId, (w) => warnings.push(w)), "unpinned");
      assert.ok(!fs.existsSync(pin));
      assert.deepEqual(warnings, []);
      assert.equal(observePinnedMap(spec(pin), mapId).status, "missing");
    });

    it("leaves a pin that now holds another map, and warns", () => {
      const pin = `${bpffs().dir("del_foreign")}/m`;
      const { mapId } = createPinnedMap(spec(pin));
      fs.unlinkSync(pin);
      const other = native.createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 1 }, native.plainValueBytes);
      other.pin(pin);
      const otherId = other.info.id;
      other.close();
      const warnings: string[] = [];
      assert.deepEqual(observePinnedMap(spec(pin), mapId), { status: "foreign", liveMapId: otherId });
      assert.equal(deletePinnedMap(pin, mapId, (w) => warnings.push(w)), "foreign");
      assert.equal(pinnedMapId(pin), otherId);
      assert.equal(warnings.length, 1);
      assert.ok(warnings[0]!.includes(pin) && warnings[0]!.includes(String(mapId)), warnings[0]);
      // An update of the foreign pin is refused too.
      assertEbpf(() => updatePinnedMap(spec(pin), spec(pin), mapId), "ForeignPin");
      assert.equal(pinnedMapId(pin), otherId);
    });

    it("a missing pin is \"missing\"", () => {
      const pin = `${bpffs().dir("del_missing")}/m`;
      const warnings: string[] = [];
      assert.equal(deletePinnedMap(pin, 12345, (w) => warnings.push(w)), "missing");
      assert.deepEqual(warnings, []);
    });
  });

  // -------------------------------------------------------------- adopt
  describe("ifExists", () => {
    /** A map made and pinned directly with the binding: u32 → u64 hash with keys 1 (10) and 9 (90). */
    function foreignMap(pin: string, attrs: Partial<native.MapCreateAttrs> = {}): number {
      const m = native.createMap({ mapType: 1, keySize: 4, valueSize: 8, maxEntries: 16, ...attrs }, native.plainValueBytes);
      try {
        if (m.info.keySize === 4 && m.info.valueSize === 8) {
          m.update(u32(1), u64(10));
          m.update(u32(9), u64(90));
        }
        m.pin(pin);
        return m.info.id;
      } finally {
        m.close();
      }
    }
    const spec = (pinPath: string, ifExists: "fail" | "adopt" | "replace") => check({
      pinPath, mapType: "hash", keyType: "u32", valueType: "u64", maxEntries: 16, ifExists,
      contents: [{ key: 1, value: 11 }, { key: 2, value: 20 }],
    });

    it("adopt takes a compatible map over (same ID) and reconciles its contents", () => {
      const pin = `${bpffs().dir("adopt")}/m`;
      const id = foreignMap(pin);
      const fds = fdCount();
      const adopted = createPinnedMap(spec(pin, "adopt"));
      assert.equal(adopted.mapId, id);
      assert.deepEqual([...readU32U64(pin)].sort((a, b) => a[0] - b[0]), [[1, 11n], [2, 20n]]);
      assert.equal(adopted.contentsDigest, declaredDigest(spec(pin, "adopt")));
      assert.equal(fdCount(), fds);
    });

    it("adopt refuses an incompatible map with Incompatible naming every differing field, and leaves it alone", () => {
      const pin = `${bpffs().dir("adopt_bad")}/m`;
      const id = foreignMap(pin, { keySize: 8, maxEntries: 32, mapFlags: 1 });
      const fds = fdCount();
      const error = assertEbpf(() => createPinnedMap(spec(pin, "adopt")), "Incompatible");
      assert.match(error.message, /keySize: declared 4, live 8/);
      assert.match(error.message, /maxEntries: declared 16, live 32/);
      assert.match(error.message, /flags: declared \[\], live \[no_prealloc\]/);
      assert.doesNotMatch(error.message, /valueSize|mapType/);
      assert.equal(pinnedMapId(pin), id);
      assert.equal(fdCount(), fds);
    });

    it("fail throws PinExists and leaves the map", () => {
      const pin = `${bpffs().dir("fail")}/m`;
      const id = foreignMap(pin);
      const error = assertEbpf(() => createPinnedMap(spec(pin, "fail")), "PinExists");
      assert.match(error.message, /adopt|replace/);
      assert.equal(pinnedMapId(pin), id);
      assert.deepEqual([...readU32U64(pin)].sort((a, b) => a[0] - b[0]), [[1, 10n], [9, 90n]]);
    });

    it("replace swaps a new map in (new ID) and warns", () => {
      const dir = bpffs().dir("replace");
      const pin = `${dir}/m`;
      const id = foreignMap(pin);
      const warnings: string[] = [];
      const replaced = createPinnedMap(spec(pin, "replace"), (w) => warnings.push(w));
      assert.notEqual(replaced.mapId, id);
      assert.equal(pinnedMapId(pin), replaced.mapId);
      assert.deepEqual([...readU32U64(pin)].sort((a, b) => a[0] - b[0]), [[1, 11n], [2, 20n]]);
      assert.equal(warnings.length, 1);
      assert.deepEqual(fs.readdirSync(dir), ["m"]);
    });
  });

  // -------------------------------------------------------------- pins
  describe("pin locations", () => {
    it("refuses relative paths, .. and dotted names (UnsafePath)", () => {
      const root = bpffs().root;
      assertEbpf(() => checkPinLocation("relative/m"), "UnsafePath");
      assertEbpf(() => checkPinLocation(`${root}/a/../m`), "UnsafePath");
      assertEbpf(() => checkPinLocation(`${root}/a//m`), "UnsafePath");
      assertEbpf(() => checkPinLocation(`${root}/m.v1`), "UnsafePath");
      assert.equal(checkPinLocation(`${root}/not/yet/there`), `${root}/not/yet/there`);
    });

    it("refuses a path through a symlink, even one that points at bpffs", () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "symlink-"));
      try {
        fs.symlinkSync(bpffs().dir("target"), `${tmp}/link`);
        const error = assertEbpf(() => checkPinLocation(`${tmp}/link/m`), "UnsafePath");
        assert.match(error.message, /symlink/);
        const input = { pinPath: `${tmp}/link/m`, mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1 } as const;
        assert.throws(() => check(input), /^SpecError: pinPath: .* passes through the symlink/);
        // A spec checked without the host (recorded state) meets the pin layer's own refusal.
        assertEbpf(() => createPinnedMap(checkSpec(input, { pinLocation: false })), "UnsafePath");
      } finally {
        fs.rmSync(tmp, { recursive: true });
      }
    });

    it("refuses a path off bpffs (NotBpffs) and says how to mount one", () => {
      const error = assertEbpf(() => checkPinLocation("/tmp/x"), "NotBpffs");
      assert.match(error.message, /mount -t bpf bpf \/sys\/fs\/bpf/);
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "plain-"));
      try {
        assertEbpf(() => ensurePinParent(`${tmp}/a/b/m`), "NotBpffs");
        assert.deepEqual(fs.readdirSync(tmp), []);
      } finally {
        fs.rmSync(tmp, { recursive: true });
      }
    });

    it("creates missing parent directories with mode 0700", () => {
      const base = bpffs().dir("parents");
      const pin = `${base}/a/b/c/m`;
      const created = createPinnedMap(check({ pinPath: pin, mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1,
        permissions: { mode: 0o640 } }));
      for (const dir of [`${base}/a`, `${base}/a/b`, `${base}/a/b/c`]) {
        const stat = fs.statSync(dir);
        assert.ok(stat.isDirectory());
        assert.equal(stat.mode & 0o7777, 0o700, `${dir} has mode ${(stat.mode & 0o7777).toString(8)}`);
      }
      assert.equal(fs.statSync(pin).mode & 0o7777, 0o640);
      assert.equal(pinnedMapId(pin), created.mapId);
    });
  });

  // -------------------------------------------------------------- digest
  describe("contents digest", () => {
    it("equals the observation's after create, whatever the order or notation", () => {
      const dir = bpffs().dir("digest");
      const a = check({
        pinPath: `${dir}/m`, mapType: "hash", keyType: "ipv4", valueType: "u64", maxEntries: 8,
        contents: [{ key: "10.0.0.1", value: 5 }, { key: "10.0.0.2", value: "18446744073709551615" }, { key: "192.168.1.1", value: 0 }],
      });
      const b = check({
        pinPath: `${dir}/m`, mapType: "hash", keyType: "ipv4", valueType: "u64", maxEntries: 8,
        contents: [{ key: "192.168.1.1", value: "0x0" }, { key: { hex: "0a000002" }, value: { hex: "ffffffffffffffff" } }, { key: "10.0.0.1", value: "5" }],
      });
      const c = check({ ...a, keyType: "ipv4", valueType: "u64", contents: [{ key: "10.0.0.1", value: 6 }] } as PinnedMapSpecInput);
      assert.equal(declaredDigest(a), declaredDigest(b));
      assert.notEqual(declaredDigest(a), declaredDigest(c));
      const created = createPinnedMap(a);
      assert.equal(created.contentsDigest, declaredDigest(a));
      const observed = observePinnedMap(b, created.mapId);
      assert.equal(observed.status, "ok");
      const obs = (observed as { observation: MapObservation }).observation;
      assert.equal(obs.contentsDigest, declaredDigest(b));
      // Read-back is in canonical notation and order.
      assert.deepEqual(obs.contents, [
        { key: "10.0.0.1", value: "5" }, { key: "10.0.0.2", value: "18446744073709551615" }, { key: "192.168.1.1", value: "0" },
      ]);
      // Drift (another writer) changes the exact digest.
      const other = native.openPinnedMap(`${dir}/m`, "rw", native.plainValueBytes);
      other.update(Buffer.from([10, 0, 0, 3]), u64(1));
      other.close();
      const drifted = observePinnedMap(a, created.mapId) as { observation: MapObservation };
      assert.notEqual(drifted.observation.contentsDigest, declaredDigest(a));
    });

    it("per-CPU: value broadcast and the same perCpuValues digest equal", () => {
      const cpus = possibleCpuCount();
      const dir = bpffs().dir("digest_percpu");
      const base = { pinPath: `${dir}/m`, mapType: "percpu_hash", keyType: "u32", valueType: "u32", maxEntries: 4 } as const;
      const a = check({ ...base, contents: [{ key: 1, value: 7 }] });
      const b = check({ ...base, contents: [{ key: 1, perCpuValues: Array(cpus).fill("7") }] });
      assert.equal(declaredDigest(a), declaredDigest(b));
      const created = createPinnedMap(a);
      assert.equal(created.contentsDigest, declaredDigest(b));
      assert.deepEqual(created.contents, [{ key: 1, value: 7 }]);
    });
  });
});
