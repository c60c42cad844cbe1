// The map lifecycle: create (or adopt / replace), observe, update in place or
// by an atomic swap, and delete — over the native binding, without Pulumi, so
// the same core can serve a plugin provider or a command line tool.
import { isEbpfError, EbpfError, kernelError } from "./errors";
import { compareAbi, describeDifferences, liveAbi, type LiveAbi } from "./abi";
import { makeCodec, decodePerCpu, type Codec } from "./codecs";
import { MAP_TYPES, flagsToMask, possibleCpuCount } from "./maptypes";
import {
  buildMap, dumpEntries, freezeMap, isArrayLike, isDumpable, isKeyless, isMapOfMaps, openPinned, readLiveState,
  type KernelMapSpec, type RawEntry,
} from "./map";
import {
  applyPermissions, checkPinLocation, ensurePinParent, pinInto, pinnedMapId, recoverInterruptedSwap, unpinIfOwned, type UnpinOutcome,
} from "./pins";
import { applyDelta, contentsDigest, keyOf, keySet, planDelta, presentEntries, type Delta } from "./reconcile";
import { encodeContents, type ContentEntry, type InnerMapSpec, type MapSpec } from "./spec";
import { renameat2, RENAME_NOREPLACE, type MapFd, type MapInfo } from "../../native";

/** What read-back reports about a managed map. */
export interface MapObservation {
  pinPath: string;
  mapId: number;
  /** The kernel map name. */
  name: string;
  abi: LiveAbi;
  frozen: boolean;
  /** Entries present in the map (arrays: indices with a non-zero value). */
  entryCount: number;
  /** sha256 over the managed entries (see contentsDigest). */
  contentsDigest: string;
  /**
   * The managed entries in the declared notation and canonical order (merge:
   * only declared keys). Queue, stack and bloom filter cannot be read without
   * consuming them, so for those this is the declared contents.
   */
  contents: ContentEntry[];
}

/** Called with warnings the user should see (a foreign pin, a stale staging pin). */
export type Warn = (message: string) => void;

const noWarn: Warn = () => undefined;

/** The BPF_MAP_CREATE view of a checked spec (or inner template). */
export function kernelSpecOf(spec: MapSpec | InnerMapSpec): KernelMapSpec {
  const full = spec as Partial<MapSpec>;
  return {
    mapType: MAP_TYPES[spec.mapType].id,
    keySize: spec.keySize,
    valueSize: spec.valueSize,
    maxEntries: spec.maxEntries,
    mapFlags: flagsToMask(spec.flags),
    name: full.name || undefined,
    numaNode: full.numaNode,
    mapExtra: full.mapExtra ? BigInt(full.mapExtra) : undefined,
    inner: full.innerMap ? kernelSpecOf(full.innerMap) : undefined,
  };
}

/** The declared contents as kernel bytes (maps of maps: the inner pin path). */
export function declaredEntries(spec: MapSpec): RawEntry[] {
  return encodeContents(spec).map((entry) =>
    typeof entry.value === "string"
      ? { key: entry.key, value: Buffer.alloc(0), innerPinPath: entry.value }
      : { key: entry.key, value: entry.value },
  );
}

/** The digest of the declared contents, equal to a live map's once it matches. */
export function declaredDigest(spec: MapSpec): string {
  return contentsDigest(declaredEntries(spec), isKeyless(MAP_TYPES[spec.mapType].id));
}

interface Codecs {
  key?: Codec;
  value?: Codec;
}

function codecsOf(spec: MapSpec): Codecs {
  return {
    key: spec.keyType === null ? undefined : makeCodec(spec.keyType, spec.keySize),
    value: spec.valueType === null ? undefined : makeCodec(spec.valueType, spec.valueSize),
  };
}


/**
 * Resolves live maps-of-maps values (inner map IDs) to the declared pin path
 * where the map pinned there has that ID, so they compare and digest equal.
 */
