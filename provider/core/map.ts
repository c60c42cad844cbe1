// The map handle: build a kernel map from a kernel-level spec, populate it,
// freeze it, dump it, and read back what the kernel reports. Bytes only; typed
// values are the codecs' business. Every path, errors included, closes every
// fd it opened.
import {
  BPF_ANY,
  BPF_F_LOCK,
  createMap,
  isBpfError,
  loadBtf,
  openPinnedMap,
  NotAMapError,
  type BtfFd,
  type BtfLoadError,
  type MapFd,
  type MapInfo,
} from "../../native";
import { pathInBtfLog, type MapBtf } from "./btf";
import { liveHasSpinLock, readLiveBtf, SPIN_LOCK_MAP_TYPES } from "./btfmap";
import { EbpfError, kernelError } from "./errors";
import { mapTypeInfo, mapTypeName, valueLayout } from "./maptypes";
import { faultPoint } from "./faults";

/** A map as BPF_MAP_CREATE takes it: numeric type and flags, sizes as the kernel wants them. */
export interface KernelMapSpec {
  mapType: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags: number;
  name?: string;
  numaNode?: number;
  mapExtra?: bigint;
  /** The inner map template of array_of_maps / hash_of_maps. */
  inner?: KernelMapSpec;
  /** The BTF of the key and value (btfmap.ts btfOfSpec); absent: a map without BTF. */
  btf?: MapBtf;
}

/**
 * One entry in kernel bytes. `key` is null for maps without keys (queue,
 * stack, bloom filter). `value` holds every possible CPU's slot for per-CPU
 * maps. For maps of maps, `innerPinPath` names the map whose fd is written.
 */
export interface RawEntry {
  key: Buffer | null;
  value: Buffer;
  innerPinPath?: string;
}

/** Whether entries of this type have no key (pushed in order instead). */
export function isKeyless(mapType: number): boolean {
  return mapTypeInfo(mapType)?.keyless === true;
}

/** Whether every index of this type always exists (arrays): "absent" means all-zero. */
export function isArrayLike(mapType: number): boolean {
  return mapTypeInfo(mapType)?.arrayLike === true;
}

/** Whether values are other maps (written as fds, read back as map IDs). */
export function isMapOfMaps(mapType: number): boolean {
  return mapTypeInfo(mapType)?.mapInMap === true;
}

/** Whether the kernel has BPF_MAP_*_BATCH commands for this type. */
function hasBatch(mapType: number): boolean {
  return mapTypeInfo(mapType)?.batch === true;
}

/**
 * Whether user space can enumerate this map's contents without consuming them
 * and they are declarable: keyed types only. Types whose contents cannot be
 * declared (fds, streams, kernel-written stack traces, arena pages) are not
 * read: their lookup answers ENOTSUPP/EOPNOTSUPP/ENOSPC or has no keys.
 */
export function isDumpable(mapType: number): boolean {
  return mapTypeInfo(mapType)?.dumpable === true;
}

/**
 * BPF_MAP_CREATE from `spec` (with a temporary inner template map for maps of
 * maps, closed before returning). Returns the unpinned, owned map. Throws a
 * wrapped kernel error naming `label` (the pin path).
 */
export function createKernelMap(spec: KernelMapSpec, label: string): MapFd {
  let inner: MapFd | undefined;
  let btf: BtfFd | undefined;
  try {
    if (spec.inner) inner = createKernelMap(spec.inner, `${label} (inner map template)`);
    if (spec.btf) btf = loadMapBtf(spec.btf, label);
    return createMap({
      mapType: spec.mapType,
      keySize: spec.keySize,
      valueSize: spec.valueSize,
      maxEntries: spec.maxEntries,
      mapFlags: spec.mapFlags,
      innerMapFd: inner?.fd,
      numaNode: spec.numaNode,
      mapName: spec.name,
      mapExtra: spec.mapExtra,
      ...(btf && { btfFd: btf.fd, btfKeyTypeId: spec.btf!.keyTypeId, btfValueTypeId: spec.btf!.valueTypeId }),
    }, valueLayout);
  } catch (error) {
    const btfHint = "the kernel rejected the map's attributes (type, sizes, flags or name) or its BTF (keyType, valueType); set btf: false to create the map without BTF";
    throw kernelError("create map", label, error, {}, btf ? { EINVAL: btfHint } : {});
  } finally {
    inner?.close();
    // The map holds its own reference to the BTF object.
    btf?.close();
  }
}

