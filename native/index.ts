// The typed face of the native bpf(2) binding: owned map file descriptors,
// byte-level map commands, and the small pieces of kernel state around them
// (fdinfo, possible CPUs, bpffs detection). Everything here is bytes in,
// bytes out; typed values live in provider/.
import * as fs from "node:fs";
import * as path from "node:path";

// node-gyp-build finds prebuilds/<platform>-<arch>/ or build/Release/ under the
// package root (two levels up from dist/native/).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const load: (dir: string) => unknown = require("node-gyp-build");
const addon = load(path.join(__dirname, "..", "..")) as Addon;

/** The attributes of BPF_MAP_CREATE that a standalone map needs. */
export interface MapCreateAttrs {
  mapType: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags?: number;
  /** A template map for array_of_maps / hash_of_maps. */
  innerMapFd?: number;
  numaNode?: number;
  /** At most 15 bytes of [A-Za-z0-9_.]. */
  mapName?: string;
  mapExtra?: bigint | number;
  /** A BTF object (loadBtf) describing the key and value; with btfKeyTypeId / btfValueTypeId. */
  btfFd?: number;
  /** The BTF type ID of the key (0: none, for maps without keys). */
  btfKeyTypeId?: number;
  /** The BTF type ID of the value; the kernel reads BTF only when this is set. */
  btfValueTypeId?: number;
}

/** struct bpf_map_info as the kernel reports it (OBJ_GET_INFO_BY_FD). */
export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags: number;
  name: string;
  ifindex: number;
  btfVmlinuxValueTypeId: number;
  netnsDev: bigint;
  netnsIno: bigint;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  btfVmlinuxId: number;
  mapExtra: bigint;
  /** How many bytes of the struct the kernel filled in. */
  infoLength: number;
}

/** The result of one lookup batch call. */
export interface BatchLookupResult {
  /** Entries written to the keys/values buffers. */
  count: number;
  /** True when the kernel answered ENOENT: the map is exhausted. */
  done: boolean;
}

interface Addon {
  mapCreate(attrs: MapCreateAttrs): number;
  lookupElem(fd: number, key: Uint8Array | null, value: Uint8Array, flags: number | bigint): boolean;
  lookupAndDeleteElem(fd: number, key: Uint8Array | null, value: Uint8Array, flags: number | bigint): boolean;
  updateElem(fd: number, key: Uint8Array | null, value: Uint8Array | null, flags: number | bigint): void;
  deleteElem(fd: number, key: Uint8Array | null, flags: number | bigint): boolean;
  getNextKey(fd: number, key: Uint8Array | null, nextKey: Uint8Array): boolean;
  lookupBatch(fd: number, inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array, values: Uint8Array,
    count: number, elemFlags: number | bigint, flags: number | bigint): BatchLookupResult;
  lookupAndDeleteBatch(fd: number, inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array,
    values: Uint8Array, count: number, elemFlags: number | bigint, flags: number | bigint): BatchLookupResult;
  lookupBatchAsync(fd: number, inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array, values: Uint8Array,
    count: number, elemFlags: number | bigint, flags: number | bigint): Promise<BatchLookupResult>;
  updateBatch(fd: number, keys: Uint8Array, values: Uint8Array, count: number, elemFlags: number | bigint,
    flags: number | bigint): number;
  updateBatchAsync(fd: number, keys: Uint8Array, values: Uint8Array, count: number, elemFlags: number | bigint,
    flags: number | bigint): Promise<number>;
  deleteBatch(fd: number, keys: Uint8Array, count: number, elemFlags: number | bigint, flags: number | bigint): number;
  freeze(fd: number): void;
  objPin(fd: number, path: string): void;
  objGet(path: string, fileFlags: number): number;
  mapInfo(fd: number): MapInfo;
  mapGetNextId(startId: number): number;
  mapGetFdById(id: number, openFlags: number): number;
  close(fd: number): void;
  renameat2(oldPath: string, newPath: string, flags: number): void;
  openDirAt(dirFd: number | null, name: string): number;
  mkdirAt(dirFd: number, name: string, mode: number): void;
  unlinkAt(dirFd: number, name: string, flags: number): void;
  renameAt2(oldDirFd: number, oldName: string, newDirFd: number, newName: string, flags: number): void;
  fstatfsType(fd: number): number;
  objPinAt(fd: number, dirFd: number, name: string): void;
  objGetAt(dirFd: number, name: string, fileFlags: number): number;
  PreparedElem: new (fd: number, key: Uint8Array | null, value: Uint8Array) => PreparedElement;
  btfLoad(data: Uint8Array, logBuf: Uint8Array | null, logLevel: number): number;
  btfGetFdById(id: number): number;
  btfInfo(fd: number, data: Uint8Array | null): BtfInfo;
}

