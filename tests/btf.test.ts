// BTF-typed maps against the real kernel: the binding's BTF commands, BTF
// encoded from every codec and read back (bpftool as the independent reader
// of field names), the `btf` input and bpf_spin_lock rules, BTF in the ABI
// compare (what rebuilds a map and what does not), and codecs derived from a
// live map's BTF. BPF programs reading these maps are in btf-consumer.test.ts.
import assert from "node:assert/strict";
import * as path from "node:path";

import * as native from "../native/index";
import {
  checkSpec, compareAbi, createPinnedMap, effectiveBtf, declaredDigest, deletePinnedMap, observePinnedMap, specOfLiveMap,
  recreateReasons, updatePinnedMap, isEbpfError, SpecError, type CodecDecl, type MapSpec,
} from "../provider/core";
import { BtfTypes, deriveCodec, encodeMapBtf } from "../provider/core/btf";
import { readLiveBtf } from "../provider/core/btfmap";
import { provider } from "../provider/dynamic/index";
import { SCALAR_CODECS } from "../provider/core/codecs";
import { createKernelMap, elementFlags, openPinned } from "../provider/core/map";
import { usePrivateBpffs } from "./fixtures/bpffs";
import { bpftoolJson } from "./fixtures/bpftool";

const FEATURE: CodecDecl = { struct: [{ name: "enabled", type: "u8" }, { name: "rateLimitPps", type: "u32" }] };
const COUNTER: CodecDecl = { struct: [{ name: "lock", type: "bpf_spin_lock" }, { name: "hits", type: "u64" }] };

// The failures of a spec that must not check, as "path: rule" lines.
function failuresOf(input: Record<string, unknown>): string[] {
  try {
    checkSpec(input, { pinLocation: false });
  } catch (error) {
    assert.ok(error instanceof SpecError, String(error));
    return error.failures.map((failure) => `${failure.path}: ${failure.rule}`);
  }
  assert.fail("the spec checked");
}

// A map's live BTF, parsed, with its key and value type IDs.
function liveBtfOf(pinPath: string) {
  const map = openPinned(pinPath, "ro");
  try {
    return readLiveBtf(map.info, pinPath);
  } finally {
    map.close();
  }
}