// BPF_BTF_LOAD of a map's BTF; a refusal names the declaration the
// verifier's log is about, and the log's last line.
function loadMapBtf(btf: MapBtf, label: string): BtfFd {
  try {
    return loadBtf(btf.data);
  } catch (error) {
    const log = (error as BtfLoadError).log ?? "";
    const field = pathInBtfLog(log, btf.paths) ?? "keyType/valueType";
    const last = log.split("\n").pop()?.trim();
    throw kernelError("create map", label, error, {}, {
      EINVAL: `the kernel refused the BTF of ${field}${last ? ` (${last})` : ""}; set btf: false to create the map without BTF`,
    });
  }
}

// BPF_F_LOCK for maps whose value holds a bpf_spin_lock, 0 otherwise; read
// once per fd from the map's BTF. Without CAP_SYS_ADMIN (BTF by ID) the flag
// is left out: the kernel still keeps the lock word out of reads and writes.
const lockFlags = new WeakMap<MapFd, number>();
/** The element flags reads and writes of `map` take: BPF_F_LOCK where its value has a bpf_spin_lock. */
export function elementFlags(map: MapFd): number {
  let flags = lockFlags.get(map);
  if (flags === undefined) {
    flags = 0;
    const type = mapTypeName(map.info.type);
    if (type !== undefined && SPIN_LOCK_MAP_TYPES.has(type) && map.info.btfValueTypeId !== 0) {
      try {
        flags = liveHasSpinLock(readLiveBtf(map.info, `map ${map.info.id}`)) ? BPF_F_LOCK : 0;
      } catch {
        // Unreadable BTF (no CAP_SYS_ADMIN): plain reads and writes still work.
        flags = 0;
      }
    }
    lockFlags.set(map, flags);
  }
  return flags;
}

/** Opens the pin read-write or read-only; throws EbpfError "PinNotFound" when nothing is pinned, "NotAMap" when it holds a program or link. */
export function openPinned(pinPath: string, access: "rw" | "ro" = "rw"): MapFd {
  try {
    return openPinnedMap(pinPath, access, valueLayout);
  } catch (error) {
    if (error instanceof NotAMapError) {
      throw new EbpfError("NotAMap", `${pinPath} holds a BPF ${error.objectKind}, not a map; leave it to whoever pinned it and choose another pinPath`);
    }
    throw kernelError("open pinned map", pinPath, error, { ENOENT: "PinNotFound" });
  }
}

/**
 * Opens the maps named by entries' innerPinPath and returns the entries with
 * their fds written into the values, plus a close() for those fds. Throws
 * (having closed what it opened) if an inner pin cannot be opened.
 */
function withInnerFds(entries: RawEntry[]): { entries: RawEntry[]; close(): void } {
  const opened: MapFd[] = [];
  const close = () => opened.forEach((map) => map.close());
  try {
    const resolved = entries.map((entry) => {
      if (entry.innerPinPath === undefined) return entry;
      const inner = openPinned(entry.innerPinPath, "ro");
      opened.push(inner);
      const value = Buffer.alloc(4);
      value.writeUInt32LE(inner.fd);
      return { key: entry.key, value };
    });
    return { entries: resolved, close };
  } catch (error) {
    close();
    throw error;
  }
}

/**
 * Writes `entries` into `map`: pushed in order for queue/stack/bloom filter,
 * batched (BPF_MAP_UPDATE_BATCH) where the type has it, else one by one.
 * Throws a wrapped kernel error naming `label`; what was written stays written
 * (callers of a fresh map discard it; delta updates are idempotent).
 */
export function writeEntries(map: MapFd, entries: RawEntry[], label: string): void {
  if (entries.length === 0) return;
  const resolved = withInnerFds(entries);
  try {
    const list = resolved.entries;
    if (isKeyless(map.info.type)) {
      try {
        list.forEach((entry, index) => {
          faultPoint(`write:${index}`);
          map.update(entry.key, entry.value, BPF_ANY | elementFlags(map));
        });
      } catch (error) {
        throw kernelError("write entries of", label, error, { EPERM: "Frozen" });
      }
      return;
    }
    writePacked(map, Buffer.concat(list.map((entry) => entry.key as Buffer)), Buffer.concat(list.map((entry) => entry.value)), list.length, label);
  } finally {
    resolved.close();
  }
}