/**
 * One element of a map, prepared for repeated calls (MapFd.prepare): its key
 * and value buffers are bound once, so each call is a single syscall with no
 * argument to check or convert. Change the bytes of the bound buffers between
 * calls to address other keys or write other values. It holds its own
 * duplicate of the map fd: closing the MapFd does not close it; close() (or
 * garbage collection) does. A call after close() throws a TypeError; kernel
 * errors are thrown as by MapFd's methods.
 */
export interface PreparedElement {
  /** BPF_MAP_LOOKUP_ELEM of the bound key into the bound value buffer; false when the key is absent. */
  lookup(): boolean;
  /** BPF_MAP_UPDATE_ELEM of the bound key and value; flags as MapFd.update (default BPF_ANY). */
  update(flags?: number): void;
  /** BPF_MAP_DELETE_ELEM of the bound key; false when it was absent. */
  delete(): boolean;
  /** Releases the fd and the buffers; a second call does nothing. */
  close(): void;
}

/** struct bpf_btf_info as the kernel reports it (OBJ_GET_INFO_BY_FD on a BTF fd). */
export interface BtfInfo {
  id: number;
  /** Bytes of the raw BTF blob. */
  btfSize: number;
  /** Whether this is the kernel's (vmlinux or a module's) BTF. */
  kernelBtf: boolean;
  /** The name of kernel BTF ("vmlinux", a module); empty for loaded BTF. */
  name: string;
}

/** Update flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST) and the element flag BPF_F_LOCK. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;
/** file_flags / open_flags for OBJ_GET and MAP_GET_FD_BY_ID. */
export const BPF_F_RDONLY = 1 << 3;
export const BPF_F_WRONLY = 1 << 4;
/** renameat2(2) flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
/** unlinkat(2) flag: remove an (empty) directory. */
export const AT_REMOVEDIR = 0x200;
/** statfs(2) f_type of a bpffs mount (linux/magic.h). */
export const BPF_FS_MAGIC = 0xcafe4a11;

/**
 * An Error thrown by a bpf(2) command: `code` is the errno name ('ENOENT'),
 * `errno` its number, `command` the bpf command ('BPF_MAP_CREATE'). Batch
 * commands also carry `count`, the elements processed before the failure.
 */
export interface BpfError extends Error {
  code: string;
  errno: number;
  syscall: "bpf";
  command: string;
  count?: number;
}

/** Reports whether `error` is a BpfError, optionally with the given errno name. */
export function isBpfError(error: unknown, code?: string): error is BpfError {
  return error instanceof Error && typeof (error as BpfError).command === "string" &&
    (code === undefined || (error as BpfError).code === code);
}

/**
 * Returns the bytes of one value as user space reads and writes it, from the
 * map's info. This binding knows no map types: per-CPU maps hold one
 * round_up(valueSize, 8) slot per possible CPU, and the caller who knows the
 * type (the core's map type table) says so: every function that opens a
 * map takes one, with no default, so that a per-CPU map can never be sized
 * short and the kernel never writes past a value buffer. plainValueBytes is
 * right for every map type that is not per-CPU.
 */
export type ValueLayout = (info: MapInfo) => number;

/** The value layout of maps that are not per-CPU: valueSize bytes. */
export const plainValueBytes: ValueLayout = (info) => info.valueSize;

// Safety net for fds whose owner was dropped without close(). Explicit close()
// unregisters, so a reused fd number is never closed twice.
const finalizer = new FinalizationRegistry<number>((fd) => {
  try {
    addon.close(fd);
  } catch {
    // Nothing to report to: the owner is gone.
  }
});

/**
 * A file descriptor owned by this object: close() is idempotent, and a
 * finalizer closes an fd whose owner was dropped without calling it.
 */
