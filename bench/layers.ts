// Our layers doing the benchmark work, in this process: the binding (Buffers
// in and out), the core (typed contents → kernel, kernel → decoded entries, a
// 1% delta) and the dynamic provider's methods called directly. Same maps and
// data as bench/baseline.c: hash u32 → u64, keys 0..N-1, values key * 7 + 1,
// the delta giving every (100 / deltaPercent)-th key a new value.
import * as fs from "node:fs";
import * as path from "node:path";
import { createMap, openPinnedMap, plainValueBytes, type MapFd } from "../native";
import { checkSpec, type MapSpec } from "../provider/core/spec";
import { createPinnedMap, observePinnedMap, updatePinnedMap } from "../provider/core/lifecycle";
import { provider } from "../provider/dynamic/index";

/** One measurement: what, how long, over how many entries (or operations). */
export interface Sample {
  id: string;
  ms: number;
  entries: number;
}

export interface LayerOptions {
  entries: number;
  deltaPercent: number;
  /** Entries per BPF_MAP_LOOKUP_BATCH call where we choose (the binding rows). */
  chunk: number;
  /** A directory inside a bpffs mount for pins. */
  pinDir: string;
  /** Called with each sample as it is taken. */
  onSample?: (sample: Sample) => void;
}

const HASH = 1;
const DELTA_BUMP = 1000000007;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function timed<T>(samples: Sample[], options: LayerOptions, id: string, entries: number, fn: () => T): T {
  gc();
  const start = process.hrtime.bigint();
  const result = fn();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const sample = { id, ms, entries };
  samples.push(sample);
  options.onSample?.(sample);
  return result;
}

async function timedAsync<T>(samples: Sample[], options: LayerOptions, id: string, entries: number, fn: () => Promise<T>): Promise<T> {
  gc();
  const start = process.hrtime.bigint();
  const result = await fn();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const sample = { id, ms, entries };
  samples.push(sample);
  options.onSample?.(sample);
  return result;
}

// Writes key * 7 + 1 as a little-endian u64 at `offset` without BigInt.
function writeValue(buffer: Buffer, offset: number, key: number, bump = 0): void {
  const value = key * 7 + 1 + bump;
  buffer.writeUInt32LE(value % 0x100000000, offset);
  buffer.writeUInt32LE(Math.floor(value / 0x100000000), offset + 4);
}

function readValue(buffer: Buffer, offset: number): number {
  return buffer.readUInt32LE(offset) + buffer.readUInt32LE(offset + 4) * 0x100000000;
}

function packed(keys: number[], bump = 0): { keys: Buffer; values: Buffer } {
  const keyBytes = Buffer.alloc(keys.length * 4);
  const valueBytes = Buffer.alloc(keys.length * 8);
  keys.forEach((key, i) => {
    keyBytes.writeUInt32LE(key, i * 4);
    writeValue(valueBytes, i * 8, key, bump);
  });
  return { keys: keyBytes, values: valueBytes };
}

function deltaKeys(n: number, deltaPercent: number): number[] {
  const stride = Math.round(100 / deltaPercent);
  const keys: number[] = [];
  for (let i = 0; i < n; i += stride) keys.push(i);
  return keys;
}

function newHash(n: number): MapFd {
  return createMap({ mapType: HASH, keySize: 4, valueSize: 8, maxEntries: n }, plainValueBytes);
}

function writeAll(map: MapFd, keys: Buffer, values: Buffer, count: number): void {
  let written = 0;
  while (written < count) {
    written += map.updateBatch(keys.subarray(written * 4), values.subarray(written * 8), count - written);
  }
}

// Dumps the whole map into `keys`/`values` (room for every entry + a chunk).
function dumpAll(map: MapFd, keys: Buffer, values: Buffer, chunk: number): number {
  let total = 0;
  let inBatch: Buffer | null = null;
  let outBatch = Buffer.alloc(8);
  for (;;) {
    const result = map.lookupBatch(inBatch, outBatch, keys.subarray(total * 4), values.subarray(total * 8), chunk);
    total += result.count;
    if (result.done) return total;
    inBatch = outBatch;
    outBatch = Buffer.alloc(8);
  }
}

async function dumpAllAsync(map: MapFd, keys: Buffer, values: Buffer, chunk: number): Promise<number> {
  let total = 0;
  let inBatch: Buffer | null = null;
  let outBatch = Buffer.alloc(8);
  for (;;) {
    const result = await map.lookupBatchAsync(inBatch, outBatch, keys.subarray(total * 4), values.subarray(total * 8), chunk);
    total += result.count;
    if (result.done) return total;
    inBatch = outBatch;
    outBatch = Buffer.alloc(8);
  }
}

