// Spec validation: per-type kernel rules, defaults, failure collection,
// canonical contents. Pure: no kernel needed.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { MAP_FLAGS, MAP_TYPE_NAMES, MAP_TYPES, flagsToMask, maskToFlags, pageSize, parseCpuList, valueBytesOf } from "../provider/core/maptypes.js";
import {
  HostInfo, MapSpec, SpecError, canonicalContents, checkSpec, encodeContents, kernelAdjusted,
} from "../provider/core/spec.js";

// Inputs alone: the pin path is not inspected on this host (see check-paths for that).
const HOST: HostInfo = { possibleCpus: 2, kernelMaxCpus: 256, perfMaxStack: 127, pinLocation: false };
const P = "/sys/fs/bpf/test/m";

const check = (input: Record<string, unknown>): MapSpec => checkSpec({ pinPath: P, ...input }, HOST);

// Asserts that checking fails with exactly these `path: rule` lines (each a regex).
function fails(input: Record<string, unknown>, ...lines: RegExp[]): SpecError {
  let err: unknown;
  try {
    checkSpec({ pinPath: P, ...input }, HOST);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SpecError, `expected SpecError for ${JSON.stringify(input)}`);
  const got = err.message.split("\n");
  assert.equal(got.length, lines.length, `failures:\n${err.message}`);
  lines.forEach((re, i) => assert.match(got[i]!, re, `failures:\n${err.message}`));
  assert.equal(err.failures.length, lines.length);
  return err;
}

// The smallest spec of each creatable type.
const MINIMAL: Record<string, Record<string, unknown>> = {
  hash: { keySize: 4, valueSize: 8, maxEntries: 1 },
  array: { valueSize: 8, maxEntries: 1 },
  perf_event_array: {},
  percpu_hash: { keySize: 4, valueSize: 8, maxEntries: 1 },
  percpu_array: { valueSize: 8, maxEntries: 1 },
  stack_trace: { valueSize: 8, maxEntries: 1 },
  cgroup_array: { maxEntries: 1 },
  lru_hash: { keySize: 4, valueSize: 8, maxEntries: 1 },
  lru_percpu_hash: { keySize: 4, valueSize: 8, maxEntries: 1 },
  lpm_trie: { keySize: 8, valueSize: 1, maxEntries: 1, flags: ["no_prealloc"] },
  array_of_maps: { maxEntries: 1, innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 } },
  hash_of_maps: { keySize: 4, maxEntries: 1, innerMap: { mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1 } },
  devmap: { maxEntries: 1 },
  sockmap: { maxEntries: 1 },
  cpumap: { maxEntries: 1 },
  xskmap: { maxEntries: 1 },
  sockhash: { keySize: 4, maxEntries: 1 },
  reuseport_sockarray: { maxEntries: 1 },
  queue: { valueSize: 4, maxEntries: 1 },
  stack: { valueSize: 4, maxEntries: 1 },
  devmap_hash: { maxEntries: 1 },
  ringbuf: { maxEntries: 4096 },
  bloom_filter: { valueSize: 4, maxEntries: 1 },
  user_ringbuf: { maxEntries: 4096 },
  arena: { maxEntries: 1, flags: ["mmapable"] },
};