abstract class OwnedFd {
  #fd: number;
  readonly #what: string;

  /** Takes ownership of `fd`; `what` names it in the error of a use after close. */
  protected constructor(fd: number, what: string) {
    this.#fd = fd;
    this.#what = what;
    finalizer.register(this, fd, this);
  }

  /** The raw fd number. Throws if closed. */
  get fd(): number {
    if (this.#fd < 0) throw new Error(`${this.#what} fd is closed`);
    return this.#fd;
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Closes the fd; a second call does nothing. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    finalizer.unregister(this);
    addon.close(fd);
  }
}

/**
 * An open map file descriptor, owned by this object. close() is idempotent;
 * a finalizer closes a forgotten fd. Byte buffers are checked against the
 * map's key and value sizes before they reach the kernel, so a wrong size is a
 * RangeError, never a kernel read or write past a buffer.
 */
export class MapFd extends OwnedFd {
  /** The map's info as read when the fd was opened. */
  readonly info: MapInfo;
  /** Bytes of one value as user space sees it (per-CPU maps: every possible CPU). */
  readonly valueBytes: number;

  /**
   * Takes ownership of `fd`. Reads the map's info and sizes values with
   * `valueBytesOf` (per-CPU maps must pass theirs: see ValueLayout); closes
   * `fd` and throws if either fails.
   */
  constructor(fd: number, valueBytesOf: ValueLayout) {
    const { info, valueBytes } = MapFd.#describe(fd, valueBytesOf);
    super(fd, "map");
    this.info = info;
    this.valueBytes = valueBytes;
  }

  // The info and value size of a map fd; closes the fd when either fails.
  static #describe(fd: number, valueBytesOf: ValueLayout): { info: MapInfo; valueBytes: number } {
    try {
      if (typeof valueBytesOf !== "function") {
        throw new TypeError("a value layout is required (plainValueBytes, or the core's valueLayout for per-CPU maps)");
      }
      const info = addon.mapInfo(fd);
      const valueBytes = valueBytesOf(info);
      if (!Number.isSafeInteger(valueBytes) || valueBytes < info.valueSize) {
        throw new RangeError(`value layout of ${valueBytes} bytes for a map of valueSize ${info.valueSize}`);
      }
      return { info, valueBytes };
    } catch (error) {
      addon.close(fd);
      throw error;
    }
  }

  get keySize(): number {
    return this.info.keySize;
  }

  /** Re-reads struct bpf_map_info from the kernel. */
  readInfo(): MapInfo {
    return addon.mapInfo(this.fd);
  }

  /** Reads /proc/self/fdinfo/<fd> (frozen, memlock, map_extra, …) as key → value text. */
  fdinfo(): Record<string, string> {
    return readFdinfo(this.fd);
  }

  /** Looks `key` up; returns a new value buffer, or undefined when absent. */
  lookup(key: Uint8Array | null, flags = 0): Buffer | undefined {
    const value = Buffer.alloc(this.valueBytes);
    return this.lookupInto(key, value, flags) ? value : undefined;
  }