function expect(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`bench: ${what}: got ${got}, expected ${want}`);
}

/** The binding: per-element update/lookup, batch update/lookup (sync and async), the delta. */
export async function bindingLayer(options: LayerOptions): Promise<Sample[]> {
  const n = options.entries;
  const samples: Sample[] = [];
  const all = packed(Array.from({ length: n }, (_, i) => i));

  let map = newHash(n);
  try {
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(8);
    timed(samples, options, "binding.update_elem", n, () => {
      for (let i = 0; i < n; i++) {
        key.writeUInt32LE(i);
        writeValue(value, 0, i);
        map.update(key, value);
      }
    });
    const found = timed(samples, options, "binding.lookup_elem", n, () => {
      let hits = 0;
      for (let i = 0; i < n; i++) {
        key.writeUInt32LE(i);
        if (map.lookupInto(key, value)) hits++;
      }
      return hits;
    });
    expect("lookupInto hits", found, n);
  } finally {
    map.close();
  }

  // The same per-element work through a prepared element (buffers bound once).
  map = newHash(n);
  try {
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(8);
    const element = map.prepare(key, value);
    try {
      timed(samples, options, "binding.update_elem_prepared", n, () => {
        for (let i = 0; i < n; i++) {
          key.writeUInt32LE(i);
          writeValue(value, 0, i);
          element.update();
        }
      });
      const found = timed(samples, options, "binding.lookup_elem_prepared", n, () => {
        let hits = 0;
        for (let i = 0; i < n; i++) {
          key.writeUInt32LE(i);
          if (element.lookup()) hits++;
        }
        return hits;
      });
      expect("prepared lookup hits", found, n);
    } finally {
      element.close();
    }
  } finally {
    map.close();
  }

  const outKeys = Buffer.alloc((n + options.chunk) * 4);
  const outValues = Buffer.alloc((n + options.chunk) * 8);
  map = newHash(n);
  try {
    timed(samples, options, "binding.update_batch", n, () => writeAll(map, all.keys, all.values, n));
    expect("batch dump", timed(samples, options, "binding.lookup_batch", n, () => dumpAll(map, outKeys, outValues, options.chunk)), n);
    expect("async batch dump", await timedAsync(samples, options, "binding.lookup_batch_async", n,
      () => dumpAllAsync(map, outKeys, outValues, options.chunk)), n);

    const changed = deltaKeys(n, options.deltaPercent);
    const delta = packed(changed, DELTA_BUMP);
    timed(samples, options, "binding.delta_update_batch", changed.length, () => writeAll(map, delta.keys, delta.values, changed.length));
    // Reconciled: dump, compare with key * 7 + 1, write back what differs.
    const fixed = timed(samples, options, "binding.delta_reconcile", changed.length, () => {
      const count = dumpAll(map, outKeys, outValues, options.chunk);
      const fixKeys = Buffer.alloc(count * 4);
      const fixValues = Buffer.alloc(count * 8);
      // Typed-array views over the dump (host order, as the kernel wrote it).
      const liveKeys = new Uint32Array(outKeys.buffer, outKeys.byteOffset, count);
      const liveValues = new Uint32Array(outValues.buffer, outValues.byteOffset, count * 2);
      let differing = 0;
      for (let i = 0; i < count; i++) {
        const k = liveKeys[i]!;
        const want = k * 7 + 1;
        if (liveValues[2 * i] !== want % 0x100000000 || liveValues[2 * i + 1] !== Math.floor(want / 0x100000000)) {
          fixKeys.writeUInt32LE(k, differing * 4);
          writeValue(fixValues, differing * 8, k);
          differing++;
        }
      }
      writeAll(map, fixKeys, fixValues, differing);
      return differing;
    });
    expect("reconciled entries", fixed, changed.length);
  } finally {
    map.close();
  }

  map = newHash(n);
  try {
    await timedAsync(samples, options, "binding.update_batch_async", n, async () => {
      let written = 0;
      while (written < n) {
        written += await map.updateBatchAsync(all.keys.subarray(written * 4), all.values.subarray(written * 8), n - written);
      }
    });
  } finally {
    map.close();
  }
  return samples;
}

/** The typed declaration a user writes: u32 keys, u64 values as numbers. */
export function declaration(pinPath: string, n: number, bumped: ReadonlySet<number> = new Set()): Record<string, unknown> {
  const contents = new Array<{ key: number; value: number }>(n);
  for (let i = 0; i < n; i++) contents[i] = { key: i, value: i * 7 + 1 + (bumped.has(i) ? DELTA_BUMP : 0) };
  return { pinPath, mapType: "hash", keyType: "u32", valueType: "u64", maxEntries: n, contents };
}

