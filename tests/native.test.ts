// The native bpf(2) binding against the real kernel: every map command, its
// error paths, batch conventions, pin/get/info round trips checked with
// bpftool as an independent reader, fd ownership and per-CPU sizing.
// No mocks: everything here is a syscall on a private bpffs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as v8 from "node:v8";
import * as vm from "node:vm";

import * as native from "../native/index";
import { MapFd } from "../native/index";
import { valueLayout } from "../provider/core/maptypes";
import { usePrivateBpffs } from "./fixtures/bpffs";
import { u32, u64 } from "./fixtures/bytes";
import { bpftoolJson, mapShow as bpftoolShow } from "./fixtures/bpftool";

// enum bpf_map_type (linux/bpf.h), spelled out so the tests do not share the
// binding's tables.
const T = {
  hash: 1,
  array: 2,
  percpu_hash: 5,
  percpu_array: 6,
  lru_hash: 9,
  lru_percpu_hash: 10,
  lpm_trie: 11,
  array_of_maps: 12,
  hash_of_maps: 13,
  queue: 22,
  stack: 23,
  ringbuf: 27,
  bloom_filter: 30,
} as const;

const BPF_F_NO_PREALLOC = 1;
const BPF_F_NO_COMMON_LRU = 2;
const BPF_F_NUMA_NODE = 4;
const BPF_F_RDONLY_PROG = 1 << 7;
const BPF_F_MMAPABLE = 1 << 10;

// ---------------------------------------------------------------- helpers


/** Packs `count` u32 keys (first, first+1, …) and u64 values key*7+1. */
function packed(count: number, first = 0): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(4 * count);
  const values = Buffer.alloc(8 * count);
  for (let i = 0; i < count; i++) {
    keys.writeUInt32LE(first + i, 4 * i);
    values.writeBigUInt64LE(BigInt(first + i) * 7n + 1n, 8 * i);
  }
  return { keys, values };
}


function hexBytes(list: string[]): Buffer {
  return Buffer.from(list.map((h) => parseInt(h, 16)));
}

/** Every key of `m`, walked with MAP_GET_NEXT_KEY. */
function allKeys(m: MapFd): Buffer[] {
  const keys: Buffer[] = [];
  let prev: Buffer | null = null;
  for (;;) {
    const next = Buffer.alloc(m.keySize);
    if (!m.nextKeyInto(prev, next)) return keys;
    keys.push(next);
    prev = next;
    assert.ok(keys.length <= m.info.maxEntries, "getNextKey does not terminate");
  }
}

/** Runs `fn`, which must throw a BpfError with `code` from `command`; checks every field. */
function assertBpfError(fn: () => unknown, code: string, command: string): native.BpfError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  return checkBpfError(caught, code, command);
}

async function assertRejectsBpf(promise: Promise<unknown>, code: string, command: string): Promise<native.BpfError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  return checkBpfError(caught, code, command);
}

const ERRNO: Record<string, number> = { ...os.constants.errno, ENOTSUPP: 524 };

function checkBpfError(caught: unknown, code: string, command: string): native.BpfError {
  assert.ok(caught instanceof Error, `expected ${command} to fail with ${code}, got ${String(caught)}`);
  const error = caught as native.BpfError;
  assert.equal(error.code, code, `${error.message}`);
  assert.equal(error.errno, ERRNO[code]);
  assert.equal(error.command, command);
  assert.equal(error.syscall, "bpf");
  assert.ok(error.message.includes(command), error.message);
  assert.ok(error.message.includes(code), error.message);
  assert.ok(native.isBpfError(error, code));
  return error;
}

function fdCount(): number {
  return fs.readdirSync("/proc/self/fd").length;
}

/** Independent reading of /sys/devices/system/cpu/possible: the number of CPUs in the mask. */
function cpusFromSysfs(): number {
  const text = fs.readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
  let n = 0;
  for (const part of text.split(",")) {
    const [a, b] = part.split("-").map(Number);
    n += (b ?? a) - a + 1;
  }
  return n;
}