  /** Looks `key` up into `value`; returns false when absent. */
  lookupInto(key: Uint8Array | null, value: Uint8Array, flags = 0): boolean {
    return addon.lookupElem(this.fd, this.#key(key), this.#value(value), flags);
  }

  /** Pops (queue/stack, key null) or removes `key`, returning its value, or undefined when empty/absent. */
  lookupAndDelete(key: Uint8Array | null, flags = 0): Buffer | undefined {
    const value = Buffer.alloc(this.valueBytes);
    return addon.lookupAndDeleteElem(this.fd, this.#key(key), value, flags) ? value : undefined;
  }

  /** Writes one element; flags BPF_ANY (default), BPF_NOEXIST, BPF_EXIST, optionally | BPF_F_LOCK. */
  update(key: Uint8Array | null, value: Uint8Array | null, flags = BPF_ANY): void {
    addon.updateElem(this.fd, this.#key(key), value === null ? null : this.#value(value), flags);
  }

  /**
   * Binds `key` (null for maps without keys) and `value` (valueBytes long)
   * for repeated single-element calls without per-call argument checks (see
   * PreparedElement). Throws RangeError for buffers of the wrong size.
   */
  prepare(key: Uint8Array | null, value: Uint8Array): PreparedElement {
    return new addon.PreparedElem(this.fd, this.#key(key), this.#value(value));
  }

  /** Deletes one element; returns false when it was absent. */
  delete(key: Uint8Array | null, flags = 0): boolean {
    return addon.deleteElem(this.fd, this.#key(key), flags);
  }

  /** The key after `key` (null: the first key) written into `next`; false at the end. */
  nextKeyInto(key: Uint8Array | null, next: Uint8Array): boolean {
    if (key !== null) this.#key(key);
    this.#key(next);
    return addon.getNextKey(this.fd, key, next);
  }

  /**
   * One BPF_MAP_LOOKUP_BATCH call: fills up to `count` keys and values from the
   * position in `inBatch` (null: the start) and writes the next position to
   * `outBatch`. Both must hold at least max(4, keySize) bytes: hash maps keep a
   * 4-byte bucket index there whatever their key size, other maps a key.
   * `done` means the map is exhausted (the kernel's ENOENT), possibly with
   * count > 0.
   */
  lookupBatch(inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array, values: Uint8Array,
    count: number, elemFlags = 0): BatchLookupResult {
    this.#batchPositions(inBatch, outBatch);
    this.#batchBuffers(keys, values, count);
    return addon.lookupBatch(this.fd, inBatch, outBatch, keys, values, count, elemFlags, 0);
  }

  /** lookupBatch, off the JS thread. */
  lookupBatchAsync(inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array, values: Uint8Array,
    count: number, elemFlags = 0): Promise<BatchLookupResult> {
    this.#batchPositions(inBatch, outBatch);
    this.#batchBuffers(keys, values, count);
    return addon.lookupBatchAsync(this.fd, inBatch, outBatch, keys, values, count, elemFlags, 0);
  }

  /** BPF_MAP_LOOKUP_AND_DELETE_BATCH: like lookupBatch, removing what it returns. */
  lookupAndDeleteBatch(inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array, values: Uint8Array,
    count: number, elemFlags = 0): BatchLookupResult {
    this.#batchPositions(inBatch, outBatch);
    this.#batchBuffers(keys, values, count);
    return addon.lookupAndDeleteBatch(this.fd, inBatch, outBatch, keys, values, count, elemFlags, 0);
  }

  /**
   * BPF_MAP_UPDATE_BATCH of `count` packed keys and values; returns how many
   * were written. On failure the thrown BpfError's `count` says how many were
   * written first. The kernel accepts only BPF_F_LOCK as elemFlags.
   */
  updateBatch(keys: Uint8Array, values: Uint8Array, count: number, elemFlags = 0): number {
    this.#batchBuffers(keys, values, count);
    return addon.updateBatch(this.fd, keys, values, count, elemFlags, 0);
  }

  /** updateBatch, off the JS thread. */
  updateBatchAsync(keys: Uint8Array, values: Uint8Array, count: number, elemFlags = 0): Promise<number> {
    this.#batchBuffers(keys, values, count);
    return addon.updateBatchAsync(this.fd, keys, values, count, elemFlags, 0);
  }

  /** BPF_MAP_DELETE_BATCH of `count` packed keys; returns how many were deleted (ENOENT on a missing key). */
  deleteBatch(keys: Uint8Array, count: number, elemFlags = 0): number {
    this.#batchBuffers(keys, null, count);
    return addon.deleteBatch(this.fd, keys, count, elemFlags, 0);
  }

  /** BPF_MAP_FREEZE: user space can no longer write the map. */
  freeze(): void {
    addon.freeze(this.fd);
  }

  /** BPF_OBJ_PIN at `pinPath`; EEXIST if the path is taken (never replaces). */
  pin(pinPath: string): void {
    addon.objPin(this.fd, pinPath);
  }

  #key(key: Uint8Array | null): Uint8Array | null {
    if (this.info.keySize === 0) {
      if (key !== null && key.length !== 0) throw new RangeError(`map has no keys; got a ${key.length}-byte key`);
      return null;
    }
    if (key === null || key.length !== this.info.keySize) {
      throw new RangeError(`key must be ${this.info.keySize} bytes; got ${key === null ? "null" : key.length}`);
    }
    return key;
  }

  #value(value: Uint8Array): Uint8Array {
    if (value.length !== this.valueBytes) {
      throw new RangeError(`value must be ${this.valueBytes} bytes; got ${value.length}`);
    }
    return value;
  }

  // The kernel reads in_batch and writes out_batch: a 4-byte bucket index for
  // the hash family, keySize bytes (a key) for every other map type.
  #batchPositions(inBatch: Uint8Array | null, outBatch: Uint8Array): void {
    const need = Math.max(4, this.info.keySize);
    if (inBatch !== null && inBatch.length < need) {
      throw new RangeError(`inBatch must hold at least ${need} bytes; got ${inBatch.length}`);
    }
    if (outBatch.length < need) throw new RangeError(`outBatch must hold at least ${need} bytes; got ${outBatch.length}`);
  }

  #batchBuffers(keys: Uint8Array, values: Uint8Array | null, count: number): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer; got ${count}`);
    if (keys.length < count * this.info.keySize) {
      throw new RangeError(`keys must hold ${count} keys of ${this.info.keySize} bytes; got ${keys.length} bytes`);
    }
    if (values !== null && values.length < count * this.valueBytes) {
      throw new RangeError(`values must hold ${count} values of ${this.valueBytes} bytes; got ${values.length} bytes`);
    }
  }
}

/**
 * BPF_MAP_CREATE; returns the owned fd, its values sized by `valueBytesOf`
 * (per-CPU maps must pass theirs). Throws a BpfError (e.g. EINVAL, EPERM,
 * E2BIG, ENOMEM).
 */
export function createMap(attrs: MapCreateAttrs, valueBytesOf: ValueLayout): MapFd {
  return new MapFd(addon.mapCreate(attrs), valueBytesOf);
}

/** What kind of BPF object an fd refers to: "map", "program", "link", or the raw anon-inode name. */
export type BpfObjectKind = "map" | "program" | "link" | string;

/**
 * The kind of BPF object `fd` refers to, from the anon inode's name
 * (/proc/self/fd/<fd> reads "anon_inode:bpf-map", "anon_inode:bpf-prog",
 * "anon_inode:bpf_link"). Program and map IDs are separate counters, so an ID
 * alone cannot tell a map from a program. Throws if the link cannot be read.
 */
export function objectKindOf(fd: number): BpfObjectKind {
  const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
  switch (target) {
    case "anon_inode:bpf-map": return "map";
    case "anon_inode:bpf-prog": return "program";
    case "anon_inode:bpf_link": case "anon_inode:bpf-link": return "link";
    default: return target;
  }
}

/** Thrown when a pin holds a BPF object that is not a map; `objectKind` says what it holds. */
export class NotAMapError extends Error {
  readonly objectKind: BpfObjectKind;
  constructor(objectKind: BpfObjectKind, where: string) {
    super(`${where} holds a BPF ${objectKind}, not a map`);
    this.name = "NotAMapError";
    this.objectKind = objectKind;
  }
}

// Wraps an fd from BPF_OBJ_GET in a MapFd only if it is a map (closing it and
// throwing NotAMapError otherwise): a program's info would read as a map's.
function mapFdOfObject(fd: number, where: string, valueBytesOf: ValueLayout): MapFd {
  let kind: BpfObjectKind;
  try {
    kind = objectKindOf(fd);
  } catch (error) {
    addon.close(fd);
    throw error;
  }
  if (kind !== "map") {
    addon.close(fd);
    throw new NotAMapError(kind, where);
  }
  return new MapFd(fd, valueBytesOf);
}

function fileFlagsOf(access: "rw" | "ro" | "wo"): number {
  return access === "ro" ? BPF_F_RDONLY : access === "wo" ? BPF_F_WRONLY : 0;
}

/**
 * BPF_OBJ_GET of a pinned map, read-write or read-only/write-only. Throws a
 * BpfError (ENOENT: no pin), or NotAMapError when the pin holds a program or
 * a link.
 */
export function openPinnedMap(pinPath: string, access: "rw" | "ro" | "wo", valueBytesOf: ValueLayout): MapFd {
  return mapFdOfObject(addon.objGet(pinPath, fileFlagsOf(access)), pinPath, valueBytesOf);
}

/**
 * An open directory (an O_PATH fd, opened without following a symlink),
 * owned by this object, and the bpffs operations relative to it: names are
 * resolved in this very directory, whatever happens to the path it was
 * reached by. close() is idempotent; a finalizer closes a forgotten fd.
 * Every method throws an Error with `code` (the errno name) on failure.
 */
export class DirFd extends OwnedFd {
  /** The path this directory was reached by (for messages only). */
  readonly path: string;