describe("BTF-typed maps", function () {
  this.timeout(60_000);
  const bpffs = usePrivateBpffs();

  describe("binding", () => {
    const blob = encodeMapBtf({ decl: "u32", size: 4 }, { decl: FEATURE, size: 8 });

    it("BPF_BTF_LOAD returns a BTF fd whose raw bytes read back (BTF_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD) are ours", () => {
      const btf = native.loadBtf(blob.data);
      try {
        const info = btf.info();
        assert.ok(info.id > 0);
        assert.equal(info.btfSize, blob.data.length);
        assert.equal(info.kernelBtf, false);
        const again = native.openBtfById(info.id);
        try {
          assert.deepEqual(again.readRaw(), blob.data);
        } finally {
          again.close();
        }
      } finally {
        btf.close();
      }
      assert.throws(() => native.openBtfById(0x7fffffff), (error: unknown) => native.isBpfError(error, "ENOENT") && (error as native.BpfError).command === "BPF_BTF_GET_FD_BY_ID");
    });

    it("a malformed blob is EINVAL with the verifier's log", () => {
      const bad = Buffer.from(blob.data);
      bad.writeUInt32LE(0x7f000000, 24 + 4); // type 1's info: an unknown kind
      assert.throws(() => native.loadBtf(bad), (error: unknown) => {
        assert.ok(native.isBpfError(error, "EINVAL"));
        const log = (error as native.BtfLoadError).log;
        assert.match(log, /\[1\] Invalid btf_info/);
        assert.match((error as Error).message, /BPF_BTF_LOAD: EINVAL .*Invalid btf_info/);
        return true;
      });
    });

    it("BPF_MAP_CREATE with btfFd and type IDs: the map reports them; a value type of the wrong size is EINVAL", () => {
      const btf = native.loadBtf(blob.data);
      try {
        const map = native.createMap({
          mapType: 2, keySize: 4, valueSize: 8, maxEntries: 2,
          btfFd: btf.fd, btfKeyTypeId: blob.keyTypeId, btfValueTypeId: blob.valueTypeId,
        }, native.plainValueBytes);
        assert.equal(map.info.btfId, btf.info().id);
        assert.equal(map.info.btfKeyTypeId, blob.keyTypeId);
        assert.equal(map.info.btfValueTypeId, blob.valueTypeId);
        map.close();
        assert.throws(() => native.createMap({
          mapType: 2, keySize: 4, valueSize: 16, maxEntries: 2,
          btfFd: btf.fd, btfKeyTypeId: blob.keyTypeId, btfValueTypeId: blob.valueTypeId,
        }, native.plainValueBytes), (error: unknown) => native.isBpfError(error, "EINVAL"));
      } finally {
        btf.close();
      }
      const plain = native.createMap({ mapType: 2, keySize: 4, valueSize: 8, maxEntries: 2 }, native.plainValueBytes);
      assert.equal(plain.info.btfId, 0);
      plain.close();
    });

    it("BPF_F_LOCK on elements and batches: accepted where the value has a bpf_spin_lock, EINVAL where not", () => {
      const locked = encodeMapBtf({ decl: "u32", size: 4 }, { decl: COUNTER, size: 16 });
      const btf = native.loadBtf(locked.data);
      const map = native.createMap({
        mapType: 1, keySize: 4, valueSize: 16, maxEntries: 8,
        btfFd: btf.fd, btfKeyTypeId: locked.keyTypeId, btfValueTypeId: locked.valueTypeId,
      }, native.plainValueBytes);
      btf.close();
      const plain = native.createMap({ mapType: 1, keySize: 4, valueSize: 16, maxEntries: 8 }, native.plainValueBytes);
      try {
        const key = Buffer.from([7, 0, 0, 0]);
        const value = Buffer.alloc(16);
        value.writeUInt32LE(0xdeadbeef, 0); // the lock word: the kernel never copies it in
        value.writeBigUInt64LE(41n, 8);
        map.update(key, value, native.BPF_ANY | native.BPF_F_LOCK);
        const back = map.lookup(key, native.BPF_F_LOCK)!;
        assert.equal(back.readUInt32LE(0), 0);
        assert.equal(back.readBigUInt64LE(8), 41n);
        const keys = Buffer.from([1, 0, 0, 0, 2, 0, 0, 0]);
        assert.equal(map.updateBatch(keys, Buffer.alloc(32, 1), 2, native.BPF_F_LOCK), 2);
        const out = { keys: Buffer.alloc(8 * 4), values: Buffer.alloc(8 * 16) };
        const result = map.lookupBatch(null, Buffer.alloc(8), out.keys, out.values, 8, native.BPF_F_LOCK);
        assert.equal(result.count, 3);
        for (let i = 0; i < 3; i++) assert.equal(out.values.readUInt32LE(i * 16), 0, "lock words read as zero");
        assert.throws(() => plain.update(key, value, native.BPF_F_LOCK), (error: unknown) => native.isBpfError(error, "EINVAL"));
        assert.throws(() => plain.lookupBatch(null, Buffer.alloc(8), out.keys, out.values, 8, native.BPF_F_LOCK), (error: unknown) => native.isBpfError(error, "EINVAL"));
      } finally {
        map.close();
        plain.close();
      }
    });
  });

  describe("BTF from codecs", () => {
    // What a live map's BTF reads back as, for each codec we encode (as a hash value).
    const derivedFrom: Partial<Record<(typeof SCALAR_CODECS)[number], CodecDecl>> = {
      ipv4: "u32be",
      ipv6: "hex",
      mac: "hex",
      lpm_ipv4: { struct: [{ name: "prefixlen", type: "u32" }, { name: "data", type: "hex", size: 4 }] },
      lpm_ipv6: { struct: [{ name: "prefixlen", type: "u32" }, { name: "data", type: "hex", size: 16 }] },
    };

    it("every codec but hex has a BTF form the kernel takes, and reads back as itself or its C shape", () => {
      const dir = bpffs().dir("codecs");
      for (const codec of SCALAR_CODECS) {
        if (codec === "hex" || codec === "bpf_spin_lock") continue;
        const pinPath = path.join(dir, codec);
        const spec = checkSpec({ pinPath, mapType: "hash", keyType: "u32", valueType: codec, maxEntries: 4, ...(codec === "string" && { valueSize: 12 }) });
        const { mapId } = createPinnedMap(spec);
        const btf = liveBtfOf(pinPath);
        assert.ok(btf, `${codec}: the map has BTF`);
        assert.deepEqual(deriveCodec(btf.types, btf.valueTypeId), derivedFrom[codec] ?? codec, codec);
        assert.equal(deriveCodec(btf.types, btf.keyTypeId), "u32");
        assert.deepEqual(compareAbi(spec, openPinned(pinPath, "ro").info), [], `${codec}: our own map compares equal`);
        deletePinnedMap(pinPath, mapId);
      }
    });

    it("bpftool map dump shows the declared field names and values (nested structs, strings, lpm keys)", () => {
      const dir = bpffs().dir("dump");
      const pinPath = path.join(dir, "policy");
      const valueType: CodecDecl = { struct: [
        { name: "name", type: "string", size: 8 },
        { name: "limits", type: { struct: [{ name: "pps", type: "u32" }, { name: "burst", type: "u16" }] } },
        { name: "weight", type: "i8" },
      ] };
      createPinnedMap(checkSpec({ pinPath, mapType: "hash", keyType: "u32", valueType, maxEntries: 4,
        contents: [{ key: 3, value: { name: "gold", limits: { pps: 1000, burst: 64 }, weight: -2 } }] }));
      const dump = bpftoolJson<{ formatted: { key: number; value: unknown } }[]>("map", "dump", "pinned", pinPath);
      assert.deepEqual(dump.map((entry) => entry.formatted), [{ key: 3, value: { name: "gold", limits: { pps: 1000, burst: 64 }, weight: -2 } }]);

      const routes = path.join(dir, "routes");
      createPinnedMap(checkSpec({ pinPath: routes, mapType: "lpm_trie", keyType: "lpm_ipv4", valueType: "u32", maxEntries: 8, flags: ["no_prealloc"],
        contents: [{ key: "10.0.0.0/8", value: 2 }] }));
      const routeDump = bpftoolJson<{ formatted: { key: { prefixlen: number; data: number[] }; value: number } }[]>("map", "dump", "pinned", routes);
      assert.deepEqual(routeDump.map((entry) => entry.formatted), [{ key: { prefixlen: 8, data: [10, 0, 0, 0] }, value: 2 }]);
      assert.deepEqual(specOfLiveMap(routes)!.spec!.keyType, "lpm_ipv4", "an lpm key of the bpf_lpm_trie_key shape derives as lpm_ipv4");
    });

    it("btf defaults to true where every codec has a BTF form, false for hex; false and true are honoured", () => {
      const dir = bpffs().dir("defaults");
      const cases: [string, Record<string, unknown>, boolean][] = [
        ["typed", { keyType: "u32", valueType: FEATURE }, true],
        ["hexvalue", { keyType: "u32", valueSize: 8 }, false],
        ["hexkey", { keySize: 4, valueType: "u64" }, false],
        ["optout", { keyType: "u32", valueType: FEATURE, btf: false }, false],
        ["devmap", { mapType: "devmap", keyType: "u32", valueType: "u32" }, false],
        ["lpmint", { mapType: "lpm_trie", flags: ["no_prealloc"], keyType: "u64", valueType: "u32" }, false],
        ["lpmstruct", { mapType: "lpm_trie", flags: ["no_prealloc"], keyType: { struct: [{ name: "prefixlen", type: "u32" }, { name: "port", type: "u16be" }] }, valueType: "u32" }, true],
      ];
      for (const [name, extra, hasBtf] of cases) {
        const pinPath = path.join(dir, name);
        const { mapId } = createPinnedMap(checkSpec({ pinPath, mapType: "hash", maxEntries: 4, ...extra }));
        assert.equal(openPinned(pinPath, "ro").info.btfId !== 0, hasBtf, name);
        deletePinnedMap(pinPath, mapId);
      }
    });

    it("btf: true where a codec or the map type has no BTF form fails check naming the property", () => {
      const base = { pinPath: "/sys/fs/bpf/t/m", mapType: "hash", maxEntries: 4, btf: true };
      assert.deepEqual(failuresOf({ ...base, keyType: "hex", keySize: 4, valueType: "u32" }),
        ["keyType: hex has no BTF form (declare a typed codec, or set btf: false); btf is true"]);
      assert.deepEqual(failuresOf({ ...base, mapType: "devmap", keyType: "u32", valueType: "u32" }),
        ["btf: devmap maps cannot carry BTF (the kernel refuses BTF for them); btf is true"]);
      assert.deepEqual(failuresOf({ ...base, mapType: "array", keyType: { struct: [{ name: "index", type: "u32" }] }, valueType: "u32" }),
        ["keyType: the BTF key of array must be an integer (u32); a struct has none; btf is true"]);
      assert.deepEqual(failuresOf({ ...base, btf: "yes", keyType: "u32", valueType: "u32" }), ["btf: must be a boolean"]);
      assert.deepEqual(failuresOf({ ...base, mapType: "lpm_trie", flags: ["no_prealloc"], keyType: "u64", valueType: "u32" }),
        ["keyType: the BTF key of lpm_trie must be a struct (lpm_ipv4, lpm_ipv6 or { struct }); u64 is none; btf is true"]);
      // BTF structs have at most 65535 members: a wider one has no BTF form (and defaults to none).
      const wide = { struct: Array.from({ length: 65536 }, (_, i) => ({ name: `f${i}`, type: "u8" })) };
      assert.deepEqual(failuresOf({ ...base, keyType: "u32", valueType: wide }),
        ["valueType: a struct of 65536 fields has no BTF form (BTF has at most 65535 per struct); btf is true"]);
      assert.equal(effectiveBtf(checkSpec({ ...base, btf: undefined, keyType: "u32", valueType: wide }, { pinLocation: false })), false);
    });

    it("a kernel refusal of the BTF blob names the declaration and the verifier's reason", () => {
      const blob = encodeMapBtf({ decl: "u32", size: 4 }, { decl: { struct: [{ name: "a", type: "u32" }, { name: "b", type: "u64" }] }, size: 16 });
      const types = new BtfTypes(blob.data);
      // Point member b of the value struct at a type that does not exist.
      let offset = 24;
      for (let id = 1; id < blob.valueTypeId; id++) {
        const type = types.get(id);
        offset += 12 + (type.kind === 1 ? 4 : type.kind === 3 ? 12 : type.kind === 4 ? 12 * type.members!.length : 0);
      }
      const data = Buffer.from(blob.data);
      data.writeUInt32LE(999, offset + 12 + 12 + 4);
      assert.throws(() => createKernelMap({ mapType: 1, keySize: 4, valueSize: 16, maxEntries: 4, mapFlags: 0, btf: { ...blob, data } }, "/sys/fs/bpf/x"),
        (error: unknown) => {
          assert.ok(isEbpfError(error, "Kernel"));
          assert.match(error.message, /create map \/sys\/fs\/bpf\/x \(BPF_BTF_LOAD\) failed with EINVAL: the kernel refused the BTF of valueType \(b type_id=999 .*Invalid member\); set btf: false/);
          return true;
        });
    });
  });

  describe("spin locks", () => {
    it("rules: a value struct field of a hash or array map with BTF, at most one, never given a value", () => {
      const base = { pinPath: "/sys/fs/bpf/t/m", mapType: "hash", keyType: "u32", maxEntries: 4 };
      assert.deepEqual(failuresOf({ ...base, keyType: { struct: [{ name: "l", type: "bpf_spin_lock" }] }, valueType: "u32" }),
        ["keyType.struct[0].type: a bpf_spin_lock belongs in a value struct, not in a key"]);
      assert.deepEqual(failuresOf({ ...base, valueType: "bpf_spin_lock" }),
        ["valueType: a bpf_spin_lock must be a field of the value struct itself (not the value, not a nested struct)"]);
      assert.deepEqual(failuresOf({ ...base, valueType: { struct: [{ name: "inner", type: COUNTER }] } }),
        ["valueType.struct[0].type.struct[0].type: a bpf_spin_lock must be a field of the value struct itself (not the value, not a nested struct)"]);
      assert.deepEqual(failuresOf({ ...base, valueType: { struct: [{ name: "a", type: "bpf_spin_lock" }, { name: "b", type: "bpf_spin_lock" }] } }),
        ["valueType.struct[1].type: a value has at most one bpf_spin_lock"]);
      assert.deepEqual(failuresOf({ ...base, mapType: "percpu_hash", valueType: COUNTER }),
        ["valueType.struct[0].type: a bpf_spin_lock needs a hash or array map (the kernel refuses it in percpu_hash)"]);
      assert.deepEqual(failuresOf({ ...base, valueType: COUNTER, btf: false }),
        ["btf: a value with a bpf_spin_lock needs btf (the kernel finds the lock through the map's BTF)"]);
      assert.deepEqual(failuresOf({ ...base, valueType: { struct: [{ name: "lock", type: "bpf_spin_lock" }, { name: "raw", type: "hex", size: 4 }] }, keyType: "hex", keySize: 4 }),
        ["keyType: hex has no BTF form (declare a typed codec, or set btf: false); a bpf_spin_lock needs BTF"]);
      assert.deepEqual(failuresOf({ ...base, valueType: COUNTER, flags: ["rdonly_prog"] }),
        ["flags: rdonly_prog and wronly_prog do not go with a bpf_spin_lock (programs must read and write the lock; the kernel answers EACCES)"]);
      assert.deepEqual(failuresOf({ ...base, mapType: "array", valueType: COUNTER, freeze: true }),
        ["freeze: a map whose value has a bpf_spin_lock cannot be frozen (the kernel answers ENOTSUPP)"]);
      assert.deepEqual(failuresOf({ ...base, valueType: COUNTER, contents: [{ key: 1, value: { lock: 1, hits: 2 } }] }),
        ["contents[0].value.lock: 1: a bpf_spin_lock field is the kernel's lock word; leave it out of the value"]);
    });

    it("a map with a lock: created with BTF, read and written with BPF_F_LOCK, the lock never in contents or digest", () => {
      const dir = bpffs().dir("locks");
      const pinPath = path.join(dir, "counters");
      const spec = checkSpec({ pinPath, mapType: "hash", keyType: "u32", valueType: COUNTER, maxEntries: 16, contents: [{ key: 7, value: { hits: 41 } }, { key: 8, value: { hits: 1 } }] });
      const created = createPinnedMap(spec);
      assert.deepEqual(created.contents, [{ key: 7, value: { hits: "41" } }, { key: 8, value: { hits: "1" } }]);
      assert.equal(created.contentsDigest, declaredDigest(spec));
      const map = openPinned(pinPath, "ro");
      try {
        assert.equal(elementFlags(map), native.BPF_F_LOCK);
      } finally {
        map.close();
      }
      const dump = bpftoolJson<{ formatted: { key: number; value: { lock: { val: number }; hits: number } } }[]>("map", "dump", "pinned", pinPath);
      assert.deepEqual(dump.map((entry) => entry.formatted).sort((a, b) => a.key - b.key), [
        { key: 7, value: { lock: { val: 0 }, hits: 41 } }, { key: 8, value: { lock: { val: 0 }, hits: 1 } },
      ]);
      const next = checkSpec({ ...spec, contents: [{ key: 7, value: { hits: 50 } }] });
      const updated = updatePinnedMap(spec, next, created.mapId);
      assert.equal(updated.mapId, created.mapId, "a delta, in place");
      assert.deepEqual(updated.contents, [{ key: 7, value: { hits: "50" } }]);
      const plain = openPinned(path.join(dir, "counters"), "ro");
      plain.close();
      const noLock = path.join(dir, "plain");
      createPinnedMap(checkSpec({ pinPath: noLock, mapType: "hash", keyType: "u32", valueType: FEATURE, maxEntries: 4 }));
      const other = openPinned(noLock, "ro");
      try {
        assert.equal(elementFlags(other), 0, "no lock, no BPF_F_LOCK (the kernel would refuse it)");
      } finally {
        other.close();
      }
    });
  });

  describe("ABI", () => {
    const declare = (pinPath: string, extra: Record<string, unknown> = {}): MapSpec =>
      checkSpec({ pinPath, mapType: "array", keyType: "u32", valueType: FEATURE, maxEntries: 4, contents: [{ key: 1, value: { enabled: 1, rateLimitPps: 100 } }], ...extra });

    it("a preview (no live map) names a new map for a changed BTF shape or an explicit btf flip, not for a default that follows the codecs", () => {
      const pinPath = "/sys/fs/bpf/preview/features";
      const spec = (extra: Record<string, unknown>) => checkSpec({ ...declare(pinPath), ...extra }, { pinLocation: false });
      const renamed = { valueType: { struct: [{ name: "enabled", type: "u32" }, { name: "pps", type: "u32" }] }, contents: [] };
      assert.deepEqual(recreateReasons(spec({}), spec(renamed)), ["key/value BTF changed (keyType/valueType)"]);
      assert.deepEqual(recreateReasons(spec({}), spec({ btf: false })), ["btf true → false"]);
      assert.deepEqual(recreateReasons(spec({}), spec({})), []);
      // hex has no BTF form: hex → u32 changes the default, not the live map.
      const hexKey = { keyType: undefined, keySize: 4, contents: [] };
      assert.deepEqual(recreateReasons(spec(hexKey), spec({ contents: [] })), []);
      // With the live map at hand (liveName), the update compares the live BTF instead.
      assert.deepEqual(recreateReasons(spec({}), spec(renamed), undefined, "features"), []);
    });

    it("a map made without BTF is not rebuilt for the default; an explicit btf: true rebuilds it", () => {
      const pinPath = path.join(bpffs().dir("legacy"), "features");
      // As a map made before BTF existed here: the same declaration, no BTF.
      const legacy = createPinnedMap(declare(pinPath, { btf: false }));
      const recorded = declare(pinPath);
      assert.deepEqual(compareAbi(recorded, openPinned(pinPath, "ro").info), []);
      const warnings: string[] = [];
      const same = updatePinnedMap(recorded, declare(pinPath, { contents: [{ key: 1, value: { enabled: 1, rateLimitPps: 200 } }] }), legacy.mapId, (w) => warnings.push(w));
      assert.equal(same.mapId, legacy.mapId);
      assert.equal(warnings.length, 0, warnings.join("\n"));
      assert.equal(openPinned(pinPath, "ro").info.btfId, 0);

      const rebuilt = updatePinnedMap(recorded, declare(pinPath, { btf: true }), same.mapId, (w) => warnings.push(w));
      assert.notEqual(rebuilt.mapId, same.mapId);
      assert.match(warnings.join("\n"), /building a new kernel map \(live ABI differs \(btf: declared true, live map has no BTF\)\)/);
      assert.ok(openPinned(pinPath, "ro").info.btfId > 0);
      assert.deepEqual(rebuilt.contents, [{ key: 1, value: { enabled: 1, rateLimitPps: 100 } }]);

      const warnings2: string[] = [];
      const dropped = updatePinnedMap(declare(pinPath, { btf: true }), declare(pinPath, { btf: false }), rebuilt.mapId, (w) => warnings2.push(w));
      assert.notEqual(dropped.mapId, rebuilt.mapId);
      assert.match(warnings2.join("\n"), /btf: declared false, live map has BTF/);
      assert.equal(openPinned(pinPath, "ro").info.btfId, 0);
    });

    it("a changed key or value shape rebuilds a BTF map, naming the field; an unchanged one stays in place", () => {
      const pinPath = path.join(bpffs().dir("shape"), "features");
      const first = createPinnedMap(declare(pinPath));
      const warnings: string[] = [];
      const again = updatePinnedMap(declare(pinPath), declare(pinPath, { contents: [] }), first.mapId, (w) => warnings.push(w));
      assert.equal(again.mapId, first.mapId);
      assert.equal(warnings.length, 0, warnings.join("\n"));
      const renamed: CodecDecl = { struct: [{ name: "enabled", type: "u8" }, { name: "pps", type: "u32" }] };
      const next = declare(pinPath, { valueType: renamed, contents: [{ key: 2, value: { pps: 5 } }] });
      const rebuilt = updatePinnedMap(declare(pinPath), next, again.mapId, (w) => warnings.push(w));
      assert.notEqual(rebuilt.mapId, again.mapId);
      assert.match(warnings.join("\n"), /valueType\.struct\[1\]: declared field pps \(offset 4\), live field rateLimitPps \(offset 4\)/);
      const dump = bpftoolJson<{ formatted: { key: number; value: Record<string, number> } }[]>("map", "dump", "pinned", pinPath);
      assert.deepEqual(dump.find((entry) => entry.formatted.key === 2)?.formatted.value, { enabled: 0, pps: 5 });
    });

    it("adopt: a map whose BTF disagrees with the declared codecs is Incompatible, declared vs live; one that agrees is adopted", () => {
      const pinPath = path.join(bpffs().dir("adopt"), "features");
      const made = createPinnedMap(declare(pinPath));
      const other: CodecDecl = { struct: [{ name: "on", type: "u8" }, { name: "rateLimitPps", type: "u32" }] };
      assert.throws(() => createPinnedMap(declare(pinPath, { valueType: other, ifExists: "adopt", contents: [] })), (error: unknown) => {
        assert.ok(isEbpfError(error, "Incompatible"));
        assert.match(error.message, /cannot adopt the map pinned at .*: valueType\.struct\[0\]: declared field on \(offset 0\), live field enabled \(offset 0\)$/);
        return true;
      });
      assert.throws(() => createPinnedMap(declare(pinPath, { valueType: "u64", ifExists: "adopt", contents: [] })),
        /valueType: declared 8 bytes, live a struct of 8 bytes \{ enabled, rateLimitPps \}/);
      const adopted = createPinnedMap(declare(pinPath, { ifExists: "adopt" }));
      assert.equal(adopted.mapId, made.mapId);
    });
  });

  describe("through the dynamic provider", () => {
    it("btf passes check into the state and the kernel; PinnedMap.get's read shows field names", async () => {
      const dir = bpffs().dir("dynamic");
      const news = { pinPath: path.join(dir, "plain"), mapType: "array", keyType: "u32", valueType: FEATURE, maxEntries: 2, btf: false,
        contents: [{ key: 0, value: { enabled: 1, rateLimitPps: 9 } }] };
      const checked = await provider.check({}, { ...news, __provider: "exports.handler = …" });
      assert.deepEqual(checked.failures ?? [], []);
      assert.equal(checked.inputs.btf, false);
      const created = await provider.create(checked.inputs);
      assert.equal(created.outs.btf, false, "the state records the declared btf");
      assert.equal(openPinned(news.pinPath, "ro").info.btfId, 0);

      const typed = path.join(dir, "typed");
      await provider.create((await provider.check({}, { ...news, pinPath: typed, btf: undefined })).inputs);
      const read = await provider.read(typed, { pinPath: typed });
      assert.deepEqual(read.props!.valueType, FEATURE);
      assert.deepEqual(read.props!.contents, { 0: { enabled: 1, rateLimitPps: 9 } });
    });
  });

  describe("BTF to codecs", () => {
    it("specOfLiveMap derives codecs from our map's BTF: contents read back with field names", () => {
      const pinPath = path.join(bpffs().dir("derive"), "features");
      createPinnedMap(checkSpec({ pinPath, mapType: "array", keyType: "u32", valueType: FEATURE, maxEntries: 2, contents: [{ key: 0, value: { enabled: 1, rateLimitPps: 7 } }] }));
      const live = specOfLiveMap(pinPath)!;
      assert.equal(live.spec!.keyType, "u32");
      assert.deepEqual(live.spec!.valueType, FEATURE);
      const observed = observePinnedMap(live.spec!);
      assert.equal(observed.status, "ok");
      assert.deepEqual(observed.status === "ok" && observed.observation.contents, [{ key: 0, value: { enabled: 1, rateLimitPps: 7 } }]);
      // A map without BTF is read as hex, as before.
      const plain = path.join(bpffs().dir("derive"), "plain");
      createPinnedMap(checkSpec({ pinPath: plain, mapType: "array", keyType: "u32", valueType: FEATURE, maxEntries: 2, btf: false }));
      assert.equal(specOfLiveMap(plain)!.spec!.valueType, "hex");
    });

    it("derives ints, signed and big-endian ints, strings, structs with offsets where not natural, and hex for byte arrays", () => {
      const blob = encodeMapBtf({ decl: "u16be", size: 2 }, { decl: { struct: [
        { name: "a", type: "i16" }, { name: "b", type: "u64", offset: 8 }, { name: "c", type: "string", size: 5 }, { name: "d", type: "mac" },
      ] }, size: 32 });
      const types = new BtfTypes(blob.data);
      assert.equal(deriveCodec(types, blob.keyTypeId), "u16be");
      assert.deepEqual(deriveCodec(types, blob.valueTypeId), { struct: [
        { name: "a", type: "i16" }, { name: "b", type: "u64" }, { name: "c", type: "string", size: 5 }, { name: "d", type: "hex", size: 6 },
      ] });
      const padded = encodeMapBtf(null, { decl: { struct: [{ name: "x", type: "u8" }, { name: "y", type: "u8", offset: 3 }] }, size: 4 });
      assert.deepEqual(deriveCodec(new BtfTypes(padded.data), padded.valueTypeId), { struct: [{ name: "x", type: "u8" }, { name: "y", type: "u8", offset: 3 }] });
    });
  });
});