function resolveInnerIds(spec: MapSpec, live: RawEntry[], declared: RawEntry[]): RawEntry[] {
  if (!isMapOfMaps(MAP_TYPES[spec.mapType].id)) return live;
  const declaredPath = new Map(declared.map((entry) => [keyOf(entry.key), entry.innerPinPath]));
  const idOfPath = new Map<string, number | undefined>();
  return live.map((entry) => {
    const path = declaredPath.get(keyOf(entry.key));
    if (path === undefined || entry.innerPinPath !== undefined) return entry;
    if (!idOfPath.has(path)) idOfPath.set(path, pinnedMapId(path));
    return idOfPath.get(path) === entry.value.readUInt32LE(0) ? { ...entry, innerPinPath: path } : entry;
  });
}

/** Expresses raw entries in the declared notation, in canonical order. */
function toNotation(spec: MapSpec, entries: RawEntry[]): ContentEntry[] {
  const codecs = codecsOf(spec);
  const info = MAP_TYPES[spec.mapType];
  const sorted = codecs.key ? [...entries].sort((a, b) => codecs.key!.compare(a.key!, b.key!)) : entries;
  return sorted.map((entry) => {
    const out: ContentEntry = {};
    if (entry.key !== null && codecs.key) out.key = codecs.key.decode(entry.key);
    if (entry.innerPinPath !== undefined) out.value = entry.innerPinPath;
    else if (isMapOfMaps(info.id)) out.value = `map_id:${entry.value.readUInt32LE(0)}`;
    else if (info.perCpu) Object.assign(out, decodePerCpu(codecs.value!, entry.value, possibleCpuCount()));
    else out.value = codecs.value!.decode(entry.value);
    return out;
  });
}

/** Live entries, the managed subset (merge: declared keys only) and the declared ones. */
/**
 * Live entries, the managed subset (merge: declared keys only) and the
 * declared ones. `dumped` is the map's raw entries when the caller already
 * knows them (a map it just built, or a dump it just changed by a delta), so
 * the map is not dumped a second time.
 */
function liveContents(spec: MapSpec, map: MapFd, dumped?: RawEntry[]): { present: RawEntry[]; managed: RawEntry[]; declared: RawEntry[] } {
  const declared = declaredEntries(spec);
  const typeId = map.info.type;
  if (!isDumpable(typeId)) return { present: declared, managed: declared, declared };
  const declaredKeys = keySet(declared);
  const raw = dumped ?? dumpEntries(map, spec.pinPath);
  const present = resolveInnerIds(spec, presentEntries(typeId, raw, declaredKeys), declared);
  if (spec.contentsPolicy === "exact") return { present, managed: present, declared };
  return { present, managed: present.filter((entry) => declaredKeys.has(keyOf(entry.key))), declared };
}

/**
 * Reads an open map back as an observation (see liveContents for `dumped`).
 * The contents are decoded on first access: create and update report only
 * the digest and count, and decoding every entry is most of a read's cost.
 */
function observe(spec: MapSpec, map: MapFd, dumped?: RawEntry[]): MapObservation {
  const state = readLiveState(map);
  const { present, managed } = liveContents(spec, map, dumped);
  const keyless = isKeyless(map.info.type);
  let contents: ContentEntry[] | undefined;
  return {
    pinPath: spec.pinPath,
    mapId: state.info.id,
    name: state.info.name,
    abi: liveAbi(state.info),
    frozen: state.frozen,
    entryCount: present.length,
    contentsDigest: contentsDigest(managed, keyless),
    get contents() {
      contents ??= toNotation(spec, managed);
      return contents;
    },
  };
}

/** The raw entries of a map after `delta` was applied to `live` (arrays: deleted slots are zero). */
function afterDelta(typeId: number, live: RawEntry[], delta: Delta, valueBytes: number): RawEntry[] {
  const byKey = new Map(live.map((entry) => [keyOf(entry.key), entry]));
  for (const entry of delta.upserts) byKey.set(keyOf(entry.key), entry);
  for (const key of delta.deletes) {
    if (isArrayLike(typeId)) byKey.set(keyOf(key), { key, value: Buffer.alloc(valueBytes) });
    else byKey.delete(keyOf(key));
  }
  return [...byKey.values()];
}