function unpin(pinPath: string): void {
  fs.rmSync(pinPath, { force: true });
}

/** The core: checkSpec, createPinnedMap, observePinnedMap, updatePinnedMap (1% delta). */
export function coreLayer(options: LayerOptions): Sample[] {
  const n = options.entries;
  const samples: Sample[] = [];
  const pinPath = path.join(options.pinDir, "core");
  unpin(pinPath);
  const changed = new Set(deltaKeys(n, options.deltaPercent));
  const input = declaration(pinPath, n);
  const spec: MapSpec = timed(samples, options, "core.check", n, () => checkSpec(input));
  const created = timed(samples, options, "core.create", n, () => createPinnedMap(spec));
  try {
    expect("core.create entryCount", created.entryCount, n);
    const observed = timed(samples, options, "core.observe", n, () => observePinnedMap(spec, created.mapId));
    if (observed.status !== "ok") throw new Error(`bench: observePinnedMap: ${observed.status}`);
    expect("core.observe contents", observed.observation.contents.length, n);
    const newSpec = checkSpec(declaration(pinPath, n, changed));
    const updated = timed(samples, options, "core.update", changed.size, () => updatePinnedMap(spec, newSpec, created.mapId));
    if (updated.mapId !== created.mapId) throw new Error("bench: core.update built a new map instead of a delta");
    // The kernel holds the new values: spot-check one changed key.
    const map = openPinnedMap(pinPath, "ro", plainValueBytes);
    try {
      const key = Buffer.alloc(4);
      const first = [...changed][0]!;
      key.writeUInt32LE(first);
      expect("updated value", readValue(map.lookup(key)!, 0), first * 7 + 1 + DELTA_BUMP);
    } finally {
      map.close();
    }
  } finally {
    unpin(pinPath);
  }
  return samples;
}

/** The dynamic provider's methods, as the engine calls them, over the same contents. */
export async function providerLayer(options: LayerOptions): Promise<Sample[]> {
  const n = options.entries;
  const samples: Sample[] = [];
  const pinPath = path.join(options.pinDir, "provider");
  unpin(pinPath);
  const changed = new Set(deltaKeys(n, options.deltaPercent));
  const checkedInputs = await timedAsync(samples, options, "provider.check", n,
    () => provider.check({}, declaration(pinPath, n)));
  if (checkedInputs.failures?.length) throw new Error(`bench: provider.check failed: ${JSON.stringify(checkedInputs.failures.slice(0, 3))}`);
  const created = await timedAsync(samples, options, "provider.create", n, () => provider.create(checkedInputs.inputs));
  try {
    const outs = created.outs as Record<string, unknown>;
    expect("provider.create entryCount", outs.entryCount as number, n);
    const read = await timedAsync(samples, options, "provider.read", n, () => provider.read(created.id, outs));
    // Keyed maps' contents are recorded keyed by key (an object), others as an array.
    const contents = read.props?.contents as unknown[] | Record<string, unknown> | undefined;
    expect("provider.read contents", Array.isArray(contents) ? contents.length : Object.keys(contents ?? {}).length, n);
    const newInputs = (await provider.check(outs, declaration(pinPath, n, changed))).inputs;
    // Counted over the changed entries, like the update it precedes (it compares all of them).
    const diff = await timedAsync(samples, options, "provider.diff", changed.size, () => provider.diff(created.id, outs, newInputs));
    if (!diff.changes) throw new Error("bench: provider.diff saw no change");
    const updated = await timedAsync(samples, options, "provider.update", changed.size,
      () => provider.update(created.id, outs, newInputs));
    if ((updated.outs as Record<string, unknown>).mapId !== outs.mapId) throw new Error("bench: provider.update built a new map instead of a delta");
  } finally {
    unpin(pinPath);
  }
  return samples;
}

// Standalone: node dist/bench/layers.js N PIN_DIR [binding|core|provider]…
if (require.main === module) {
  const [n, pinDir, ...which] = process.argv.slice(2);
  const options: LayerOptions = {
    entries: Number(n ?? 100000),
    deltaPercent: 1,
    chunk: 4096,
    pinDir: pinDir ?? "/sys/fs/bpf",
    onSample: (s) => console.log(JSON.stringify(s)),
  };
  const layers = which.length ? which : ["binding", "core", "provider"];
  (async () => {
    if (layers.includes("binding")) await bindingLayer(options);
    if (layers.includes("core")) coreLayer(options);
    if (layers.includes("provider")) await providerLayer(options);
  })().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