/**
 * Writes `count` packed entries (keys and values back to back, as a table
 * holds them) into `map`: batched where the type has it, else one by one.
 * Not for maps of maps or keyless types. Throws a wrapped kernel error naming
 * `label` (EbpfError "Frozen" for a frozen map); what was written stays
 * written, as with writeEntries.
 */
export function writePacked(map: MapFd, keys: Buffer, values: Buffer, count: number, label: string): void {
  if (count === 0) return;
  const { keySize } = map.info;
  const valueBytes = map.valueBytes;
  try {
    if (!hasBatch(map.info.type) || count === 1) {
      for (let index = 0; index < count; index++) {
        faultPoint(`write:${index}`);
        map.update(keys.subarray(index * keySize, (index + 1) * keySize), values.subarray(index * valueBytes, (index + 1) * valueBytes), BPF_ANY | elementFlags(map));
      }
      return;
    }
    faultPoint("write:0");
    let written = 0;
    while (written < count) {
      written += map.updateBatch(keys.subarray(written * keySize), values.subarray(written * valueBytes), count - written, elementFlags(map));
    }
  } catch (error) {
    throw kernelError("write entries of", label, error, { EPERM: "Frozen" });
  }
}

/**
 * Deletes `count` packed keys from `map` (arrays: their values are zeroed).
 * Keys already gone are not an error. Throws a wrapped kernel error.
 */
export function deletePacked(map: MapFd, keys: Buffer, count: number, label: string): void {
  if (count === 0) return;
  if (isArrayLike(map.info.type) && !isMapOfMaps(map.info.type)) {
    writePacked(map, keys, Buffer.alloc(count * map.valueBytes), count, label);
    return;
  }
  const { keySize } = map.info;
  deleteKeys(map, Array.from({ length: count }, (_, index) => keys.subarray(index * keySize, (index + 1) * keySize)), label);
}

/** A map's entries packed back to back in dump order (see dumpPacked). */
export interface PackedDump {
  keys: Buffer;
  values: Buffer;
  count: number;
}

/**
 * Reads every entry of `map` into two growing buffers, with no object per
 * entry: BPF_MAP_LOOKUP_BATCH in chunks where the type has it, else
 * get-next-key + lookup. Arrays report every index. Throws a wrapped kernel
 * error.
 */
export function dumpPacked(map: MapFd, label: string): PackedDump {
  const { keySize } = map.info;
  const valueBytes = map.valueBytes;
  if (!isDumpable(map.info.type)) return { keys: Buffer.alloc(0), values: Buffer.alloc(0), count: 0 };
  try {
    if (!hasBatch(map.info.type)) return packEntries(dumpByKey(map), keySize, valueBytes);
    let chunk = Math.max(1, Math.min(map.info.maxEntries, 65536));
    let room = chunk;
    let keys = Buffer.allocUnsafe(room * keySize);
    let values = Buffer.allocUnsafe(room * valueBytes);
    let count = 0;
    let inBatch: Buffer | null = null;
    let outBatch = Buffer.alloc(Math.max(keySize, 8));
    for (;;) {
      if (room - count < chunk) {
        // Doubling keeps the copies linear in the entries.
        room = Math.max(room * 2, count + chunk);
        const largerKeys = Buffer.allocUnsafe(room * keySize);
        keys.copy(largerKeys, 0, 0, count * keySize);
        keys = largerKeys;
        const largerValues = Buffer.allocUnsafe(room * valueBytes);
        values.copy(largerValues, 0, 0, count * valueBytes);
        values = largerValues;
      }
      let result;
      try {
        result = map.lookupBatch(inBatch, outBatch, keys.subarray(count * keySize), values.subarray(count * valueBytes), chunk, elementFlags(map));
      } catch (error) {
        // Hash buckets are returned whole; a chunk smaller than a bucket is ENOSPC.
        if (isBpfError(error, "ENOSPC")) {
          chunk *= 2;
          continue;
        }
        if (count === 0 && inBatch === null && (isBpfError(error, "EOPNOTSUPP") || isBpfError(error, "ENOTSUPP") || isBpfError(error, "EINVAL"))) {
          return packEntries(dumpByKey(map), keySize, valueBytes);
        }
        throw error;
      }
      count += result.count;
      if (result.done) return { keys: keys.subarray(0, count * keySize), values: values.subarray(0, count * valueBytes), count };
      inBatch = outBatch;
      outBatch = Buffer.alloc(inBatch.length);
    }
  } catch (error) {
    throw kernelError("read entries of", label, error);
  }
}