  /** Takes ownership of `fd`, a directory reached by `dirPath`. */
  constructor(fd: number, dirPath: string) {
    super(fd, "directory");
    this.path = dirPath;
  }

  /** Opens "/" (the start of every walk). */
  static root(): DirFd {
    return new DirFd(addon.openDirAt(null, "/"), "/");
  }

  /** Opens the subdirectory `name`; ELOOP or ENOTDIR when it is a symlink or not a directory. */
  openDir(name: string): DirFd {
    return new DirFd(addon.openDirAt(this.fd, name), path.join(this.path, name));
  }

  /** mkdirat(2) of `name` with `mode`; EEXIST when it exists. */
  mkdir(name: string, mode: number): void {
    addon.mkdirAt(this.fd, name, mode);
  }

  /** Whether this directory lies on a bpffs mount (fstatfs magic). */
  isOnBpffs(): boolean {
    return addon.fstatfsType(this.fd) === BPF_FS_MAGIC;
  }

  /** BPF_OBJ_PIN of `map` at `name` in this directory; EEXIST if taken (never replaces). */
  pin(map: MapFd, name: string): void {
    addon.objPinAt(map.fd, this.fd, name);
  }

  /** BPF_OBJ_GET of the map pinned at `name`; ENOENT if none, NotAMapError if it is no map. */
  openMap(name: string, access: "rw" | "ro" | "wo", valueBytesOf: ValueLayout): MapFd {
    return mapFdOfObject(addon.objGetAt(this.fd, name, fileFlagsOf(access)), path.join(this.path, name), valueBytesOf);
  }