/** global.gc if exposed; otherwise exposes it through V8 flags; undefined if that fails. */
function getGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  try {
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as () => void;
  } catch {
    return undefined;
  }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Occupies every thread of libuv's pool (UV_THREADPOOL_SIZE, default 4) with
 * an fs open(2) of a FIFO that has no writer, which blocks until one comes:
 * async work queued after it (the binding's batch workers) cannot start until
 * release(). release() opens each FIFO read-write (which never blocks on
 * Linux and lets the readers through), waits for the readers, and cleans up.
 */
async function blockThreadPool(): Promise<{ release(): Promise<void> }> {
  const threads = Math.min(Math.max(Number(process.env.UV_THREADPOOL_SIZE) || 4, 1), 1024);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-pool-"));
  const fifos = Array.from({ length: threads }, (_, i) => path.join(dir, `fifo${i}`));
  for (const fifo of fifos) execFileSync("mkfifo", [fifo]);
  const readers = fifos.map((fifo) => fs.promises.open(fifo, "r"));
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      const writers = fifos.map((fifo) => fs.openSync(fifo, "r+"));
      try {
        for (const reader of await Promise.all(readers)) await reader.close();
      } finally {
        for (const fd of writers) fs.closeSync(fd);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

// ---------------------------------------------------------------- suite

describe("native bpf(2) binding", function () {
  this.timeout(30_000);
  const bpffs = usePrivateBpffs();

  // Every map a test creates or opens goes through own(); afterEach closes
  // them even when the test failed.
  let owned: MapFd[] = [];
  function own(m: MapFd): MapFd {
    owned.push(m);
    return m;
  }
  const create = (attrs: native.MapCreateAttrs, layout: native.ValueLayout = native.plainValueBytes): MapFd => own(native.createMap(attrs, layout));
  const open = (pin: string, access: "rw" | "ro" | "wo" = "rw"): MapFd => own(native.openPinnedMap(pin, access, native.plainValueBytes));
  afterEach(() => {
    for (const m of owned) m.close();
    owned = [];
  });

  describe("MAP_CREATE", () => {
    interface Case {
      label: string;
      bpftoolType: string;
      attrs: native.MapCreateAttrs;
      needsInner?: boolean;
    }
    const cases: Case[] = [
      { label: "hash (no_prealloc, numa node 0)", bpftoolType: "hash",
        attrs: { mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 64, mapFlags: BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE,
          numaNode: 0, mapName: "t_hash" } },
      { label: "array (mmapable, rdonly_prog)", bpftoolType: "array",
        attrs: { mapType: T.array, keySize: 4, valueSize: 16, maxEntries: 32, mapFlags: BPF_F_MMAPABLE | BPF_F_RDONLY_PROG,
          mapName: "t_array" } },
      { label: "percpu_hash", bpftoolType: "percpu_hash",
        attrs: { mapType: T.percpu_hash, keySize: 8, valueSize: 12, maxEntries: 16, mapFlags: BPF_F_NO_PREALLOC,
          mapName: "t_pcpu.hash" } },
      { label: "lru_hash (no_common_lru)", bpftoolType: "lru_hash",
        attrs: { mapType: T.lru_hash, keySize: 4, valueSize: 4, maxEntries: 128, mapFlags: BPF_F_NO_COMMON_LRU,
          mapName: "t_lru" } },
      { label: "lpm_trie (no_prealloc)", bpftoolType: "lpm_trie",
        attrs: { mapType: T.lpm_trie, keySize: 8, valueSize: 4, maxEntries: 16, mapFlags: BPF_F_NO_PREALLOC,
          mapName: "t_lpm" } },
      { label: "queue", bpftoolType: "queue",
        attrs: { mapType: T.queue, keySize: 0, valueSize: 4, maxEntries: 8, mapName: "t_queue" } },
      { label: "stack", bpftoolType: "stack",
        attrs: { mapType: T.stack, keySize: 0, valueSize: 8, maxEntries: 8, mapName: "t_stack" } },
      { label: "bloom_filter (mapExtra 3 hashes)", bpftoolType: "bloom_filter",
        attrs: { mapType: T.bloom_filter, keySize: 0, valueSize: 4, maxEntries: 64, mapExtra: 3n, mapName: "t_bloom" } },
      { label: "ringbuf", bpftoolType: "ringbuf",
        attrs: { mapType: T.ringbuf, keySize: 0, valueSize: 0, maxEntries: 1 << 18, mapName: "t_ringbuf" } },
      { label: "array_of_maps (innerMapFd)", bpftoolType: "array_of_maps", needsInner: true,
        attrs: { mapType: T.array_of_maps, keySize: 4, valueSize: 4, maxEntries: 4, mapName: "t_aom" } },
      { label: "hash_of_maps (innerMapFd)", bpftoolType: "hash_of_maps", needsInner: true,
        attrs: { mapType: T.hash_of_maps, keySize: 8, valueSize: 4, maxEntries: 4, mapName: "t_hom" } },
    ];

    for (const c of cases) {
      it(`creates ${c.label}: info and bpftool agree with the request`, () => {
        const attrs = { ...c.attrs };
        if (c.needsInner) {
          attrs.innerMapFd = create({ mapType: T.array, keySize: 4, valueSize: 8, maxEntries: 2 }).fd;
        }
        const m = create(attrs);
        const info = m.readInfo();
        assert.deepEqual(m.info, info);
        assert.equal(info.type, attrs.mapType);
        assert.equal(info.keySize, attrs.keySize);
        assert.equal(info.valueSize, attrs.valueSize);
        assert.equal(info.maxEntries, attrs.maxEntries);
        assert.equal(info.mapFlags, attrs.mapFlags ?? 0);
        assert.equal(info.name, attrs.mapName);
        assert.equal(info.mapExtra, BigInt(attrs.mapExtra ?? 0));
        assert.ok(info.id > 0);

        const fdinfo = m.fdinfo();
        assert.equal(fdinfo.map_type, String(attrs.mapType));
        assert.equal(fdinfo.map_id, String(info.id));
        assert.equal(Number(fdinfo.map_flags), attrs.mapFlags ?? 0);
        assert.equal(BigInt(fdinfo.map_extra), BigInt(attrs.mapExtra ?? 0));

        const pin = path.join(bpffs().dir("create"), "m");
        m.pin(pin);
        const shown = bpftoolShow(pin);
        assert.equal(shown.id, info.id);
        assert.equal(shown.type, c.bpftoolType);
        assert.equal(shown.bytes_key, attrs.keySize);
        assert.equal(shown.bytes_value, attrs.valueSize);
        assert.equal(shown.max_entries, attrs.maxEntries);
        assert.equal(shown.flags, attrs.mapFlags ?? 0);
        assert.equal(shown.name, attrs.mapName);
        assert.equal(shown.frozen, 0);
      });
    }

    it("map-in-map: an inner map fd goes in, the inner map id comes out", () => {
      const inner = create({ mapType: T.array, keySize: 4, valueSize: 8, maxEntries: 2 });
      const outer = create({ mapType: T.array_of_maps, keySize: 4, valueSize: 4, maxEntries: 4, innerMapFd: inner.fd });
      const member = create({ mapType: T.array, keySize: 4, valueSize: 8, maxEntries: 2 });
      outer.update(u32(1), u32(member.fd));
      assert.equal(outer.lookup(u32(1))?.readUInt32LE(), member.info.id);
      // A map whose shape differs from the template is refused.
      const wrong = create({ mapType: T.array, keySize: 4, valueSize: 4, maxEntries: 2 });
      assertBpfError(() => outer.update(u32(2), u32(wrong.fd)), "EINVAL", "BPF_MAP_UPDATE_ELEM");
    });

    it("numaNode is passed through: a node that does not exist is EINVAL", () => {
      const attrs = { mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 4, mapFlags: BPF_F_NUMA_NODE };
      create({ ...attrs, numaNode: 0 });
      assertBpfError(() => create({ ...attrs, numaNode: 4000 }), "EINVAL", "BPF_MAP_CREATE");
    });

    it("bloom_filter: mapExtra bounds the hash count; membership answers through lookup", () => {
      assertBpfError(() => create({ mapType: T.bloom_filter, keySize: 0, valueSize: 4, maxEntries: 4, mapExtra: 16 }),
        "EINVAL", "BPF_MAP_CREATE");
      const bloom = create({ mapType: T.bloom_filter, keySize: 0, valueSize: 4, maxEntries: 64, mapExtra: 3 });
      bloom.update(null, u32(0x01020304));
      assert.equal(bloom.lookupInto(null, u32(0x01020304)), true);
      assert.equal(bloom.lookupInto(null, u32(0x09090909)), false);
    });

    it("rejects a mapName longer than 15 bytes before the syscall", () => {
      assert.throws(() => create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1, mapName: "a".repeat(16) }),
        TypeError);
    });
  });

  describe("element commands", () => {
    it("update with BPF_ANY / BPF_NOEXIST / BPF_EXIST, lookup, delete on a hash", () => {
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 16 });
      assert.equal(m.lookup(u32(1)), undefined);
      m.update(u32(1), u64(10)); // BPF_ANY inserts
      assert.deepEqual(m.lookup(u32(1)), u64(10));
      m.update(u32(1), u64(11), native.BPF_ANY); // BPF_ANY replaces
      assert.deepEqual(m.lookup(u32(1)), u64(11));
      assertBpfError(() => m.update(u32(1), u64(12), native.BPF_NOEXIST), "EEXIST", "BPF_MAP_UPDATE_ELEM");
      assert.deepEqual(m.lookup(u32(1)), u64(11));
      assertBpfError(() => m.update(u32(2), u64(20), native.BPF_EXIST), "ENOENT", "BPF_MAP_UPDATE_ELEM");
      assert.equal(m.lookup(u32(2)), undefined);
      m.update(u32(2), u64(20), native.BPF_NOEXIST);
      m.update(u32(2), u64(21), native.BPF_EXIST);
      assert.deepEqual(m.lookup(u32(2)), u64(21));
      const into = Buffer.alloc(8);
      assert.equal(m.lookupInto(u32(2), into), true);
      assert.deepEqual(into, u64(21));
      assert.equal(m.delete(u32(1)), true);
      assert.equal(m.delete(u32(1)), false);
      assert.equal(m.lookup(u32(1)), undefined);
      // lookupAndDelete on a hash removes the element it returns.
      assert.deepEqual(m.lookupAndDelete(u32(2)), u64(21));
      assert.equal(m.lookupAndDelete(u32(2)), undefined);
      assert.equal(allKeys(m).length, 0);
    });

    it("a prepared element: bound buffers re-read on every call, its own fd outlives the MapFd, closed is a TypeError", () => {
      const pin = path.join(bpffs().dir("prepared"), "m");
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 16 });
      m.pin(pin);
      const key = u32(1);
      const value = u64(10);
      const element = m.prepare(key, value);
      try {
        assert.equal(element.lookup(), false);
        element.update();
        assert.deepEqual(m.lookup(u32(1)), u64(10));
        // The buffers are bound, not copied: new bytes address another key and write another value.
        key.writeUInt32LE(2);
        value.writeUInt32LE(20);
        element.update();
        assert.deepEqual(m.lookup(u32(2)), u64(20));
        assertBpfError(() => element.update(native.BPF_NOEXIST), "EEXIST", "BPF_MAP_UPDATE_ELEM");
        value.fill(0);
        assert.equal(element.lookup(), true);
        assert.deepEqual(value, u64(20));
        // Its own duplicate of the fd: closing the MapFd leaves it working.
        m.close();
        assert.equal(element.delete(), true);
        assert.equal(element.delete(), false);
        key.writeUInt32LE(1);
        assert.equal(element.lookup(), true);
        // bpftool, reading the pin, sees what the prepared calls left.
        const seen = bpftoolJson<{ key: string[] }[]>("map", "dump", "pinned", pin);
        assert.deepEqual(seen.map((entry) => Number(entry.key[0])), [1]);
      } finally {
        element.close();
      }
      element.close();
      assert.throws(() => element.lookup(), { name: "TypeError", message: /prepared element is closed/ });
      assert.throws(() => m.prepare(u32(1), u64(1)), /map fd is closed/);
      const other = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 16 });
      assert.throws(() => other.prepare(Buffer.alloc(3), u64(1)), { name: "RangeError", message: /key must be 4 bytes; got 3/ });
      assert.throws(() => other.prepare(u32(1), Buffer.alloc(4)), { name: "RangeError", message: /value must be 8 bytes; got 4/ });
    });

    it("array: every index exists (NOEXIST → EEXIST), delete is EINVAL, out of range is E2BIG on update", () => {
      const m = create({ mapType: T.array, keySize: 4, valueSize: 4, maxEntries: 4 });
      assert.deepEqual(m.lookup(u32(3)), u32(0));
      assert.equal(m.lookup(u32(4)), undefined);
      assertBpfError(() => m.update(u32(0), u32(1), native.BPF_NOEXIST), "EEXIST", "BPF_MAP_UPDATE_ELEM");
      m.update(u32(0), u32(7), native.BPF_EXIST);
      assert.deepEqual(m.lookup(u32(0)), u32(7));
      assertBpfError(() => m.delete(u32(0)), "EINVAL", "BPF_MAP_DELETE_ELEM");
      assertBpfError(() => m.update(u32(4), u32(1)), "E2BIG", "BPF_MAP_UPDATE_ELEM");
    });

    it("getNextKey walks every key once and answers false at the end", () => {
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 256 });
      const want = new Set<number>();
      for (let i = 0; i < 200; i++) {
        m.update(u32(i * 13 + 5), u64(i));
        want.add(i * 13 + 5);
      }
      const seen = allKeys(m).map((k) => k.readUInt32LE());
      assert.equal(seen.length, 200);
      assert.deepEqual(new Set(seen), want);
      // From the last key there is no next one.
      const last = u32(seen[seen.length - 1]);
      assert.equal(m.nextKeyInto(last, Buffer.alloc(4)), false);
      // An empty map has no first key.
      const empty = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 4 });
      assert.equal(empty.nextKeyInto(null, Buffer.alloc(4)), false);
    });

    it("queue pops FIFO, stack pops LIFO, both answer undefined when empty and E2BIG when full", () => {
      const queue = create({ mapType: T.queue, keySize: 0, valueSize: 4, maxEntries: 4 });
      const stack = create({ mapType: T.stack, keySize: 0, valueSize: 4, maxEntries: 4 });
      for (const v of [1, 2, 3, 4]) {
        queue.update(null, u32(v));
        stack.update(null, u32(v));
      }
      assertBpfError(() => queue.update(null, u32(5)), "E2BIG", "BPF_MAP_UPDATE_ELEM");
      assertBpfError(() => stack.update(null, u32(5)), "E2BIG", "BPF_MAP_UPDATE_ELEM");
      // lookup peeks without popping.
      assert.deepEqual(queue.lookup(null), u32(1));
      assert.deepEqual(stack.lookup(null), u32(4));
      const pop = (m: MapFd): number[] => {
        const out: number[] = [];
        for (let v = m.lookupAndDelete(null); v !== undefined; v = m.lookupAndDelete(null)) out.push(v.readUInt32LE());
        return out;
      };
      assert.deepEqual(pop(queue), [1, 2, 3, 4]);
      assert.deepEqual(pop(stack), [4, 3, 2, 1]);
      assert.equal(queue.lookupAndDelete(null), undefined);
      assert.equal(stack.lookupAndDelete(null), undefined);
      assert.equal(queue.lookup(null), undefined);
    });

    it("BPF_F_LOCK on a map without a spin lock is EINVAL", () => {
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 4 });
      m.update(u32(1), u64(1));
      assertBpfError(() => m.lookup(u32(1), native.BPF_F_LOCK), "EINVAL", "BPF_MAP_LOOKUP_ELEM");
      assertBpfError(() => m.update(u32(1), u64(2), native.BPF_ANY | native.BPF_F_LOCK), "EINVAL",
        "BPF_MAP_UPDATE_ELEM");
      assert.deepEqual(m.lookup(u32(1)), u64(1));
    });

    it("wrong key/value sizes are RangeErrors before any syscall", () => {
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 4 });
      // Each of these would be a valid update if the sizes were right, so an
      // empty map afterwards proves no syscall wrote anything.
      assert.throws(() => m.update(Buffer.alloc(3), u64(1)), RangeError);
      assert.throws(() => m.update(Buffer.alloc(5), u64(1)), RangeError);
      assert.throws(() => m.update(u32(1), Buffer.alloc(7)), RangeError);
      assert.throws(() => m.update(u32(1), Buffer.alloc(9)), RangeError);
      assert.throws(() => m.update(null, u64(1)), RangeError);
      assert.throws(() => m.updateBatch(Buffer.alloc(7), Buffer.alloc(16), 2), RangeError);
      assert.throws(() => m.updateBatch(Buffer.alloc(8), Buffer.alloc(15), 2), RangeError);
      assert.throws(() => m.updateBatch(Buffer.alloc(8), Buffer.alloc(16), -1), RangeError);
      assert.equal(allKeys(m).length, 0);
      assert.throws(() => m.lookup(Buffer.alloc(2)), RangeError);
      assert.throws(() => m.lookupInto(u32(1), Buffer.alloc(16)), RangeError);
      assert.throws(() => m.delete(null), RangeError);
      assert.throws(() => m.nextKeyInto(null, Buffer.alloc(2)), RangeError);
      // Keyless maps take no key.
      const queue = create({ mapType: T.queue, keySize: 0, valueSize: 4, maxEntries: 4 });
      assert.throws(() => queue.update(u32(1), u32(1)), RangeError);
      assert.equal(queue.lookup(null), undefined);
      // Per-CPU values are one slot per possible CPU, never valueSize bytes.
      const percpu = create({ mapType: T.percpu_hash, keySize: 4, valueSize: 4, maxEntries: 4 }, valueLayout);
      assert.throws(() => percpu.update(u32(1), u32(1)), RangeError);
      assert.equal(allKeys(percpu).length, 0);
      // No layout at all (a JavaScript caller) is refused before any value
      // buffer is sized, and the fd is not leaked.
      const fdsBefore = fs.readdirSync("/proc/self/fd").length;
      const untyped = native.createMap as unknown as (attrs: native.MapCreateAttrs) => MapFd;
      assert.throws(() => untyped({ mapType: T.percpu_hash, keySize: 4, valueSize: 4, maxEntries: 4 }), /a value layout is required/);
      assert.equal(fs.readdirSync("/proc/self/fd").length, fdsBefore);
      // Batch positions: a hash keeps a 4-byte bucket index there even with a
      // 1-byte key; an LPM trie keeps a whole key.
      const tiny = create({ mapType: T.hash, keySize: 1, valueSize: 4, maxEntries: 4 });
      assert.throws(() => tiny.lookupBatch(null, Buffer.alloc(1), Buffer.alloc(4), Buffer.alloc(16), 4), RangeError);
      assert.throws(() => tiny.lookupBatch(Buffer.alloc(2), Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(16), 4),
        RangeError);
      const lpm = create({ mapType: T.lpm_trie, keySize: 8, valueSize: 4, maxEntries: 4, mapFlags: BPF_F_NO_PREALLOC });
      assert.throws(() => lpm.lookupBatch(null, Buffer.alloc(4), Buffer.alloc(32), Buffer.alloc(16), 4), RangeError);
    });
  });

  describe("errors", () => {
    it("E2BIG: a hash value beyond the kmalloc limit", () => {
      assertBpfError(() => create({ mapType: T.hash, keySize: 4, valueSize: 1 << 30, maxEntries: 1 }),
        "E2BIG", "BPF_MAP_CREATE");
    });

    it("E2BIG: inserting into a full hash", () => {
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 2 });
      m.update(u32(1), u32(1));
      m.update(u32(2), u32(2));
      assertBpfError(() => m.update(u32(3), u32(3)), "E2BIG", "BPF_MAP_UPDATE_ELEM");
      m.update(u32(2), u32(22)); // replacing in a full map is fine
      assert.deepEqual(m.lookup(u32(2)), u32(22));
    });

    it("EINVAL: unknown type, impossible sizes, bad name, lpm_trie without no_prealloc", () => {
      const bad: native.MapCreateAttrs[] = [
        { mapType: 9999, keySize: 4, valueSize: 4, maxEntries: 1 },
        { mapType: T.array, keySize: 8, valueSize: 4, maxEntries: 1 },
        { mapType: T.hash, keySize: 0, valueSize: 4, maxEntries: 1 },
        { mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 0 },
        { mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1, mapName: "a-b" },
        { mapType: T.lpm_trie, keySize: 8, valueSize: 4, maxEntries: 1 },
      ];
      for (const attrs of bad) assertBpfError(() => create(attrs), "EINVAL", "BPF_MAP_CREATE");
    });

    it("ENOENT: objGet of a missing pin, openMapById of id 0", () => {
      assertBpfError(() => open(path.join(bpffs().root, "no-such-pin")), "ENOENT", "BPF_OBJ_GET");
      assertBpfError(() => own(native.openMapById(0, "rw", native.plainValueBytes)), "ENOENT", "BPF_MAP_GET_FD_BY_ID");
    });

    it("EEXIST: pinning over an existing pin (and over a directory)", () => {
      const dir = bpffs().dir("eexist");
      const a = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1 });
      const b = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1 });
      a.pin(path.join(dir, "p"));
      assertBpfError(() => b.pin(path.join(dir, "p")), "EEXIST", "BPF_OBJ_PIN");
      assertBpfError(() => b.pin(dir), "EEXIST", "BPF_OBJ_PIN");
      assert.equal(open(path.join(dir, "p")).info.id, a.info.id);
    });

    it("pinning outside bpffs (or at a dotted name) is EPERM; isOnBpffs tells the two apart", () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "not-bpffs-"));
      try {
        assert.equal(native.isOnBpffs(tmp), false);
        assert.equal(native.isOnBpffs(bpffs().root), true);
        assert.equal(native.isOnBpffs(bpffs().dir("on")), true);
        const m = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1 });
        assertBpfError(() => m.pin(path.join(tmp, "m")), "EPERM", "BPF_OBJ_PIN");
        assert.equal(fs.existsSync(path.join(tmp, "m")), false);
        // bpffs reserves dots in names: a dotted pin name is EPERM even inside bpffs.
        assertBpfError(() => m.pin(path.join(bpffs().root, "a.b")), "EPERM", "BPF_OBJ_PIN");
        assertBpfError(() => m.pin(path.join(bpffs().root, ".hidden")), "EPERM", "BPF_OBJ_PIN");
        // A missing parent inside bpffs is ENOENT (OBJ_PIN creates no directories).
        assertBpfError(() => m.pin(path.join(bpffs().root, "missing-dir", "m")), "ENOENT", "BPF_OBJ_PIN");
        // OBJ_GET of a regular file that is not a bpffs object.
        fs.writeFileSync(path.join(tmp, "file"), "x");
        assertBpfError(() => open(path.join(tmp, "file")), "EACCES", "BPF_OBJ_GET");
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
      assert.throws(() => native.isOnBpffs(path.join(tmp, "gone")), { code: "ENOENT" });
    });

    it("ENOTSUPP (524): batch delete on an array", () => {
      const m = create({ mapType: T.array, keySize: 4, valueSize: 4, maxEntries: 4 });
      const error = assertBpfError(() => m.deleteBatch(u32(0), 1), "ENOTSUPP", "BPF_MAP_DELETE_BATCH");
      assert.equal(error.count, 0);
    });

    it("EINVAL: MAP_GET_NEXT_ID from INT_MAX", () => {
      assertBpfError(() => native.nextMapId(0x7fffffff), "EINVAL", "BPF_MAP_GET_NEXT_ID");
    });
  });

  describe("batch commands", () => {
    const hashAttrs = (maxEntries: number): native.MapCreateAttrs =>
      ({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries });

    /** Walks the map with lookupBatch in chunks of `chunk`; returns what each call gave. */
    function walk(m: MapFd, chunk: number, andDelete = false) {
      const keys = Buffer.alloc(4 * chunk);
      const values = Buffer.alloc(8 * chunk);
      const out = Buffer.alloc(4);
      let inBatch: Buffer | null = null;
      const calls: native.BatchLookupResult[] = [];
      const entries = new Map<number, bigint>();
      for (;;) {
        const r: native.BatchLookupResult = andDelete
          ? m.lookupAndDeleteBatch(inBatch, out, keys, values, chunk)
          : m.lookupBatch(inBatch, out, keys, values, chunk);
        calls.push(r);
        assert.ok(r.count >= 0 && r.count <= chunk);
        for (let i = 0; i < r.count; i++) {
          const key = keys.readUInt32LE(4 * i);
          assert.equal(entries.has(key), false, `key ${key} seen twice`);
          entries.set(key, values.readBigUInt64LE(8 * i));
        }
        if (r.done) break;
        assert.ok(r.count > 0, "a call that is not the last returns entries");
        assert.ok(calls.length <= m.info.maxEntries + 1, "batch walk does not terminate");
        inBatch = Buffer.from(out);
      }
      return { calls, entries };
    }

    it("updateBatch of N returns N; lookupBatch in smaller chunks walks all N, ending done", () => {
      const n = 1000;
      const m = create(hashAttrs(1024));
      const { keys, values } = packed(n);
      assert.equal(m.updateBatch(keys, values, n), n);
      const { calls, entries } = walk(m, 64);
      assert.ok(calls.length >= Math.ceil(n / 64));
      assert.equal(calls.at(-1)?.done, true);
      assert.ok(calls.slice(0, -1).every((c) => !c.done));
      assert.equal(calls.reduce((sum, c) => sum + c.count, 0), n);
      assert.equal(entries.size, n);
      for (const [key, value] of entries) assert.equal(value, BigInt(key) * 7n + 1n);
    });

    it("array batches: full chunks are not done; the exhausting call is done with what was left (maybe 0)", () => {
      const m = create({ mapType: T.array, keySize: 4, valueSize: 8, maxEntries: 100 });
      const { keys, values } = packed(100);
      assert.equal(m.updateBatch(keys, values, 100), 100);
      const by30 = walk(m, 30);
      assert.deepEqual(by30.calls, [
        { count: 30, done: false }, { count: 30, done: false }, { count: 30, done: false }, { count: 10, done: true },
      ]);
      const by25 = walk(m, 25);
      assert.deepEqual(by25.calls, [
        { count: 25, done: false }, { count: 25, done: false }, { count: 25, done: false }, { count: 25, done: false },
        { count: 0, done: true },
      ]);
      assert.equal(by30.entries.size, 100);
      for (const [key, value] of by25.entries) assert.equal(value, BigInt(key) * 7n + 1n);
    });

    it("a hash's last batch may be done with count > 0 (one call big enough for everything)", () => {
      const m = create(hashAttrs(64));
      const { keys, values } = packed(50);
      m.updateBatch(keys, values, 50);
      const { calls, entries } = walk(m, 64);
      assert.deepEqual(calls, [{ count: 50, done: true }]);
      assert.equal(entries.size, 50);
    });

    it("lookupBatch on an empty hash is done with count 0", () => {
      const m = create(hashAttrs(16));
      assert.deepEqual(m.lookupBatch(null, Buffer.alloc(4), Buffer.alloc(64), Buffer.alloc(128), 16),
        { count: 0, done: true });
    });

    it("deleteBatch deletes what it is given; a missing key is ENOENT with the count deleted before it", () => {
      const m = create(hashAttrs(128));
      const { keys, values } = packed(100);
      m.updateBatch(keys, values, 100);
      assert.equal(m.deleteBatch(keys, 50), 50);
      const left = allKeys(m).map((k) => k.readUInt32LE()).sort((a, b) => a - b);
      assert.deepEqual(left, Array.from({ length: 50 }, (_, i) => 50 + i));
      const mixed = Buffer.concat([u32(60), u32(61), u32(3) /* already deleted */, u32(70)]);
      const error = assertBpfError(() => m.deleteBatch(mixed, 4), "ENOENT", "BPF_MAP_DELETE_BATCH");
      assert.equal(error.count, 2);
      assert.equal(m.lookup(u32(60)), undefined);
      assert.equal(m.lookup(u32(61)), undefined);
      assert.deepEqual(m.lookup(u32(70)), u64(70 * 7 + 1));
      assert.equal(allKeys(m).length, 48);
    });

    it("lookupAndDeleteBatch returns every entry once and empties the map", () => {
      const m = create(hashAttrs(512));
      const { keys, values } = packed(300);
      m.updateBatch(keys, values, 300);
      const { calls, entries } = walk(m, 40, true);
      assert.equal(calls.at(-1)?.done, true);
      assert.equal(calls.reduce((sum, c) => sum + c.count, 0), 300);
      assert.equal(entries.size, 300);
      for (const [key, value] of entries) assert.equal(value, BigInt(key) * 7n + 1n);
      assert.equal(m.nextKeyInto(null, Buffer.alloc(4)), false);
    });

    it("updateBatch with elemFlags other than 0 / BPF_F_LOCK is EINVAL with count 0, nothing written", () => {
      const m = create(hashAttrs(16));
      const { keys, values } = packed(4);
      for (const elemFlags of [native.BPF_NOEXIST, native.BPF_EXIST, 8]) {
        const error = assertBpfError(() => m.updateBatch(keys, values, 4, elemFlags), "EINVAL", "BPF_MAP_UPDATE_BATCH");
        assert.equal(error.count, 0);
      }
      // BPF_F_LOCK is accepted as a flag but this map has no spin lock.
      assert.equal(assertBpfError(() => m.updateBatch(keys, values, 4, native.BPF_F_LOCK), "EINVAL",
        "BPF_MAP_UPDATE_BATCH").count, 0);
      assert.equal(allKeys(m).length, 0);
    });

    it("partial failure: updateBatch into a too-small hash throws E2BIG with the count actually written", async () => {
      const m = create(hashAttrs(50));
      const { keys, values } = packed(80);
      const error = assertBpfError(() => m.updateBatch(keys, values, 80), "E2BIG", "BPF_MAP_UPDATE_BATCH");
      assert.equal(error.count, 50);
      const present = allKeys(m).map((k) => k.readUInt32LE()).sort((a, b) => a - b);
      assert.equal(present.length, error.count);
      assert.deepEqual(present, Array.from({ length: error.count ?? -1 }, (_, i) => i));
      // The async form reports the same.
      const again = create(hashAttrs(50));
      const asyncError = await assertRejectsBpf(again.updateBatchAsync(keys, values, 80), "E2BIG",
        "BPF_MAP_UPDATE_BATCH");
      assert.equal(asyncError.count, 50);
      assert.equal(allKeys(again).length, 50);
    });

    it("the async forms return what the sync forms return", async () => {
      const n = 700;
      const { keys, values } = packed(n);
      const a = create(hashAttrs(1024));
      const b = create(hashAttrs(1024));
      assert.equal(a.updateBatch(keys, values, n), n);
      const pendingUpdate = b.updateBatchAsync(keys, values, n);
      assert.ok(pendingUpdate instanceof Promise);
      assert.equal(await pendingUpdate, n);
      // Hash seeds differ per map, so compare contents, not order.
      assert.deepEqual(walk(b, 64).entries, walk(a, 64).entries);
      // On one map, sync and async lookups answer call for call the same.
      const chunk = 100;
      let inBatch: Buffer | null = null;
      let total = 0;
      for (let call = 0; ; call++) {
        assert.ok(call < 100);
        const ka = Buffer.alloc(4 * chunk), va = Buffer.alloc(8 * chunk), oa = Buffer.alloc(4);
        const kb = Buffer.alloc(4 * chunk), vb = Buffer.alloc(8 * chunk), ob = Buffer.alloc(4);
        const ra = a.lookupBatch(inBatch, oa, ka, va, chunk);
        const pending = a.lookupBatchAsync(inBatch, ob, kb, vb, chunk);
        assert.ok(pending instanceof Promise);
        const rb = await pending;
        assert.deepEqual(rb, ra);
        assert.deepEqual(ob, oa);
        assert.deepEqual(kb, ka);
        assert.deepEqual(vb, va);
        total += ra.count;
        if (ra.done) break;
        inBatch = oa;
      }
      assert.equal(total, n);
      // Errors reject with the same BpfError shape.
      const c = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 4 });
      const rejected = await assertRejectsBpf(c.updateBatchAsync(keys, values, 2, native.BPF_EXIST), "EINVAL",
        "BPF_MAP_UPDATE_BATCH");
      assert.equal(rejected.count, 0);
      const wo = own(native.openMapById(a.info.id, "wo", native.plainValueBytes));
      await assertRejectsBpf(wo.lookupBatchAsync(null, Buffer.alloc(4), Buffer.alloc(8), Buffer.alloc(16), 2), "EPERM",
        "BPF_MAP_LOOKUP_BATCH");
    });

    it("updateBatchAsync of 1M entries runs off the JS thread (a setImmediate fires before it resolves)", async () => {
      const n = 1 << 20;
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: n });
      const keys = Buffer.alloc(4 * n);
      const values = Buffer.alloc(4 * n);
      for (let i = 0; i < n; i++) {
        keys.writeUInt32LE(i, 4 * i);
        values.writeUInt32LE(i ^ 0x5a5a5a5a, 4 * i);
      }
      const order: string[] = [];
      // The kernel needs hundreds of milliseconds for 1M inserts; a blocking
      // call would resolve (or return resolved) before the next loop turn.
      const pending = m.updateBatchAsync(keys, values, n).then((count) => {
        order.push("resolved");
        return count;
      });
      setImmediate(() => order.push("immediate"));
      assert.equal(await pending, n);
      assert.deepEqual(order, ["immediate", "resolved"]);
      const result = m.lookupBatch(null, Buffer.alloc(4), Buffer.alloc(4 * n), Buffer.alloc(4 * n), n);
      assert.deepEqual(result, { count: n, done: true });
      assert.deepEqual(m.lookup(u32(123456)), u32(123456 ^ 0x5a5a5a5a));
    });

    it("async forms keep their buffers alive until they settle (gc while the batch is queued behind a blocked thread pool)", async function () {
      const gc = getGc();
      assert.ok(gc, "no gc(): cannot test what the binding keeps alive");
      const collect = async (): Promise<void> => {
        await nextTurn(); // WeakRef targets stay alive until the end of the job that made them
        gc();
      };
      // Control: gc() does collect an unreferenced buffer here, so a buffer
      // that survives it below is held by the binding.
      let control: WeakRef<Buffer> | undefined = new WeakRef(Buffer.alloc(1 << 20));
      await collect();
      assert.equal(control.deref(), undefined, "gc() did not collect an unreferenced buffer");
      control = undefined;

      const n = 1 << 19;
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: n });
      // Input buffers: only the binding holds them once the call returns. The
      // batch cannot start (let alone settle) while the pool is blocked, so
      // gc() runs while it is in flight, every time.
      let settled = false;
      let inputRef: WeakRef<Buffer> | undefined;
      const pool = await blockThreadPool();
      let update: Promise<number>;
      try {
        update = (() => {
          const keys = Buffer.alloc(4 * n);
          const values = Buffer.alloc(4 * n);
          for (let i = 0; i < n; i++) {
            keys.writeUInt32LE(i, 4 * i);
            values.writeUInt32LE(i * 3 + 1, 4 * i);
          }
          inputRef = new WeakRef(values);
          return m.updateBatchAsync(keys, values, n);
        })().finally(() => { settled = true; });
        await collect();
        assert.equal(settled, false, "the batch settled while the thread pool was blocked");
        assert.notEqual(inputRef?.deref(), undefined, "input buffer collected while in flight");
        for (let i = 0; i < 4; i++) Buffer.alloc(4 * n, 0xee); // churn the allocator over any freed memory
      } finally {
        await pool.release();
      }
      assert.equal(await update, n);

      // Output buffers: only the binding holds them until the promise settles.
      settled = false;
      let outRef: WeakRef<Buffer> | undefined;
      const keysOut = Buffer.alloc(4 * n);
      const poolAgain = await blockThreadPool();
      let lookup: Promise<{ count: number; done: boolean }>;
      let valuesOut: Buffer | undefined;
      try {
        lookup = (() => {
          const values = Buffer.alloc(4 * n);
          outRef = new WeakRef(values);
          return m.lookupBatchAsync(null, Buffer.alloc(4), keysOut, values, n);
        })().finally(() => { settled = true; });
        await collect();
        assert.equal(settled, false, "the lookup settled while the thread pool was blocked");
        valuesOut = outRef?.deref();
        assert.notEqual(valuesOut, undefined, "output buffer collected while in flight");
      } finally {
        await poolAgain.release();
      }
      // Held strongly from here on (the gc above proved the binding held it):
      // the kernel's results landed in it.
      assert.deepEqual(await lookup, { count: n, done: true });
      for (let i = 0; i < n; i += 997) {
        assert.equal(valuesOut!.readUInt32LE(4 * i), keysOut.readUInt32LE(4 * i) * 3 + 1);
      }
      // The map holds exactly what we wrote.
      for (const i of [0, 1, 4242, n - 1]) assert.deepEqual(m.lookup(u32(i)), u32(i * 3 + 1));
    });
  });

  describe("pin → get → info", () => {
    it("round trip: ids, sizes and flags equal the created map's and bpftool's", () => {
      const pin = path.join(bpffs().dir("roundtrip"), "m");
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 32, mapFlags: BPF_F_NO_PREALLOC,
        mapName: "roundtrip" });
      for (const k of [1, 2, 3]) m.update(u32(k), u64(k * 100));
      m.pin(pin);
      const got = open(pin);
      assert.deepEqual(got.info, m.info);
      assert.notEqual(got.fd, m.fd);
      const shown = bpftoolShow(pin);
      assert.deepEqual(
        { id: shown.id, type: shown.type, name: shown.name, flags: shown.flags, key: shown.bytes_key,
          value: shown.bytes_value, max: shown.max_entries },
        { id: got.info.id, type: "hash", name: "roundtrip", flags: BPF_F_NO_PREALLOC, key: 4, value: 8, max: 32 });
      // Contents written through one fd are what bpftool and the other fd read.
      const dumped = bpftoolJson<{ key: string[]; value: string[] }[]>("map", "dump", "pinned", pin);
      const fromBpftool = new Map(dumped.map((e) => [hexBytes(e.key).readUInt32LE(), hexBytes(e.value)]));
      assert.deepEqual(fromBpftool, new Map([1, 2, 3].map((k) => [k, u64(k * 100)])));
      got.update(u32(4), u64(400));
      assert.deepEqual(m.lookup(u32(4)), u64(400));
    });

    it('"ro" cannot write (EPERM), "wo" cannot read (EPERM)', () => {
      const pin = path.join(bpffs().dir("access"), "m");
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 8, maxEntries: 8 });
      m.update(u32(1), u64(1));
      m.pin(pin);
      const ro = open(pin, "ro");
      assert.equal(ro.info.id, m.info.id);
      assert.deepEqual(ro.lookup(u32(1)), u64(1));
      assert.equal(allKeys(ro).length, 1);
      assertBpfError(() => ro.update(u32(2), u64(2)), "EPERM", "BPF_MAP_UPDATE_ELEM");
      assertBpfError(() => ro.delete(u32(1)), "EPERM", "BPF_MAP_DELETE_ELEM");
      const { keys, values } = packed(2, 10);
      assert.equal(assertBpfError(() => ro.updateBatch(keys, values, 2), "EPERM", "BPF_MAP_UPDATE_BATCH").count, 0);
      const wo = open(pin, "wo");
      assert.equal(wo.info.id, m.info.id);
      assertBpfError(() => wo.lookup(u32(1)), "EPERM", "BPF_MAP_LOOKUP_ELEM");
      assertBpfError(() => wo.nextKeyInto(null, Buffer.alloc(4)), "EPERM", "BPF_MAP_GET_NEXT_KEY");
      assertBpfError(() => wo.lookupBatch(null, Buffer.alloc(4), Buffer.alloc(8), Buffer.alloc(16), 2), "EPERM",
        "BPF_MAP_LOOKUP_BATCH");
      wo.update(u32(3), u64(3));
      assert.deepEqual(m.lookup(u32(3)), u64(3));
      assert.deepEqual(allKeys(m).map((k) => k.readUInt32LE()).sort(), [1, 3]);
    });

    it("mapGetNextId enumerates our map; openMapById opens the same map", () => {
      const m = create({ mapType: T.array, keySize: 4, valueSize: 4, maxEntries: 3, mapName: "by_id" });
      const ids: number[] = [];
      for (let id = native.nextMapId(0); id !== undefined; id = native.nextMapId(id)) {
        assert.ok(ids.length === 0 || id > ids[ids.length - 1], "ids ascend");
        ids.push(id);
        assert.ok(ids.length < 1_000_000);
      }
      assert.ok(ids.includes(m.info.id));
      assert.equal(native.nextMapId(0x7ffffffe), undefined);
      const byId = own(native.openMapById(m.info.id, "rw", native.plainValueBytes));
      assert.deepEqual(byId.info, m.info);
      byId.update(u32(2), u32(99));
      assert.deepEqual(m.lookup(u32(2)), u32(99));
      const roById = own(native.openMapById(m.info.id, "ro", native.plainValueBytes));
      assertBpfError(() => roById.update(u32(2), u32(1)), "EPERM", "BPF_MAP_UPDATE_ELEM");
    });
  });

  describe("freeze", () => {
    it("a frozen map refuses user-space writes; fdinfo and bpftool report frozen", () => {
      const pin = path.join(bpffs().dir("freeze"), "m");
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 4 });
      m.update(u32(1), u32(1));
      m.pin(pin);
      assert.equal(m.fdinfo().frozen, "0");
      assert.equal(bpftoolShow(pin).frozen, 0);
      m.freeze();
      assert.equal(m.fdinfo().frozen, "1");
      assert.equal(bpftoolShow(pin).frozen, 1);
      assert.equal(open(pin).fdinfo().frozen, "1");
      assertBpfError(() => m.update(u32(2), u32(2)), "EPERM", "BPF_MAP_UPDATE_ELEM");
      assertBpfError(() => m.delete(u32(1)), "EPERM", "BPF_MAP_DELETE_ELEM");
      assert.equal(assertBpfError(() => m.updateBatch(u32(3), u32(3), 1), "EPERM", "BPF_MAP_UPDATE_BATCH").count, 0);
      // Freezing twice: the map is no longer writable, so the kernel says EPERM.
      assertBpfError(() => m.freeze(), "EPERM", "BPF_MAP_FREEZE");
      assert.deepEqual(m.lookup(u32(1)), u32(1));
      assert.equal(allKeys(m).length, 1);
    });
  });

  describe("renaming pins", () => {
    it("renameat2 RENAME_NOREPLACE over an existing pin is EEXIST and changes nothing", () => {
      const dir = bpffs().dir("noreplace");
      const a = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1 });
      const b = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1 });
      a.pin(path.join(dir, "a"));
      b.pin(path.join(dir, "b"));
      let caught: unknown;
      try {
        native.renameat2(path.join(dir, "b"), path.join(dir, "a"), native.RENAME_NOREPLACE);
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof Error);
      assert.equal((caught as NodeJS.ErrnoException).code, "EEXIST");
      assert.equal((caught as NodeJS.ErrnoException).errno, os.constants.errno.EEXIST);
      assert.equal(open(path.join(dir, "a")).info.id, a.info.id);
      assert.equal(open(path.join(dir, "b")).info.id, b.info.id);
      // Onto a free name it works.
      native.renameat2(path.join(dir, "b"), path.join(dir, "c"), native.RENAME_NOREPLACE);
      assert.equal(open(path.join(dir, "c")).info.id, b.info.id);
      assert.equal(fs.existsSync(path.join(dir, "b")), false);
    });

    it("rename(2) over an existing pin swaps the map in atomically; RENAME_EXCHANGE swaps two pins", () => {
      const dir = bpffs().dir("swap");
      const old = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1 });
      const fresh = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 2 });
      const live = path.join(dir, "live");
      const staged = path.join(dir, "staged");
      old.pin(live);
      fresh.pin(staged);
      fs.renameSync(staged, live);
      assert.equal(fs.existsSync(staged), false);
      assert.equal(open(live).info.id, fresh.info.id);
      assert.equal(bpftoolShow(live).id, fresh.info.id);
      assert.equal(bpftoolShow(live).max_entries, 2);

      const other = path.join(dir, "other");
      old.pin(other);
      native.renameat2(live, other, native.RENAME_EXCHANGE);
      assert.equal(open(live).info.id, old.info.id);
      assert.equal(open(other).info.id, fresh.info.id);
    });
  });

  describe("file descriptor ownership", () => {
    it("5000 openPinnedMap+close and createMap+close leave /proc/self/fd unchanged", () => {
      const pin = path.join(bpffs().dir("leak"), "m");
      const m = create({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1 });
      m.pin(pin);
      native.openPinnedMap(pin, "rw", native.plainValueBytes).close(); // warm up anything lazily opened
      const before = fdCount();
      for (let i = 0; i < 5000; i++) {
        const got = native.openPinnedMap(pin, i % 3 === 0 ? "ro" : "rw", native.plainValueBytes);
        got.close();
      }
      assert.equal(fdCount(), before);
      for (let i = 0; i < 5000; i++) {
        native.createMap({ mapType: T.array, keySize: 4, valueSize: 4, maxEntries: 1 }, native.plainValueBytes).close();
      }
      assert.equal(fdCount(), before);
      // Failing opens leak nothing either.
      for (let i = 0; i < 500; i++) {
        assert.throws(() => native.openPinnedMap(pin + "-missing", "rw", native.plainValueBytes), { code: "ENOENT" });
      }
      assert.equal(fdCount(), before);
    });

    it("close() twice is harmless; a closed MapFd throws instead of touching the fd", () => {
      const m = native.createMap({ mapType: T.hash, keySize: 4, valueSize: 4, maxEntries: 1 }, native.plainValueBytes);
      const fd = m.fd;
      assert.equal(fs.readlinkSync(`/proc/self/fd/${fd}`), "anon_inode:bpf-map");
      m.close();
      assert.equal(m.closed, true);
      assert.throws(() => fs.fstatSync(fd), { code: "EBADF" });
      m.close();
      assert.throws(() => m.fd, /closed/);
      assert.throws(() => m.lookup(u32(1)), /closed/);
      assert.throws(() => m.update(u32(1), u32(1)), /closed/);
      assert.throws(() => m.readInfo(), /closed/);
      assert.throws(() => m.pin(path.join(bpffs().root, "closed")), /closed/);
      assert.equal(fs.existsSync(path.join(bpffs().root, "closed")), false);
    });

    it("the finalizer closes fds of MapFds that were dropped without close()", async function () {
      const gc = getGc();
      assert.ok(gc, "no gc(): cannot test the finalizer");
      const fds = ((): number[] => {
        const list: number[] = [];
        for (let i = 0; i < 20; i++) list.push(native.createMap({ mapType: T.array, keySize: 4, valueSize: 4, maxEntries: 1 }, native.plainValueBytes).fd);
        return list;
      })();
      const isMap = (fd: number): boolean => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:bpf-map";
        } catch {
          return false;
        }
      };
      assert.ok(fds.every(isMap));
      for (let round = 0; round < 100 && fds.some(isMap); round++) {
        await nextTurn();
        gc();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(fds.filter(isMap), []);
    });
  });

  describe("possible CPUs and per-CPU values", () => {
    it("possibleCpus() is the number of CPUs in /sys/devices/system/cpu/possible", () => {
      assert.equal(native.possibleCpus(), cpusFromSysfs());
      assert.ok(native.possibleCpus() >= os.cpus().length);
    });

    it("per-CPU valueBytes = round_up(valueSize, 8) * possibleCpus, and each slot round-trips", () => {
      const cpus = cpusFromSysfs();
      const plain = create({ mapType: T.hash, keySize: 4, valueSize: 3, maxEntries: 2 });
      assert.equal(plain.valueBytes, 3);
      for (const [mapType, valueSize, slot] of [
        [T.percpu_hash, 3, 8], [T.percpu_array, 12, 16], [T.lru_percpu_hash, 8, 8], [T.percpu_array, 17, 24],
      ]) {
        // The binding knows no map types: the layout comes from the core's type table.
        const m = create({ mapType, keySize: 4, valueSize, maxEntries: 4 }, valueLayout);
        assert.equal(m.valueBytes, slot * cpus);
        const value = Buffer.alloc(m.valueBytes);
        for (let cpu = 0; cpu < cpus; cpu++) value.fill(cpu + 1, cpu * slot, cpu * slot + valueSize);
        m.update(u32(1), value);
        assert.deepEqual(m.lookup(u32(1)), value);
        const pin = path.join(bpffs().dir("percpu"), "m");
        m.pin(pin);
        // bpftool (libbpf) reads one value per possible CPU, in the same order.
        const dump = bpftoolJson<{ key: string[]; values: { cpu: number; value: string[] }[] }[]>("map", "dump", "pinned", pin);
        const entry = dump.find((e) => hexBytes(e.key).readUInt32LE() === 1);
        assert.ok(entry);
        assert.equal(entry.values.length, cpus);
        entry.values.forEach((v, i) => {
          assert.deepEqual(hexBytes(v.value), Buffer.alloc(valueSize, i + 1));
        });
      }
    });
  });
});
