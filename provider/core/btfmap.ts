// BTF of one map: whether a spec carries BTF (the `btf` input and its
// default), the rules for it and for bpf_spin_lock fields, the blob a new map
// is created with, and a live map's BTF read back — for the ABI compare, for
// BPF_F_LOCK, and for codecs derived from it.
import * as fs from "node:fs";
import { isBpfError, openBtfById, openPinnedMap, plainValueBytes, type MapInfo } from "../../native";
import { BtfFormError, BtfTypes, deriveCodec, encodeMapBtf, shapeDifference, shapeOf, type MapBtf } from "./btf";
import type { CodecDecl } from "./codecs";
import { isEbpfError, kernelError } from "./errors";
import type { FailureList } from "./failures";
import type { MapTypeName } from "./maptypes";

/**
 * The map types that take BTF for their key and value. measured on 6.18 with
 * BPF_MAP_CREATE and a u32/u32 (or value-only) BTF: these accept it;
 * perf_event_array, cgroup_array, devmap, devmap_hash, cpumap, sockmap,
 * sockhash and xskmap answer ENOTSUPP (map_check_no_btf), queue, stack,
 * ringbuf and user_ringbuf EINVAL (no key, no check of their own).
 */
export const BTF_MAP_TYPES: ReadonlySet<MapTypeName> = new Set<MapTypeName>([
  "hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash", "lpm_trie", "bloom_filter",
]);

/** The map types whose values may hold a bpf_spin_lock (the kernel's map_check_btf; storage maps aside). */
export const SPIN_LOCK_MAP_TYPES: ReadonlySet<MapTypeName> = new Set<MapTypeName>(["hash", "array"]);