  /** renameat2(2) of `name` to `toName` in `toDir`; flags RENAME_NOREPLACE or RENAME_EXCHANGE. */
  rename(name: string, toDir: DirFd, toName: string, flags: number): void {
    addon.renameAt2(this.fd, name, toDir.fd, toName, flags);
  }

  /** unlinkat(2) of the pin `name`. */
  unlink(name: string): void {
    addon.unlinkAt(this.fd, name, 0);
  }

  /** unlinkat(2, AT_REMOVEDIR) of the directory `name`; ENOTEMPTY when it is not empty. */
  rmdir(name: string): void {
    addon.unlinkAt(this.fd, name, AT_REMOVEDIR);
  }

  /**
   * A path that resolves to `name` in this very directory through
   * /proc/self/fd, for the calls Node has no *at form of (chmod, chown).
   */
  procPath(name: string): string {
    return `/proc/self/fd/${this.fd}/${name}`;
  }
}

/** BPF_MAP_GET_FD_BY_ID, values sized by `valueBytesOf` (see openPinnedMap); throws a BpfError (ENOENT: no such map). */
export function openMapById(id: number, access: "rw" | "ro" | "wo", valueBytesOf: ValueLayout): MapFd {
  const openFlags = access === "ro" ? BPF_F_RDONLY : access === "wo" ? BPF_F_WRONLY : 0;
  return new MapFd(addon.mapGetFdById(id, openFlags), valueBytesOf);
}

/**
 * An open BTF object fd (BPF_BTF_LOAD or BPF_BTF_GET_FD_BY_ID), owned by this
 * object. close() is idempotent; a finalizer closes a forgotten fd.
 */
export class BtfFd extends OwnedFd {
  /** Takes ownership of `fd`, a BTF object. */
  constructor(fd: number) {
    super(fd, "BTF");
  }

  /** BPF_OBJ_GET_INFO_BY_FD: the object's ID and size. Throws a BpfError. */
  info(): BtfInfo {
    return addon.btfInfo(this.fd, null);
  }