/**
 * Applies the declared contents to an open live map as a delta (never
 * clear-and-refill). In merge mode, keys in `previousKeys` (the keys the
 * previous declaration managed) that `spec` no longer declares were ours:
 * they are deleted too, while keys nobody declared stay untouched.
 */
function reconcile(spec: MapSpec, map: MapFd, previousKeys?: readonly (Buffer | null)[]): RawEntry[] | undefined {
  const declared = declaredEntries(spec);
  const typeId = map.info.type;
  if (!isDumpable(typeId)) return undefined;
  const live = resolveInnerIds(spec, dumpEntries(map, spec.pinPath), declared);
  const delta = planDelta(typeId, declared, live, spec.contentsPolicy, (want, have) =>
    want.innerPinPath !== undefined ? have.innerPinPath === want.innerPinPath : want.value.equals(have.value),
  );
  if (spec.contentsPolicy === "merge" && previousKeys) {
    const declaredKeys = keySet(declared);
    const liveKeys = keySet(presentEntries(typeId, live));
    for (const previousKey of previousKeys) {
      const key = keyOf(previousKey);
      if (previousKey !== null && !declaredKeys.has(key) && liveKeys.has(key)) delta.deletes.push(previousKey);
    }
  }
  if (delta.upserts.length === 0 && delta.deletes.length === 0) return live;
  if (readLiveState(map).frozen) {
    throw new EbpfError("Frozen", `${spec.pinPath} is frozen and its contents differ from the declared ones; a frozen map can only be replaced (set freeze: false → true again, or ifExists: "replace")`);
  }
  applyDelta(map, delta, spec.pinPath);
  return afterDelta(typeId, live, delta, map.valueBytes);
}

/**
 * Builds a complete new map for `spec` off to the side. In merge mode, when
 * `carryFrom` has the same type and sizes, entries it holds that nobody
 * declared (written by BPF programs or other tools; not `spec`'s keys, nor
 * `previousKeys` that `spec` dropped) are carried over. Returns the map and
 * the entries written to it.
 */
function buildFor(spec: MapSpec, carryFrom?: MapFd, previousKeys?: readonly (Buffer | null)[]): { map: MapFd; entries: RawEntry[] } {
  let entries = declaredEntries(spec);
  if (carryFrom && spec.contentsPolicy === "merge" && isDumpable(carryFrom.info.type)) {
    const kernel = kernelSpecOf(spec);
    const same = carryFrom.info.type === kernel.mapType && carryFrom.info.keySize === kernel.keySize &&
      carryFrom.info.valueSize === kernel.valueSize && !isMapOfMaps(kernel.mapType);
    if (same) {
      const declaredKeys = new Set([...keySet(entries), ...(previousKeys ?? []).map(keyOf)]);
      const carried = presentEntries(kernel.mapType, dumpEntries(carryFrom, spec.pinPath))
        .filter((entry) => !declaredKeys.has(keyOf(entry.key)));
      entries = [...carried, ...entries];
    }
  }
  return { map: buildMap(kernelSpecOf(spec), entries, spec.freeze, spec.pinPath), entries };
}

/**
 * Creates the map of `spec` and pins it last. When the pin path is taken,
 * `spec.ifExists` decides: "fail" throws EbpfError "PinExists"; "adopt" takes
 * the existing map over if its ABI matches (else EbpfError "Incompatible"
 * naming each differing field) and reconciles its contents; "replace" swaps a
 * new map in atomically. On failure nothing new is pinned and no fd is left open.
 */