// Array-like maps need an integer key type (array_map_check_btf).
const INT_KEY_TYPES: ReadonlySet<MapTypeName> = new Set<MapTypeName>(["array", "percpu_array"]);
const INT_CODECS = new Set(["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "u16be", "u32be", "u64be", "ipv4"]);

/** What btf rules need of a spec: its type, sizes, codecs and the `btf` input. */
export interface BtfSpecView {
  mapType: MapTypeName;
  keySize: number;
  valueSize: number;
  /** null where the map has no keys. */
  keyType: CodecDecl | null;
  /** null for maps of maps. */
  valueType: CodecDecl | null;
  /** As declared; undefined means the default (see effectiveBtf). */
  btf?: boolean;
  /** Declared flags and freeze (a map with a spin lock refuses some; only checkMapBtf reads them). */
  flags?: readonly string[];
  freeze?: boolean;
}

// Why the map's codecs have no BTF form, or undefined when they have one.
function whyNoBtf(spec: BtfSpecView): { path: string; rule: string } | undefined {
  if (!BTF_MAP_TYPES.has(spec.mapType)) {
    return { path: "btf", rule: `${spec.mapType} maps cannot carry BTF (the kernel refuses BTF for them)` };
  }
  if (spec.valueType === null) return { path: "btf", rule: `${spec.mapType} values have no codec to describe` };
  if (spec.keyType !== null && INT_KEY_TYPES.has(spec.mapType) && !(typeof spec.keyType === "string" && INT_CODECS.has(spec.keyType))) {
    return { path: "keyType", rule: `the BTF key of ${spec.mapType} must be an integer (u32); ${typeof spec.keyType === "string" ? spec.keyType : "a struct"} has none` };
  }
  if (spec.mapType === "lpm_trie" && typeof spec.keyType === "string" && !spec.keyType.startsWith("lpm_")) {
    // trie_check_btf: the key must be a struct.
    return { path: "keyType", rule: `the BTF key of lpm_trie must be a struct (lpm_ipv4, lpm_ipv6 or { struct }); ${spec.keyType} is none` };
  }
  try {
    encodeOf(spec);
    return undefined;
  } catch (error) {
    if (error instanceof BtfFormError) return { path: error.path, rule: error.rule };
    throw error;
  }
}

function encodeOf(spec: BtfSpecView): MapBtf {
  return encodeMapBtf(spec.keyType === null ? null : { decl: spec.keyType, size: spec.keySize }, { decl: spec.valueType!, size: spec.valueSize });
}

/**
 * Whether the map is created with BTF: `btf` as declared, else true where the
 * type takes BTF and every codec has a BTF form (hex has none).
 */
export function effectiveBtf(spec: BtfSpecView): boolean {
  return spec.btf ?? whyNoBtf(spec) === undefined;
}

/** The BTF blob and type IDs a new map of `spec` is created with; undefined when it has none. */
export function btfOfSpec(spec: BtfSpecView): MapBtf | undefined {
  return effectiveBtf(spec) ? encodeOf(spec) : undefined;
}

// The bpf_spin_lock fields of a declaration, with their paths.
function spinLocks(decl: CodecDecl | null, path: string, out: string[] = []): string[] {
  if (decl === null) return out;
  if (typeof decl === "string") {
    if (decl === "bpf_spin_lock") out.push(path);
    return out;
  }
  decl.struct.forEach((field, index) => spinLocks(field.type, `${path}.struct[${index}].type`, out));
  return out;
}

/**
 * Checks the `btf` input and bpf_spin_lock fields of a spec whose shape and
 * codecs passed: btf true where the type or a codec has no BTF form, a lock
 * outside a hash or array value, nested, more than one, or without BTF.
 * Adds failures naming the property; returns nothing.
 */
export function checkMapBtf(spec: BtfSpecView, failures: FailureList): void {
  for (const path of spinLocks(spec.keyType, "keyType")) failures.add(path, "a bpf_spin_lock belongs in a value struct, not in a key");
  const valueLocks = spinLocks(spec.valueType, "valueType");
  const nested = valueLocks.find((path) => !/^valueType\.struct\[\d+\]\.type$/.test(path));
  if (valueLocks.length > 0 && !SPIN_LOCK_MAP_TYPES.has(spec.mapType)) {
    failures.add(valueLocks[0]!, `a bpf_spin_lock needs a hash or array map (the kernel refuses it in ${spec.mapType})`);
  } else if (nested !== undefined) {
    failures.add(nested, "a bpf_spin_lock must be a field of the value struct itself (not the value, not a nested struct)");
  } else if (valueLocks.length > 1) {
    failures.add(valueLocks[1]!, "a value has at most one bpf_spin_lock");
  } else if (valueLocks.length === 1 && spec.btf === false) {
    failures.add("btf", "a value with a bpf_spin_lock needs btf (the kernel finds the lock through the map's BTF)");
  } else if (valueLocks.length === 1 && spec.flags?.some((flag) => flag === "rdonly_prog" || flag === "wronly_prog")) {
    // measured on 6.18: BPF_MAP_CREATE answers EACCES.
    failures.add("flags", "rdonly_prog and wronly_prog do not go with a bpf_spin_lock (programs must read and write the lock; the kernel answers EACCES)");
  } else if (valueLocks.length === 1 && spec.freeze) {
    // measured on 6.18: BPF_MAP_FREEZE answers ENOTSUPP.
    failures.add("freeze", "a map whose value has a bpf_spin_lock cannot be frozen (the kernel answers ENOTSUPP)");
  } else if (valueLocks.length === 1 || spec.btf === true) {
    const why = whyNoBtf(spec);
    const reason = valueLocks.length === 1 ? "a bpf_spin_lock needs BTF" : "btf is true";
    if (why) failures.add(why.path, `${why.rule}; ${reason}`);
  }
}

/** A live map's BTF: the parsed types and its key and value type IDs. */
export interface LiveBtf {
  types: BtfTypes;
  keyTypeId: number;
  valueTypeId: number;
}

/**
 * Reads the BTF of a live map (BPF_BTF_GET_FD_BY_ID of info.btfId, then its
 * raw bytes); undefined when the map has none. Throws EbpfError (Permission:
 * reading BTF by ID needs CAP_SYS_ADMIN) naming `label`.
 */
export function readLiveBtf(info: MapInfo, label: string): LiveBtf | undefined {
  if (info.btfId === 0 || info.btfValueTypeId === 0) return undefined;
  let raw: Buffer;
  try {
    const btf = openBtfById(info.btfId);
    try {
      raw = btf.readRaw();
    } finally {
      btf.close();
    }
  } catch (error) {
    throw kernelError("read the BTF of", label, error, isBpfError(error, "ENOENT") ? { ENOENT: "Kernel" } : {});
  }
  return { types: new BtfTypes(raw), keyTypeId: info.btfKeyTypeId, valueTypeId: info.btfValueTypeId };
}

/** Whether a live map's value holds a bpf_spin_lock (its reads and writes then take BPF_F_LOCK). */
export function liveHasSpinLock(btf: LiveBtf | undefined): boolean {
  return btf !== undefined && btf.types.hasSpinLock(btf.valueTypeId);
}

/** The codecs a live map's BTF expresses (see deriveCodec); key null for maps without a key type. */
export function derivedCodecs(btf: LiveBtf): { keyType: CodecDecl | null; valueType: CodecDecl } {
  return {
    keyType: btf.keyTypeId === 0 ? null : deriveCodec(btf.types, btf.keyTypeId),
    valueType: deriveCodec(btf.types, btf.valueTypeId),
  };
}

/**
 * The codecs the BTF of a live map expresses, for a map of `mapType`: as
 * derivedCodecs, with an lpm_trie key of the bpf_lpm_trie_key shape
 * ({ prefixlen: u32, data: 4 or 16 bytes }) as lpm_ipv4 / lpm_ipv6.
 */
export function liveCodecs(btf: LiveBtf, mapType: MapTypeName | undefined): { keyType: CodecDecl | null; valueType: CodecDecl } {
  const derived = derivedCodecs(btf);
  const key = derived.keyType;
  if (mapType === "lpm_trie" && key !== null && typeof key !== "string" && key.struct.length === 2) {
    const [prefix, data] = key.struct as [typeof key.struct[0], typeof key.struct[0]];
    const bytes = data.size ?? (data.type === "ipv6" ? 16 : undefined);
    // Only the kernel's own member names: a key whose members are named
    // otherwise keeps its struct codec, so our BTF of it matches the live one.
    const kernelNames = prefix.name === "prefixlen" && data.name === "data";
    if (kernelNames && prefix.type === "u32" && data.offset === undefined && (data.type === "hex" || data.type === "ipv6") && (bytes === 4 || bytes === 16)) {
      return { keyType: bytes === 4 ? "lpm_ipv4" : "lpm_ipv6", valueType: derived.valueType };
    }
  }
  return derived;
}

/**
 * The codecs the BTF of the map pinned at `pinPath` expresses (see
 * liveCodecs); undefined when nothing is pinned there, it is no map, it has
 * no BTF, or its BTF cannot be read (reading needs CAP_SYS_ADMIN).
 */
export function liveCodecsAt(pinPath: string, mapType: MapTypeName | undefined): { keyType: CodecDecl | null; valueType: CodecDecl } | undefined {
  try {
    const map = openPinnedMap(pinPath, "ro", plainValueBytes);
    const info = map.info;
    map.close();
    const btf = readLiveBtf(info, pinPath);
    return btf === undefined ? undefined : liveCodecs(btf, mapType);
  } catch {
    return undefined;
  }
}

/**
 * For a declaration that adopts the map pinned at `pinPath`: the codecs its
 * BTF expresses for whichever of keyType / valueType the declaration leaves
 * out (`given` names the inputs given), so contents read back with field
 * names instead of hex. Empty when the map has no (readable) BTF. Only
 * read-only commands, and none when nothing exists at `pinPath`.
 */
export function adoptedCodecs(pinPath: string, mapType: MapTypeName, given: ReadonlySet<string>): { keyType?: CodecDecl; valueType?: CodecDecl } {
  if (given.has("keyType") && given.has("valueType")) return {};
  // Nothing pinned there (the usual case at check): no bpf(2) command at all.
  try {
    fs.lstatSync(pinPath);
  } catch {
    return {};
  }
  const live = liveCodecsAt(pinPath, mapType);
  if (live === undefined) return {};
  return {
    ...(!given.has("keyType") && !given.has("keySize") && live.keyType !== null && { keyType: live.keyType }),
    ...(!given.has("valueType") && !given.has("valueSize") && { valueType: live.valueType }),
  };
}

/** One BTF difference between a declaration and a live map. */
export interface BtfDifference {
  field: "btf" | "keyType" | "valueType";
  /** The property path and both sides, e.g. `valueType.struct[1]: declared field rate (offset 4), live field pps (offset 4)`. */
  detail: string;
  declared: boolean | CodecDecl;
  live: boolean | CodecDecl;
}

/**
 * Compares the BTF a spec asks for with a live map's. A map without BTF is
 * compatible with a spec that does not say `btf: true` (a map made before BTF
 * existed here is not rebuilt for the default); an explicit `btf: true`
 * differs from it, an explicit `btf: false` from a map with BTF. Where both
 * have BTF, the key and value shapes (struct member names and offsets, sizes,
 * spin locks) must agree. Returns the differences (at most one per field).
 * Throws EbpfError when the live BTF cannot be read, except for Permission
 * (BTF by ID needs CAP_SYS_ADMIN), where the shapes are not compared.
 */
export function compareBtf(spec: BtfSpecView, info: MapInfo, label: string): BtfDifference[] {
  if (info.btfId === 0 || info.btfValueTypeId === 0) {
    return spec.btf === true ? [{ field: "btf", detail: "btf: declared true, live map has no BTF", declared: true, live: false }] : [];
  }
  if (spec.btf === false) return [{ field: "btf", detail: "btf: declared false, live map has BTF", declared: false, live: true }];
  if (!effectiveBtf(spec)) return [];
  let live: LiveBtf;
  try {
    live = readLiveBtf(info, label)!;
  } catch (error) {
    // Without CAP_SYS_ADMIN a map's BTF cannot be read: the shapes go uncompared.
    if (isEbpfError(error, "Permission")) return [];
    throw error;
  }
  const mine = encodeOf(spec);
  const declared = new BtfTypes(mine.data);
  const derived = derivedCodecs(live);
  const differences: BtfDifference[] = [];
  const sides = [
    { field: "keyType" as const, decl: spec.keyType, id: mine.keyTypeId, liveId: live.keyTypeId, derived: derived.keyType },
    { field: "valueType" as const, decl: spec.valueType, id: mine.valueTypeId, liveId: live.valueTypeId, derived: derived.valueType },
  ];
  for (const side of sides) {
    // A side without BTF type (a libbpf map declared with __uint(key_size, …)
    // has value BTF only) says nothing to compare against: not a difference,
    // so adopting such a map and naming its key codec never swaps it out.
    if (side.decl === null || side.liveId === 0) continue;
    const detail = shapeDifference(shapeOf(declared, side.id), shapeOf(live.types, side.liveId), side.field);
    if (detail !== undefined) differences.push({ field: side.field, detail, declared: side.decl, live: side.derived ?? "hex" });
  }
  return differences;
}