function packEntries(entries: RawEntry[], keySize: number, valueBytes: number): PackedDump {
  const keys = Buffer.allocUnsafe(entries.length * keySize);
  const values = Buffer.allocUnsafe(entries.length * valueBytes);
  entries.forEach((entry, index) => {
    entry.key!.copy(keys, index * keySize);
    entry.value.copy(values, index * valueBytes);
  });
  return { keys, values, count: entries.length };
}

/**
 * Deletes `keys` from `map` (arrays cannot delete: their entries are zeroed).
 * Keys that are already gone are not an error. Throws a wrapped kernel error.
 */
export function deleteKeys(map: MapFd, keys: Buffer[], label: string): void {
  if (keys.length === 0) return;
  try {
    if (isArrayLike(map.info.type)) {
      const zero = Buffer.alloc(map.valueBytes);
      if (isMapOfMaps(map.info.type)) {
        keys.forEach((key) => map.delete(key));
      } else {
        writeEntries(map, keys.map((key) => ({ key, value: zero })), label);
      }
      return;
    }
    if (hasBatch(map.info.type) && keys.length > 1) {
      try {
        map.deleteBatch(Buffer.concat(keys), keys.length);
        return;
      } catch (error) {
        // A key deleted concurrently makes the batch stop with ENOENT; finish one by one.
        if (!isBpfError(error, "ENOENT")) throw error;
      }
    }
    keys.forEach((key) => map.delete(key));
  } catch (error) {
    throw kernelError("delete entries of", label, error, { EPERM: "Frozen" });
  }
}

/**
 * Reads every entry of `map`: BPF_MAP_LOOKUP_BATCH in chunks where the type
 * has it, else get-next-key + lookup. For maps of maps the values are inner
 * map IDs (u32). Arrays report every index. Throws a wrapped kernel error.
 */
export function dumpEntries(map: MapFd, label: string): RawEntry[] {
  const { keys, values, count } = dumpPacked(map, label);
  const { keySize } = map.info;
  const valueBytes = map.valueBytes;
  const entries = new Array<RawEntry>(count);
  for (let index = 0; index < count; index++) {
    entries[index] = { key: keys.subarray(index * keySize, (index + 1) * keySize), value: values.subarray(index * valueBytes, (index + 1) * valueBytes) };
  }
  return entries;
}

function dumpByKey(map: MapFd): RawEntry[] {
  const entries: RawEntry[] = [];
  let key: Buffer | null = null;
  for (;;) {
    const next = Buffer.alloc(map.info.keySize);
    if (!map.nextKeyInto(key, next)) return entries;
    const value = map.lookup(next, elementFlags(map));
    // A key deleted between get-next-key and lookup is simply gone.
    if (value !== undefined) entries.push({ key: next, value });
    key = next;
  }
}

/** What the kernel reports about a live map: its info and the fdinfo fields we use. */
export interface LiveMapState {
  info: MapInfo;
  frozen: boolean;
  memlock: number;
}

/** Reads info + fdinfo (frozen, memlock) of an open map. */
export function readLiveState(map: MapFd): LiveMapState {
  const info = map.readInfo();
  const fdinfo = map.fdinfo();
  return { info, frozen: fdinfo.frozen === "1", memlock: Number(fdinfo.memlock ?? 0) };
}

/** BPF_MAP_FREEZE; throws a wrapped kernel error (EBUSY: writable mmap). */
export function freezeMap(map: MapFd, label: string): void {
  try {
    map.freeze();
  } catch (error) {
    throw kernelError("freeze", label, error);
  }
}

/**
 * Builds a complete map off to the side: create, populate (with `entries`,
 * or by calling it with the new map), freeze if asked.
 * Returns the owned, unpinned map; on any failure closes it and rethrows, so
 * nothing is left behind (an unpinned map with no fd is freed by the kernel).
 */
export function buildMap(spec: KernelMapSpec, entries: RawEntry[] | ((map: MapFd) => void), freeze: boolean, label: string): MapFd {
  const map = createKernelMap(spec, label);
  try {
    faultPoint("populate");
    if (typeof entries === "function") entries(map);
    else writeEntries(map, entries, label);
    if (freeze) freezeMap(map, label);
    return map;
  } catch (error) {
    map.close();
    throw error;
  }
}