export function createPinnedMap(spec: MapSpec, warn: Warn = noWarn): MapObservation {
  checkPinLocation(spec.pinPath);
  const existingId = pinnedMapId(spec.pinPath);
  if (existingId !== undefined && spec.ifExists === "adopt") return adopt(spec);
  if (existingId !== undefined && spec.ifExists === "fail") {
    throw new EbpfError("PinExists", `pinPath ${spec.pinPath} already holds map ${existingId}; set ifExists to "adopt" to take it over or "replace" to swap in a new map`);
  }
  const replacing = existingId !== undefined;
  if (replacing) warn(`replacing map ${existingId} pinned at ${spec.pinPath} (ifExists: "replace")`);
  const { map, entries } = buildFor(spec);
  try {
    // Read back before pinning, so a failing read-back leaves nothing pinned.
    const observation = observe(spec, map, entries);
    pinInto(map, spec.pinPath, { replace: replacing, permissions: spec.permissions });
    return observation;
  } finally {
    map.close();
  }
}

function adopt(spec: MapSpec): MapObservation {
  const map = openPinned(spec.pinPath, "rw");
  try {
    const differences = compareAbi(spec, map.info);
    if (differences.length > 0) {
      throw new EbpfError("Incompatible", `cannot adopt the map pinned at ${spec.pinPath}: ${describeDifferences(differences)}`);
    }
    const live = reconcile(spec, map);
    if (spec.freeze && !readLiveState(map).frozen) freezeMap(map, spec.pinPath);
    applyPermissions(spec.pinPath, spec.permissions);
    return observe(spec, map, live);
  } finally {
    map.close();
  }
}

/** What observePinnedMap found. */
export type Observed =
  | { status: "ok"; observation: MapObservation; info: MapInfo }
  | { status: "missing" }
  /** The pin holds another map than the one this resource owns. */
  | { status: "foreign"; liveMapId: number };

/**
 * Reads the map pinned at `spec.pinPath` back (read-only): info, fdinfo and
 * the managed contents in declared notation. With `ownedMapId`, a pin that
 * holds a different map is reported as "foreign", not read.
 */
export function observePinnedMap(spec: MapSpec, ownedMapId?: number): Observed {
  let map: MapFd;
  try {
    map = openPinned(spec.pinPath, "ro");
  } catch (error) {
    if (isEbpfError(error, "PinNotFound")) return { status: "missing" };
    throw error;
  }
  try {
    if (ownedMapId !== undefined && map.info.id !== ownedMapId && !recoverInterruptedSwap(spec.pinPath, ownedMapId)) {
      return { status: "foreign", liveMapId: map.info.id };
    }
    return { status: "ok", observation: observe(spec, map), info: map.info };
  } finally {
    map.close();
  }
}

const ABI_INPUTS = ["mapType", "keySize", "valueSize", "maxEntries", "flags", "name", "innerMap", "numaNode", "mapExtra"] as const;

/**
 * Why an update needs a new kernel map; empty when it can happen in place.
 * `contentsChanged`, when the caller knows it, saves comparing the contents.
 */
export function recreateReasons(oldSpec: MapSpec, newSpec: MapSpec, contentsChanged?: boolean): string[] {
  const reasons: string[] = [];
  for (const field of ABI_INPUTS) {
    if (JSON.stringify(oldSpec[field] ?? null) !== JSON.stringify(newSpec[field] ?? null)) {
      reasons.push(`${field} changed`);
    }
  }
  if (oldSpec.freeze && !newSpec.freeze) reasons.push("freeze true → false (a frozen map cannot be thawed)");
  // Contents matter only for frozen and keyless maps; comparing them costs a
  // digest of both declarations, so only those pay it.
  const keyless = isKeyless(MAP_TYPES[newSpec.mapType].id);
  if (!(oldSpec.freeze && newSpec.freeze) && !(keyless && reasons.length === 0)) return reasons;
  contentsChanged ??= declaredDigest(oldSpec) !== declaredDigest(newSpec);
  if (oldSpec.freeze && newSpec.freeze && contentsChanged) reasons.push("contents of a frozen map changed");
  if (contentsChanged && keyless && reasons.length === 0) {
    reasons.push(`contents of a ${newSpec.mapType} cannot be changed in place (it cannot be read without consuming it)`);
  }
  return reasons;
}