describe("spec", () => {
  describe("map types", () => {
    it("has a minimal passing spec for every supported type, and only those", () => {
      const supported = MAP_TYPE_NAMES.filter((t) => !MAP_TYPES[t].unsupported);
      assert.deepEqual(Object.keys(MINIMAL).sort(), [...supported].sort());
      for (const [t, extra] of Object.entries(MINIMAL)) check({ mapType: t, ...extra });
    });
    it("checkSpec is idempotent on its own output", () => {
      for (const [t, extra] of Object.entries(MINIMAL)) {
        const s = check({ mapType: t, ...extra });
        const again = checkSpec({ ...s, ...(s.keyType === null && { keyType: undefined }), ...(s.valueType === null && { valueType: undefined }) }, HOST);
        assert.deepEqual(again, s, t);
      }
      assert.equal(check({ mapType: "queue", ...MINIMAL.queue }).keyType, null);
    });
    it("keeps every behaviour fact on the type's entry, consistent with its contents rule", () => {
      for (const name of MAP_TYPE_NAMES) {
        const info = MAP_TYPES[name];
        assert.equal(info.dumpable === true, info.contents?.kind === "keyed", `${name}: dumpable iff keyed contents`);
        assert.equal(info.keyless === true, info.contents?.kind === "values", `${name}: keyless iff pushed values`);
        if (info.arrayLike) assert.ok(info.contents?.kind === "keyed" && info.contents.index && info.batch, `${name}: arrays are indexed and batched`);
        if (info.batch) assert.ok(info.dumpable, `${name}: batch types are dumpable`);
      }
      assert.deepEqual(MAP_TYPE_NAMES.filter((name) => MAP_TYPES[name].perCpu),
        ["percpu_hash", "percpu_array", "lru_percpu_hash", "percpu_cgroup_storage"]);
      assert.deepEqual(MAP_TYPE_NAMES.filter((name) => MAP_TYPES[name].arrayLike), ["array", "percpu_array", "array_of_maps"]);
      assert.equal(valueBytesOf(MAP_TYPES.percpu_array.id, 12, 3), 48);
      assert.equal(valueBytesOf(MAP_TYPES.array.id, 12, 3), 12);
    });
    it("asks the OS for the page size, and rules follow the host's", () => {
      assert.equal(pageSize(), Number(execFileSync("getconf", ["PAGESIZE"], { encoding: "utf8" })));
      assert.throws(() => checkSpec({ pinPath: P, mapType: "ringbuf", maxEntries: 8192 }, { ...HOST, pageSize: 16384 }),
        /^SpecError: maxEntries: ringbuf needs maxEntries ≥ 16384, not 8192$/);
      assert.equal(checkSpec({ pinPath: P, mapType: "ringbuf", maxEntries: 16384 }, { ...HOST, pageSize: 16384 }).maxEntries, 16384);
    });
    it("uses the uapi enum numbers", () => {
      assert.equal(MAP_TYPES.hash.id, 1);
      assert.equal(MAP_TYPES.lpm_trie.id, 11);
      assert.equal(MAP_TYPES.devmap_hash.id, 25);
      assert.equal(MAP_TYPES.ringbuf.id, 27);
      assert.equal(MAP_TYPES.bloom_filter.id, 30);
      assert.equal(MAP_TYPES.arena.id, 33);
      MAP_TYPE_NAMES.forEach((t, i) => assert.equal(MAP_TYPES[t].id, i + 1, t));
    });
    it("refuses types that need BTF or programs, with the reason", () => {
      fails({ mapType: "prog_array", maxEntries: 4 }, /^mapType: prog_array is not supported: .*programs/);
      fails({ mapType: "sk_storage" }, /^mapType: sk_storage is not supported: .*BTF/);
      fails({ mapType: "cgroup_storage" }, /^mapType: cgroup_storage is not supported: .*program/);
      fails({ mapType: "struct_ops" }, /not supported: .*BTF/);
      fails({ mapType: "task_storage" }, /not supported/);
      fails({ mapType: "bogus" }, /^mapType: must be one of hash, array/);
    });
  });

  describe("defaults", () => {
    it("fills in implied sizes and policy defaults", () => {
      const s = check({ mapType: "array", valueSize: 8, maxEntries: 4 });
      assert.deepEqual(s, {
        pinPath: P, mapType: "array", keySize: 4, valueSize: 8, maxEntries: 4, flags: [], name: "",
        keyType: "hex", valueType: "hex", contents: [], contentsPolicy: "exact", freeze: false, ifExists: "fail", mapExtra: 0,
      });
    });
    it("fills sizes per type", () => {
      const sz = (t: string) => { const s = check({ mapType: t, ...MINIMAL[t] }); return [s.keySize, s.valueSize, s.maxEntries]; };
      assert.deepEqual(sz("perf_event_array"), [4, 4, 2]);
      assert.deepEqual(sz("queue"), [0, 4, 1]);
      assert.deepEqual(sz("bloom_filter"), [0, 4, 1]);
      assert.deepEqual(sz("ringbuf"), [0, 0, 4096]);
      assert.deepEqual(sz("devmap"), [4, 4, 1]);
      assert.deepEqual(sz("array_of_maps"), [4, 4, 1]);
      assert.deepEqual(sz("arena"), [0, 0, 1]);
      assert.equal(check({ mapType: "array_of_maps", ...MINIMAL.array_of_maps }).valueType, null);
      assert.deepEqual(check({ mapType: "array_of_maps", ...MINIMAL.array_of_maps }).innerMap,
        { mapType: "array", keySize: 4, valueSize: 4, maxEntries: 1, flags: [] });
    });
    it("sorts flags in bit order, adds numa_node for numaNode, parses octal modes", () => {
      const s = check({ mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 4, flags: ["zero_seed", "no_prealloc", "zero_seed"], numaNode: 0, permissions: { mode: "0640", uid: 0 } });
      assert.deepEqual(s.flags, ["no_prealloc", "numa_node", "zero_seed"]);
      assert.deepEqual(s.permissions, { mode: 0o640, uid: 0 });
      assert.equal(s.numaNode, 0);
    });
  });

  describe("collects every failure", () => {
    it("names property and rule, one line each", () => {
      fails(
        { pinPath: "rel/x", mapType: "lru_hash", keySize: 0, flags: ["no_prealloc", "rdonly"], name: "way_too_long_name", bogus: 1, freeze: "yes" },
        /^pinPath: "rel\/x" is not an absolute path$/,
        /^name: is longer than 15 characters/,
        /^bogus: unknown property/,
        /^freeze: must be a boolean$/,
        /^keySize: lru_hash needs key size ≥ 1, not 0$/,
        /^valueSize: is required for lru_hash/,
        /^maxEntries: is required for lru_hash$/,
        /^flags\[0\]: lru_hash does not accept no_prealloc \(LRU maps are always preallocated: the kernel answers ENOTSUPP\)/,
        /^flags\[1\]: rdonly only restricts the creating fd/,
      );
    });
    it("does not echo a bad property as missing", () => {
      fails({ mapType: "array_of_maps", maxEntries: 1, innerMap: { mapType: "array", foo: 1 } }, /^innerMap: Unrecognized key: "foo"$/);
      fails({ mapType: "hash", keySize: "4", valueSize: 4, maxEntries: 1 }, /^keySize: must be an integer$/);
    });
    it("reports contents failures with entry index and field", () => {
      fails(
        {
          mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 2, keyType: "ipv4",
          valueType: { struct: [{ name: "port", type: "u8" }, { name: "ttl", type: "u8" }] },
          contents: [
            { key: "10.0.0.1", value: { port: 1 } },
            { key: "10.0.0.300", value: { port: 300, tos: 1 } },
            { key: "10.000.0.1", value: {} },
          ],
        },
        /^contents\[1\]\.key: "10\.0\.0\.300" is not an IPv4 address$/,
        /^contents\[1\]\.value\.tos: unknown field/,
        /^contents\[1\]\.value\.port: 300 does not fit u8 \(0\.\.255\)$/,
        /^contents\[2\]\.key: duplicates contents\[0\]\.key \(both are 0a000001\)$/,
        /^contents: 3 entries exceed maxEntries 2$/,
      );
    });
  });

  describe("pinPath", () => {
    for (const [p, re] of [
      ["relative/m", /not an absolute path/],
      ["/sys/fs/bpf//m", /empty component/],
      ["/sys/fs/bpf/m/", /empty component/],
      ["/sys/fs/bpf/a/../m", /\. or \.\. component; give the normalized path "\/sys\/fs\/bpf\/m"/],
      ["/sys/fs/bpf/./m", /\. or \.\. component/],
      ["/sys/fs/bpf/my.map", /pin name "my\.map" contains "\." \(bpffs refuses dotted names with EPERM\)/],
      ["/sys/fs/bpf/v1.2/m", /directory "v1\.2" contains "\."/],
      ["/sys/fs/bpf", /bpffs root itself/],
    ] as const) {
      it(`refuses ${p}`, () => {
        fails({ pinPath: p, mapType: "queue", valueSize: 4, maxEntries: 1 }, new RegExp(`^pinPath: .*${re.source}`));
      });
    }
    it("accepts a dotted directory outside /sys/fs/bpf (mktemp -d mount points)", () => {
      checkSpec({ pinPath: "/tmp/tmp.abc/m", mapType: "queue", valueSize: 4, maxEntries: 1 }, HOST);
    });
    it("is required", () => {
      assert.throws(() => checkSpec({ mapType: "queue", valueSize: 4, maxEntries: 1 }, HOST), /^SpecError: pinPath: is required$/);
    });
  });

  describe("per-type rules", () => {
    it("freeze: refused where the table says it makes the map useless, naming the rule; accepted elsewhere", () => {
      const refused = MAP_TYPE_NAMES.filter((type) => MAP_TYPES[type].freezeRefused !== undefined);
      assert.deepEqual(refused, [
        "perf_event_array", "stack_trace", "cgroup_array", "sockmap", "xskmap", "sockhash", "reuseport_sockarray", "ringbuf", "user_ringbuf", "arena",
      ]);
      fails({ mapType: "perf_event_array", freeze: true }, /^freeze: perf_event_array cannot be frozen: its values are fds that user space writes while programs run; a frozen map refuses every user-space write/);
      fails({ mapType: "ringbuf", maxEntries: 4096, freeze: true }, /^freeze: ringbuf cannot be frozen: user space reads or writes it through a writable mmap, which the kernel refuses on a frozen map \(EPERM\)$/);
      fails({ mapType: "stack_trace", valueSize: 8, maxEntries: 4, freeze: true }, /^freeze: stack_trace cannot be frozen: the kernel writes it/);
      // freeze: false is always fine, and so is freeze on maps whose contents are declared.
      assert.equal(check({ mapType: "perf_event_array", freeze: false }).freeze, false);
      assert.equal(check({ mapType: "queue", valueSize: 4, maxEntries: 2, freeze: true, contents: [{ value: "00000001" }] }).freeze, true);
      assert.equal(check({ mapType: "array", keyType: "u32", valueType: "u32", maxEntries: 2, freeze: true }).freeze, true);
      assert.equal(check({ mapType: "bloom_filter", valueSize: 4, maxEntries: 2, freeze: true }).freeze, true);
    });

    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["hash key > 0", { mapType: "hash", keySize: 0, valueSize: 4, maxEntries: 1 }, /^keySize: hash needs key size ≥ 1, not 0$/],
      ["hash value > 0", { mapType: "hash", keySize: 4, valueSize: 0, maxEntries: 1 }, /^valueSize: hash needs value size ≥ 1, not 0$/],
      ["hash max_entries > 0", { mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 0 }, /^maxEntries: hash needs maxEntries ≥ 1, not 0$/],
      ["hash key+value limit", { mapType: "hash", keySize: 8, valueSize: 4194251, maxEntries: 1 }, /^valueSize: hash needs keySize \+ valueSize ≤ 4194255/],
      ["percpu value ≤ 32768", { mapType: "percpu_hash", keySize: 4, valueSize: 32769, maxEntries: 1 }, /^valueSize: percpu_hash needs value size 1\.\.32768, not 32769$/],
      ["percpu_array value ≤ 32768", { mapType: "percpu_array", valueSize: 32769, maxEntries: 1 }, /^valueSize: percpu_array needs value size 1\.\.32768/],
      ["lru no_prealloc", { mapType: "lru_percpu_hash", keySize: 4, valueSize: 4, maxEntries: 1, flags: ["no_prealloc"] }, /^flags\[0\]: lru_percpu_hash does not accept no_prealloc \(LRU maps/],
      ["array key 4", { mapType: "array", keySize: 8, valueSize: 4, maxEntries: 1 }, /^keySize: array needs key size exactly 4, not 8$/],
      ["array no_prealloc", { mapType: "array", valueSize: 4, maxEntries: 1, flags: ["no_prealloc"] }, /^flags\[0\]: array does not accept no_prealloc \(it is always preallocated\)/],
      ["lpm needs no_prealloc", { mapType: "lpm_trie", keySize: 8, valueSize: 4, maxEntries: 1 }, /^flags: lpm_trie requires no_prealloc$/],
      ["lpm key ≥ 5", { mapType: "lpm_trie", keySize: 4, valueSize: 4, maxEntries: 1, flags: ["no_prealloc"] }, /^keySize: lpm_trie needs key size 5\.\.260, not 4$/],
      ["lpm key ≤ 260", { mapType: "lpm_trie", keySize: 261, valueSize: 4, maxEntries: 1, flags: ["no_prealloc"] }, /^keySize: lpm_trie needs key size 5\.\.260, not 261$/],
      ["of_maps value 4", { mapType: "hash_of_maps", keySize: 4, valueSize: 8, maxEntries: 1, innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 } }, /^valueSize: hash_of_maps needs value size exactly 4, not 8$/],
      ["of_maps innerMap", { mapType: "array_of_maps", maxEntries: 1 }, /^innerMap: is required for array_of_maps/],
      ["inner map rules", { mapType: "array_of_maps", maxEntries: 1, innerMap: { mapType: "array", keySize: 8, valueSize: 4, maxEntries: 1 } }, /^innerMap\.keySize: array needs key size exactly 4, not 8$/],
      ["inner map not of_maps", { mapType: "array_of_maps", maxEntries: 1, innerMap: { mapType: "hash_of_maps", maxEntries: 1 } }, /^innerMap\.mapType: an inner map cannot itself hold maps/],
      ["inner map supported", { mapType: "array_of_maps", maxEntries: 1, innerMap: { mapType: "prog_array", maxEntries: 1 } }, /^innerMap\.mapType: prog_array is not supported/],
      ["inner map flags", { mapType: "array_of_maps", maxEntries: 1, innerMap: { mapType: "array", valueSize: 4, maxEntries: 1, flags: ["zero_seed"] } }, /^innerMap\.flags\[0\]: array does not accept zero_seed/],
      ["innerMap only for of_maps", { mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1, innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 } }, /^innerMap: only array_of_maps and hash_of_maps/],
      ["of_maps valueType", { mapType: "array_of_maps", maxEntries: 1, valueType: "u32", innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 } }, /^valueType: must be omitted for array_of_maps/],
      ["queue key 0", { mapType: "queue", keySize: 4, valueSize: 4, maxEntries: 1 }, /^keySize: queue needs key size exactly 0, not 4$/],
      ["stack value > 0", { mapType: "stack", valueSize: 0, maxEntries: 1 }, /^valueSize: stack needs value size 1\.\.4194304, not 0$/],
      ["bloom mapExtra ≤ 15", { mapType: "bloom_filter", valueSize: 4, maxEntries: 1, mapExtra: 16 }, /^mapExtra: bloom_filter takes 0\.\.15 hash functions/],
      ["mapExtra elsewhere", { mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1, mapExtra: 1 }, /^mapExtra: only bloom_filter \(hash count\) and arena \(address\) take mapExtra/],
      ["ringbuf power of two", { mapType: "ringbuf", maxEntries: 12288 }, /^maxEntries: ringbuf needs maxEntries a power of two and a multiple of the page size \(4096\), not 12288$/],
      ["ringbuf page multiple", { mapType: "user_ringbuf", maxEntries: 2048 }, /^maxEntries: user_ringbuf needs maxEntries ≥ 4096, not 2048$/],
      ["ringbuf value 0", { mapType: "ringbuf", valueSize: 4, maxEntries: 4096 }, /^valueSize: ringbuf needs value size exactly 0, not 4$/],
      ["ringbuf no flags", { mapType: "ringbuf", maxEntries: 4096, flags: ["rdonly_prog"] }, /^flags\[0\]: ringbuf does not accept rdonly_prog$/],
      ["perf key 4", { mapType: "perf_event_array", keySize: 8 }, /^keySize: perf_event_array needs key size exactly 4, not 8$/],
      ["devmap value 4 or 8", { mapType: "devmap", valueSize: 12, maxEntries: 1 }, /^valueSize: devmap needs value size 4 or 8, not 12$/],
      ["devmap rdonly_prog is the kernel's", { mapType: "devmap_hash", maxEntries: 1, flags: ["rdonly_prog"] }, /^flags\[0\]: devmap_hash does not accept rdonly_prog \(the kernel sets it by itself/],
      ["cpumap ≤ NR_CPUS", { mapType: "cpumap", maxEntries: 257 }, /^maxEntries: cpumap needs maxEntries ≤ 256 \(the kernel's NR_CPUS\), not 257$/],
      ["xskmap value 4", { mapType: "xskmap", valueSize: 8, maxEntries: 1 }, /^valueSize: xskmap needs value size exactly 4, not 8$/],
      ["sockhash value 4 or 8", { mapType: "sockhash", keySize: 4, valueSize: 2, maxEntries: 1 }, /^valueSize: sockhash needs value size 4 or 8, not 2$/],
      ["sockhash key ≤ 512", { mapType: "sockhash", keySize: 513, maxEntries: 1 }, /^keySize: sockhash needs key size 1\.\.512, not 513$/],
      ["arena mmapable", { mapType: "arena", maxEntries: 1 }, /^flags: arena requires mmapable$/],
      ["arena pages", { mapType: "arena", maxEntries: 1048577, flags: ["mmapable"] }, /^maxEntries: arena needs maxEntries ≤ 1048576, not 1048577$/],
      ["arena address", { mapType: "arena", maxEntries: 1, flags: ["mmapable"], mapExtra: "0x100000001" }, /^mapExtra: arena needs a page-aligned address/],
      ["arena numa", { mapType: "arena", maxEntries: 1, flags: ["mmapable"], numaNode: 0 }, /^numaNode: arena does not take a NUMA node/],
      ["percpu numa", { mapType: "percpu_array", valueSize: 4, maxEntries: 1, numaNode: 0 }, /^numaNode: percpu_array does not take a NUMA node/],
      ["numa_node flag needs numaNode", { mapType: "queue", valueSize: 4, maxEntries: 1, flags: ["numa_node"] }, /^flags\[0\]: numa_node is implied by numaNode; set numaNode instead$/],
      ["rdonly_prog vs wronly_prog", { mapType: "queue", valueSize: 4, maxEntries: 1, flags: ["rdonly_prog", "wronly_prog"] }, /^flags: rdonly_prog and wronly_prog exclude each other$/],
      ["stack_trace value multiple of 8", { mapType: "stack_trace", valueSize: 12, maxEntries: 1 }, /^valueSize: stack_trace needs value size a multiple of 8/],
      ["stack_trace build id", { mapType: "stack_trace", valueSize: 40, maxEntries: 1, flags: ["stack_build_id"] }, /^valueSize: stack_trace needs value size a multiple of 32 .* up to 4064/],
      ["stack_trace frames", { mapType: "stack_trace", valueSize: 1024, maxEntries: 1 }, /up to 1016 \(perf_event_max_stack frames\), not 1024$/],
      ["cgroup_array value 4", { mapType: "cgroup_array", valueSize: 8, maxEntries: 1 }, /^valueSize: cgroup_array needs value size exactly 4, not 8$/],
      ["reuseport value 4 or 8", { mapType: "reuseport_sockarray", valueSize: 2, maxEntries: 1 }, /^valueSize: reuseport_sockarray needs value size 4 or 8, not 2$/],
      ["name charset", { mapType: "queue", valueSize: 4, maxEntries: 1, name: "a-b" }, /^name: may only contain \[A-Za-z0-9_\.\]$/],
      ["unknown flag", { mapType: "queue", valueSize: 4, maxEntries: 1, flags: ["bogus"] }, /^flags\[0\]: is not a map flag/],
      ["undeclarable flag", { mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1, flags: ["token_fd"] }, /^flags\[0\]: token_fd is a BPF token argument/],
      ["permissions mode", { mapType: "queue", valueSize: 4, maxEntries: 1, permissions: { mode: "0999" } }, /^permissions\.mode: must be an integer 0\.\.0o7777 or an octal string/],
      ["permissions uid", { mapType: "queue", valueSize: 4, maxEntries: 1, permissions: { uid: -1 } }, /^permissions\.uid: must be ≥ 0$/],
      ["contentsPolicy", { mapType: "queue", valueSize: 4, maxEntries: 1, contentsPolicy: "sync" }, /^contentsPolicy: must be "exact" or "merge"$/],
      ["ifExists", { mapType: "queue", valueSize: 4, maxEntries: 1, ifExists: "overwrite" }, /^ifExists: must be "fail", "adopt" or "replace"$/],
      ["numaNode integer", { mapType: "queue", valueSize: 4, maxEntries: 1, numaNode: -1 }, /^numaNode: must be ≥ 0$/],
      ["codec fits size", { mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 1, keyType: "u64" }, /^keyType: u64 needs a size of 8 bytes, not 4$/],
      ["keyType for queue", { mapType: "queue", valueSize: 4, maxEntries: 1, keyType: "u32" }, /^keyType: queue has no keys \(key size 0\)$/],
    ];
    for (const [name, input, re] of cases) it(name, () => fails(input, re));
  });

  describe("contents rules", () => {
    it("refuses contents where values are fds or streams, with the reason", () => {
      for (const [t, why] of [["sockmap", /socket fds/], ["xskmap", /AF_XDP/], ["perf_event_array", /perf event fds/], ["ringbuf", /stream/], ["stack_trace", /written by the kernel/], ["arena", /memory pages/]] as const) {
        fails({ mapType: t, ...MINIMAL[t], contents: [{ key: "00000000", value: "00000000" }] }, new RegExp(`^contents: ${t} cannot have declared contents: .*${why.source}`));
      }
    });
    it("requires keys for keyed maps and refuses them for queues", () => {
      fails({ mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 2, contents: [{ value: "00000000" }] }, /^contents\[0\]\.key: is required for hash$/);
      fails({ mapType: "queue", valueSize: 4, maxEntries: 2, contents: [{ key: "00", value: "00000000" }] }, /^contents\[0\]\.key: queue entries have no key/);
      fails({ mapType: "queue", valueSize: 4, maxEntries: 2, valueType: "u32", contents: [{ value: 1 }, { value: 2 }, { value: 3 }] }, /^contents: 3 entries exceed maxEntries 2$/);
    });
    it("checks array indexes against maxEntries", () => {
      fails({ mapType: "array", valueSize: 4, maxEntries: 4, keyType: "u32", contents: [{ key: 4, value: "00000000" }] }, /^contents\[0\]\.key: index 4 is beyond the array \(maxEntries 4\)$/);
      fails({ mapType: "devmap", maxEntries: 4, contents: [{ key: "04000000", value: "01000000" }] }, /^contents\[0\]\.key: index 4 is beyond/);
    });
    it("takes perCpuValues only for per-CPU maps, one of value/perCpuValues", () => {
      fails({ mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 2, contents: [{ key: "00000000", perCpuValues: ["00000000", "00000000"] }] }, /^contents\[0\]\.perCpuValues: only per-CPU maps take perCpuValues; hash takes value$/);
      fails({ mapType: "percpu_hash", keySize: 4, valueSize: 4, maxEntries: 2, valueType: "u32", contents: [{ key: "00000000", value: 1, perCpuValues: [1, 2] }] }, /^contents\[0\]: give value or perCpuValues, not both$/);
      fails({ mapType: "percpu_hash", keySize: 4, valueSize: 4, maxEntries: 2, contents: [{ key: "00000000" }] }, /^contents\[0\]\.value: is required \(or perCpuValues\)$/);
      fails({ mapType: "percpu_hash", keySize: 4, valueSize: 4, maxEntries: 2, valueType: "u32", contents: [{ key: "00000000", perCpuValues: [1] }] }, /^contents\[0\]\.perCpuValues: has 1 values; this host has 2 possible CPUs$/);
    });
    it("takes pin paths as *_of_maps values", () => {
      const s = check({ mapType: "array_of_maps", maxEntries: 2, keyType: "u32", innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 }, contents: [{ key: 1, value: "/sys/fs/bpf/inner" }] });
      assert.deepEqual(encodeContents(s), [{ key: Buffer.from("01000000", "hex"), value: "/sys/fs/bpf/inner", index: 0 }]);
      fails({ mapType: "array_of_maps", maxEntries: 2, innerMap: { mapType: "array", valueSize: 4, maxEntries: 1 }, contents: [{ key: "00000000", value: "inner" }] }, /^contents\[0\]\.value: must be the pin path of the inner map: "inner" is not an absolute path$/);
    });
    it("detects duplicates after encoding (1 vs \"1\")", () => {
      fails({ mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 4, keyType: "u32", contents: [{ key: 1, value: "00000000" }, { key: "1", value: "00000000" }] }, /^contents\[1\]\.key: duplicates contents\[0\]\.key/);
    });
  });

  describe("canonical contents", () => {
    it("canonical notation and key order (numeric for integers)", () => {
      const s = check({
        mapType: "hash", keySize: 4, valueSize: 8, maxEntries: 8, keyType: "u32", valueType: "u64",
        contents: [{ key: 256, value: 1 }, { key: "0x2", value: "18446744073709551615" }, { key: "0", value: 0 }],
      });
      assert.deepEqual(canonicalContents(s), [
        { key: 0, value: "0" }, { key: 2, value: "18446744073709551615" }, { key: 256, value: "1" },
      ]);
      assert.deepEqual(encodeContents(s).map((e) => e.index), [2, 1, 0]);
    });
    it("lpm keys by address then prefix", () => {
      const s = check({
        mapType: "lpm_trie", keySize: 8, valueSize: 4, maxEntries: 8, flags: ["no_prealloc"], keyType: "lpm_ipv4", valueType: "u32",
        contents: [{ key: "10.0.0.0/16", value: 2 }, { key: "10.0.0.0/8", value: 1 }, { key: "0.0.0.0/0", value: 0 }],
      });
      assert.deepEqual(canonicalContents(s).map((e) => e.key), ["0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/16"]);
    });
    it("keeps queue order and per-CPU forms", () => {
      const q = check({ mapType: "queue", valueSize: 2, maxEntries: 4, valueType: "u16", contents: [{ value: 3 }, { value: "1" }, { value: 2 }] });
      assert.deepEqual(canonicalContents(q), [{ value: 3 }, { value: 1 }, { value: 2 }]);
      assert.equal(encodeContents(q)[0]!.key, null);
      const p = check({ mapType: "percpu_array", valueSize: 4, maxEntries: 4, keyType: "u32", valueType: "u32", contents: [{ key: 1, perCpuValues: [5, 5] }, { key: 0, perCpuValues: [1, 2] }] });
      assert.deepEqual(canonicalContents(p), [{ key: 0, perCpuValues: [1, 2] }, { key: 1, value: 5 }]);
      assert.equal((encodeContents(p)[0]!.value as Buffer).length, 16);
    });
  });

  describe("kernelAdjusted", () => {
    it("adds the kernel's own flags and rounds no_common_lru", () => {
      const d = kernelAdjusted(check({ mapType: "devmap", maxEntries: 4, numaNode: 0 }), HOST);
      assert.equal(d.mapFlags, MAP_FLAGS.rdonly_prog | MAP_FLAGS.numa_node);
      assert.equal(d.typeId, 14);
      const l = kernelAdjusted(check({ mapType: "lru_hash", keySize: 4, valueSize: 4, maxEntries: 3, flags: ["no_common_lru"] }), HOST);
      assert.equal(l.maxEntries, 4);
      assert.equal(l.mapFlags, MAP_FLAGS.no_common_lru);
      assert.equal(kernelAdjusted(check({ mapType: "perf_event_array" }), HOST).maxEntries, 2);
      assert.equal(kernelAdjusted(check({ mapType: "bloom_filter", valueSize: 4, maxEntries: 1, mapExtra: 3 }), HOST).mapExtra, 3);
    });
  });

  describe("flags and CPUs", () => {
    it("maps names to bits and back, keeping unknown bits", () => {
      assert.equal(flagsToMask(["no_prealloc", "mmapable"]), 0x401);
      assert.deepEqual(maskToFlags(0x80 | 0x100000 | 0x80000000), ["rdonly_prog", "0x100000", "0x80000000"]);
      assert.equal(MAP_FLAGS.no_user_conv, 1 << 18);
      assert.throws(() => flagsToMask(["nope"]), /unknown map flag/);
    });
    it("parses CPU lists", () => {
      assert.equal(parseCpuList("0-1\n"), 2);
      assert.equal(parseCpuList("0,2-5"), 5);
      assert.equal(parseCpuList("0"), 1);
      assert.throws(() => parseCpuList("x"), /bad CPU list/);
    });
  });
});