  /** The raw BTF blob the kernel holds (header, types, strings). Throws a BpfError. */
  readRaw(): Buffer {
    const { btfSize } = addon.btfInfo(this.fd, null);
    const data = Buffer.alloc(btfSize);
    const again = addon.btfInfo(this.fd, data);
    if (again.btfSize !== btfSize) throw new Error(`BTF object changed size while read (${btfSize} then ${again.btfSize} bytes)`);
    return data;
  }
}

/** A BpfError of BPF_BTF_LOAD, with the kernel's BTF verifier log. */
export interface BtfLoadError extends BpfError {
  /** The verifier's log (its last lines name the type it refused); empty if it wrote none. */
  log: string;
}

/** How much of the BTF verifier log is kept (its end says why). */
const BTF_LOG_BYTES = 64 * 1024;

/**
 * BPF_BTF_LOAD of a raw BTF blob; returns the owned fd. On failure the load is
 * repeated with the verifier log on, and the thrown BpfError carries it as
 * `log` (see BtfLoadError). Throws a BpfError (EINVAL: a malformed blob; EPERM).
 */
export function loadBtf(data: Uint8Array): BtfFd {
  try {
    return new BtfFd(addon.btfLoad(data, null, 0));
  } catch (error) {
    if (!isBpfError(error)) throw error;
    const logBuf = Buffer.alloc(BTF_LOG_BYTES);
    try {
      // A second load, only to have the log; if it succeeds after all, keep it.
      return new BtfFd(addon.btfLoad(data, logBuf, 1));
    } catch (retry) {
      const end = logBuf.indexOf(0);
      // The first load's errno stands (the retry may fail only for the log's size, ENOSPC).
      void retry;
      const failure = error as BtfLoadError;
      failure.log = logBuf.subarray(0, end < 0 ? logBuf.length : end).toString("utf8").trim();
      if (failure.log) failure.message += `: ${failure.log.split("\n").slice(-2).join(" / ")}`;
      throw failure;
    }
  }
}

/** BPF_BTF_GET_FD_BY_ID (needs CAP_SYS_ADMIN); throws a BpfError (ENOENT: no such BTF object). */
export function openBtfById(id: number): BtfFd {
  return new BtfFd(addon.btfGetFdById(id));
}

/** BPF_MAP_GET_NEXT_ID: the next map ID after `startId`, or undefined when there is none. */
export function nextMapId(startId: number): number | undefined {
  const id = addon.mapGetNextId(startId);
  return id === 0 ? undefined : id;
}

/** BPF_OBJ_GET_INFO_BY_FD on any map fd number (not owned). */
export function mapInfoByFd(fd: number): MapInfo {
  return addon.mapInfo(fd);
}

/** renameat2(2); flags RENAME_NOREPLACE or RENAME_EXCHANGE. Throws an Error with `code`. */
export function renameat2(oldPath: string, newPath: string, flags: number): void {
  addon.renameat2(oldPath, newPath, flags);
}

/** Parses /proc/self/fdinfo/<fd> into key → value text (e.g. frozen: "1", memlock: "4096"). */
export function readFdinfo(fd: number): Record<string, string> {
  const text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return fields;
}

/**
 * Parses a CPU list like "0-1" or "0,2-5" and returns how many CPUs it names.
 * Throws on text that is not such a list.
 */
export function parseCpuList(text: string): number {
  let count = 0;
  for (const range of text.trim().split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(range.trim());
    if (!match) throw new Error(`bad CPU list ${JSON.stringify(text)}`);
    const first = Number(match[1]);
    const last = Number(match[2] ?? match[1]);
    if (last < first) throw new Error(`bad CPU list ${JSON.stringify(text)}`);
    count += last - first + 1;
  }
  return count;
}

let cachedCpus: number | undefined;

/**
 * The number of possible CPUs (/sys/devices/system/cpu/possible), which sizes
 * per-CPU values: the kernel uses num_possible_cpus(), the number of CPUs in
 * the mask (not the highest + 1), one slot per possible CPU in mask order, as
 * libbpf does. Read once; throws if the file cannot be read or parsed.
 */
export function possibleCpus(): number {
  cachedCpus ??= parseCpuList(fs.readFileSync("/sys/devices/system/cpu/possible", "utf8"));
  return cachedCpus;
}

/** Whether `anyPath` lies on a bpffs mount (statfs magic). Throws if statfs fails (ENOENT). */
export function isOnBpffs(anyPath: string): boolean {
  return fs.statfsSync(anyPath).type === BPF_FS_MAGIC;
}