/**
 * Brings the map owned by this resource (`ownedMapId`, pinned at
 * `oldSpec.pinPath`) to `newSpec`. In place when possible: a delta of the
 * contents, freeze false → true, permissions, a pin move. Otherwise (see
 * recreateReasons, or live ABI drift) a complete new map is built beside the
 * old one and renamed over the pin, which never goes missing; on failure the
 * old map stays pinned and untouched. Throws EbpfError "ForeignPin" when the
 * pin holds a map this resource does not own. `contentsChanged`, when the
 * caller knows it (e.g. from recorded digests), overrides comparing the two
 * specs' contents. `previousKeys`, when the caller recorded them (see
 * packKeys), are the keys the previous declaration managed, in place of
 * `oldSpec`'s declared keys (merge mode deletes those `newSpec` dropped).
 */
export function updatePinnedMap(
  oldSpec: MapSpec, newSpec: MapSpec, ownedMapId: number, warn: Warn = noWarn, contentsChanged?: boolean,
  previousKeys?: readonly (Buffer | null)[],
): MapObservation {
  const managedBefore = previousKeys ?? (newSpec.contentsPolicy === "merge" ? declaredEntries(oldSpec).map((entry) => entry.key) : undefined);
  checkPinLocation(newSpec.pinPath);
  const current = openPinned(oldSpec.pinPath, "rw");
  try {
    if (current.info.id !== ownedMapId && !recoverInterruptedSwap(oldSpec.pinPath, ownedMapId)) {
      throw new EbpfError("ForeignPin", `${oldSpec.pinPath} now holds map ${current.info.id}, not map ${ownedMapId} that this resource manages; refresh to see it, or remove that pin`);
    }
    const reasons = recreateReasons(oldSpec, newSpec, contentsChanged);
    const drift = compareAbi(newSpec, current.info);
    if (reasons.length === 0 && drift.length > 0) reasons.push(`live ABI differs (${describeDifferences(drift)})`);
    if (reasons.length > 0) {
      warn(`${newSpec.pinPath}: building a new kernel map (${reasons.join("; ")})`);
      const { map: replacement, entries } = buildFor(newSpec, current, managedBefore);
      try {
        // Read back before the swap, so a failing read-back leaves the old map pinned.
        const observation = observe(newSpec, replacement, entries);
        if (newSpec.pinPath === oldSpec.pinPath) {
          pinInto(replacement, newSpec.pinPath, { replace: true, permissions: newSpec.permissions });
        } else {
          pinInto(replacement, newSpec.pinPath, { replace: false, permissions: newSpec.permissions });
          unpinIfOwned(oldSpec.pinPath, current.info.id);
        }
        return observation;
      } finally {
        replacement.close();
      }
    }
    const live = reconcile(newSpec, current, managedBefore);
    if (newSpec.freeze && !readLiveState(current).frozen) freezeMap(current, newSpec.pinPath);
    if (newSpec.pinPath !== oldSpec.pinPath) movePin(oldSpec.pinPath, newSpec.pinPath);
    if (JSON.stringify(newSpec.permissions ?? null) !== JSON.stringify(oldSpec.permissions ?? null)) {
      applyPermissions(newSpec.pinPath, newSpec.permissions);
    }
    return observe(newSpec, current, live);
  } finally {
    current.close();
  }
}

function movePin(from: string, to: string): void {
  ensurePinParent(to);
  try {
    renameat2(from, to, RENAME_NOREPLACE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new EbpfError("PinExists", `cannot move the pin to ${to}: the path is taken`, { cause: error, code: "EEXIST" });
    }
    throw kernelError("move pin to", to, error);
  }
}

/**
 * Unpins `pinPath` only if it still holds `ownedMapId`. A missing pin is
 * success; a pin holding another map is left alone and `warn` says so.
 */
export function deletePinnedMap(pinPath: string, ownedMapId: number, warn: Warn = noWarn): UnpinOutcome {
  const outcome = unpinIfOwned(pinPath, ownedMapId);
  if (outcome === "foreign") {
    warn(`left ${pinPath} in place: it now holds another map than map ${ownedMapId} that this resource created`);
  }
  return outcome;
}
