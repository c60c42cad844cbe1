// The map lifecycle: create (or adopt / replace), observe, update in place or
// by an atomic swap, and delete — over the native binding, without Pulumi, so
// the same core can serve a plugin provider or a command line tool.
import { isEbpfError, EbpfError } from "./errors";
import { compareAbi, describeDifferences, liveAbi, type LiveAbi } from "./abi";
import { rawEntriesOf, tableNotation, toNotation as notationOf } from "./contents";
import { MAP_TYPES, flagsToMask } from "./maptypes";
import {
  buildMap, dumpEntries, freezeMap, isArrayLike, isDumpable, isKeyless, isMapOfMaps, openPinned, readLiveState, writePacked,
  type KernelMapSpec, type LiveMapState, type RawEntry,
} from "./map";
import {
  applyPermissions, checkPinLocation, finishInterruptedMove, movePinIfOwned, pinInto, pinMoveTrace, pinnedMapId,
  recoverInterruptedSwap, removeEmptyDirectories, unpinIfOwned, type UnpinOutcome,
} from "./pins";
import { btfOfSpec, effectiveBtf } from "./btfmap";
import { faultPoint } from "./faults";
import { applyDelta, contentsDigest, keyOf, keySet, planDelta, presentEntries, type Delta } from "./reconcile";
import { canonicalContents, checkedPartsOf, type MapSpec } from "./checked";
import { contentsDrift, limitDrift } from "./drift";
import {
  applyTableDelta, isEmptyDelta, liveTable, planTableDelta, readTableState, tableDrift,
  type DeltaCounts, type DriftReport, type TableDelta, type TableState,
} from "./livetable";
import { keyTable, pick, presentTable, sameTable, undeclaredIndices } from "./table";
import { defaultMapName, type ContentEntry, type InnerMapSpec } from "./schema";
import { type MapFd, type MapInfo } from "../../native";

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
  /**
   * The per-key difference from the declaration to the managed live entries
   * (added: only live; removed: only declared; changed: both, values
   * differ), naming at most `limit` keys of each kind (the smallest in the
   * key codec's order) in declared notation, with the counts; undefined when
   * they agree. Keyless maps have none. Large maps decode only the named keys.
   */
  driftFromDeclared(limit?: number): DriftReport | undefined;
  /** After create or update: what the in-place delta changed (keyed maps with plain values), by key. */
  applied?: DeltaCounts;
  /**
   * Directories the pin layer created for this pin (create; update when the
   * pin moved), outermost first. Pass them to deletePinnedMap, which removes
   * those that are empty then.
   */
  createdDirectories?: string[];
}

/** Called with warnings the user should see (a foreign pin, a stale staging pin). */
export type Warn = (message: string) => void;

const noWarn: Warn = () => undefined;

/**
 * The BPF_MAP_CREATE view of a checked spec (or inner template). An
 * undeclared name is `liveName` (the name of the map a new one replaces)
 * when that is not empty, else the pin's file name (defaultMapName).
 */
export function kernelSpecOf(spec: MapSpec | InnerMapSpec, liveName?: string): KernelMapSpec {
  const full = spec as Partial<MapSpec>;
  const name = full.name || liveName || (full.pinPath === undefined ? undefined : defaultMapName(full.pinPath));
  return {
    mapType: MAP_TYPES[spec.mapType].id,
    keySize: spec.keySize,
    valueSize: spec.valueSize,
    maxEntries: spec.maxEntries,
    mapFlags: flagsToMask(spec.flags),
    name: name || undefined,
    numaNode: full.numaNode,
    mapExtra: full.mapExtra ? BigInt(full.mapExtra) : undefined,
    inner: full.innerMap ? kernelSpecOf(full.innerMap) : undefined,
    btf: full.keyType === undefined ? undefined : btfOfSpec(full as MapSpec),
  };
}

/** The declared contents as kernel bytes (maps of maps: the inner pin path), from the checked spec. */
export function declaredEntries(spec: MapSpec): RawEntry[] {
  return rawEntriesOf(checkedPartsOf(spec).entries);
}

/** The digest of the declared contents, equal to a live map's once it matches. */
export function declaredDigest(spec: MapSpec): string {
  if (spec.table) return spec.table.digest();
  return contentsDigest(declaredEntries(spec), MAP_TYPES[spec.mapType].keyless === true);
}

/**
 * Resolves live maps-of-maps values (inner map IDs) to the declared pin path
 * where the map pinned there has that ID, so they compare and digest equal.
 */
function resolveInnerIds(spec: MapSpec, live: RawEntry[], declared: RawEntry[]): RawEntry[] {
  if (!MAP_TYPES[spec.mapType].mapInMap) return live;
  const declaredPath = new Map(declared.map((entry) => [keyOf(entry.key), entry.innerPinPath]));
  const idOfPath = new Map<string, number | undefined>();
  return live.map((entry) => {
    const path = declaredPath.get(keyOf(entry.key));
    if (path === undefined || entry.innerPinPath !== undefined) return entry;
    if (!idOfPath.has(path)) idOfPath.set(path, pinnedMapId(path));
    return idOfPath.get(path) === entry.value.readUInt32LE(0) ? { ...entry, innerPinPath: path } : entry;
  });
}

/** Expresses raw entries in the declared notation, in canonical order (the notation canonicalContents uses). */
function toNotation(spec: MapSpec, entries: RawEntry[]): ContentEntry[] {
  return notationOf({ mapType: spec.mapType, codecs: checkedPartsOf(spec).codecs }, entries);
}

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

// What an observation says of the map itself, whatever its contents.
function identityOf(spec: MapSpec, state: LiveMapState): Pick<MapObservation, "pinPath" | "mapId" | "name" | "abi" | "frozen"> {
  return { pinPath: spec.pinPath, mapId: state.info.id, name: state.info.name, abi: liveAbi(state.info), frozen: state.frozen };
}

/**
 * Reads an open map back as an observation (see liveContents for `dumped`).
 * The contents are decoded on first access: create and update report only
 * the digest and count, and decoding every entry is most of a read's cost.
 */
function observe(spec: MapSpec, map: MapFd, dumped?: RawEntry[]): MapObservation {
  if (spec.table && isDumpable(map.info.type)) return observeTable(spec, map);
  const state = readLiveState(map);
  const { present, managed } = liveContents(spec, map, dumped);
  const keyless = isKeyless(map.info.type);
  let contents: ContentEntry[] | undefined;
  return {
    ...identityOf(spec, state),
    entryCount: present.length,
    contentsDigest: contentsDigest(managed, keyless),
    get contents() {
      contents ??= toNotation(spec, managed);
      return contents;
    },
    driftFromDeclared(limit = Infinity) {
      if (keyless) return undefined;
      const drift = contentsDrift(canonicalContents(spec), this.contents);
      if (!drift) return undefined;
      const counts = { added: drift.added?.length ?? 0, changed: drift.changed?.length ?? 0, removed: drift.removed?.length ?? 0 };
      return { drift: limitDrift(drift, limit), counts };
    },
  };
}

/**
 * observe for a table-typed map: the dump stays a packed table; `known` is
 * the state when the caller knows it (a map it just built or brought to the
 * declaration), so the map is not dumped again. Contents are decoded on
 * first access; the digest and drift need no decoding.
 */
function observeTable(spec: MapSpec, map: MapFd, known?: TableState): MapObservation {
  const state = readLiveState(map);
  const { presentCount, managed } = known ?? readTableState(spec, map);
  let contents: ContentEntry[] | undefined;
  return {
    ...identityOf(spec, state),
    entryCount: presentCount,
    // Computed when asked (a diff's report needs none); equal bytes need no
    // hashing: the declared table's digest is computed once.
    get contentsDigest() {
      return sameTable(managed, spec.table!) ? spec.table!.digest() : managed.digest();
    },
    get contents() {
      contents ??= tableNotation({ mapType: spec.mapType, codecs: spec.codecs }, managed);
      return contents;
    },
    driftFromDeclared: (limit = Infinity) => tableDrift(spec, managed, limit),
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
function reconcile(spec: MapSpec, map: MapFd, previousKeys?: readonly (Buffer | null)[]): RawEntry[] | TableDelta | undefined {
  if (spec.table && isDumpable(map.info.type)) {
    const delta = planTableDelta(spec, map, previousKeys);
    if (isEmptyDelta(delta)) return delta;
    refuseFrozen(spec, map);
    applyTableDelta(map, delta, spec.pinPath);
    return delta;
  }
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
  refuseFrozen(spec, map);
  applyDelta(map, delta, spec.pinPath);
  return afterDelta(typeId, live, delta, map.valueBytes);
}

// A frozen map whose contents must change can only be replaced.
function refuseFrozen(spec: MapSpec, map: MapFd): void {
  if (readLiveState(map).frozen) {
    throw new EbpfError("Frozen", `${spec.pinPath} is frozen and its contents differ from the declared ones; a frozen map can only be replaced (set freeze: false → true again, or ifExists: "replace")`);
  }
}

/** observe after reconcile: from what reconcile returned, without dumping again. */
function observeReconciled(spec: MapSpec, map: MapFd, reconciled: RawEntry[] | TableDelta | undefined): MapObservation {
  if (reconciled === undefined || Array.isArray(reconciled)) return observe(spec, map, reconciled);
  const observation = observeTable(spec, map, reconciled.after);
  observation.applied = reconciled.counts;
  return observation;
}

/**
 * Builds a complete new map for `spec` off to the side. In merge mode, when
 * `carryFrom` has the same type and sizes, entries it holds that nobody
 * declared (written by BPF programs or other tools; not `spec`'s keys, nor
 * `previousKeys` that `spec` dropped) are carried over. Returns the map and
 * the entries written to it.
 */
function buildFor(spec: MapSpec, carryFrom?: MapFd, previousKeys?: readonly (Buffer | null)[]): { map: MapFd; observe(): MapObservation } {
  if (spec.table) return buildTableFor(spec, carryFrom, previousKeys);
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
  const map = buildMap(kernelSpecOf(spec, carryFrom?.info.name), entries, spec.freeze, spec.pinPath);
  return { map, observe: () => observe(spec, map, entries) };
}

// buildFor of a table-typed map: the declared table and the carried entries
// are written packed, and the observation needs no dump (the managed
// entries are the declared ones).
function buildTableFor(spec: MapSpec, carryFrom?: MapFd, previousKeys?: readonly (Buffer | null)[]): { map: MapFd; observe(): MapObservation } {
  const declared = spec.table!;
  let carried: { keys: Buffer; values: Buffer; count: number } = { keys: Buffer.alloc(0), values: Buffer.alloc(0), count: 0 };
  if (carryFrom && spec.contentsPolicy === "merge" && isDumpable(carryFrom.info.type)) {
    const kernel = kernelSpecOf(spec);
    const same = carryFrom.info.type === kernel.mapType && carryFrom.info.keySize === kernel.keySize && carryFrom.info.valueSize === kernel.valueSize;
    if (same) {
      const present = presentTable(liveTable(carryFrom, spec.pinPath), isArrayLike(kernel.mapType), declared);
      // Not declared now, nor by the previous declaration (those were ours and were dropped).
      carried = pick(present, undeclaredIndices(present, declared, keyTable(previousKeys ?? [], declared.keySize)));
    }
  }
  const map = buildMap(kernelSpecOf(spec, carryFrom?.info.name), (fresh) => {
    writePacked(fresh, carried.keys, carried.values, carried.count, spec.pinPath);
    writePacked(fresh, declared.keys, declared.values, declared.count, spec.pinPath);
  }, spec.freeze, spec.pinPath);
  return { map, observe: () => observeTable(spec, map, { presentCount: carried.count + declared.count, managed: declared }) };
}

/**
 * Creates the map of `spec` and pins it last. When the pin path is taken,
 * `spec.ifExists` decides: "fail" throws EbpfError "PinExists"; "adopt" takes
 * the existing map over if its ABI matches (else EbpfError "Incompatible"
 * naming each differing field) and reconciles its contents; "replace" swaps a
 * new map in atomically, and fails with "ForeignPin" (the new map discarded,
 * what the swap took out put back) if the path held another object by then.
 * A program or link at the path is "NotAMap" whatever ifExists says. The
 * observation's `createdDirectories` lists the directories made for the pin.
 * On failure nothing new is pinned, no directory made is left, and no fd is
 * left open.
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
  const built = buildFor(spec);
  const map = built.map;
  try {
    // Read back before pinning, so a failing read-back leaves nothing pinned.
    const observation = built.observe();
    const takenHint = spec.ifExists === "fail"
      ? `set ifExists to "adopt" or "replace" to take it over`
      : `another process pinned something there while this map was being built; run again to ${spec.ifExists} it`;
    const pinned = pinInto(map, spec.pinPath, { replace: replacing, expectedId: existingId, permissions: spec.permissions, takenHint });
    observation.createdDirectories = pinned.createdDirectories;
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
    const observation = observeReconciled(spec, map, live);
    observation.createdDirectories = [];
    return observation;
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
    if (ownedMapId !== undefined && map.info.id !== ownedMapId && !recoverInterruptedSwap(spec.pinPath, ownedMapId, map.info.id)) {
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
 * An undeclared name is whatever the live map's is: it never needs a new
 * map, and neither does a declared one equal to `liveName` (when known).
 * Without `liveName` (a preview: no live map at hand) a change of the BTF
 * the declarations ask for (an explicit `btf` flip, or another key/value
 * shape) is a reason too; with it, the caller compares the live map's BTF.
 */
export function recreateReasons(oldSpec: MapSpec, newSpec: MapSpec, contentsChanged?: boolean, liveName?: string): string[] {
  const reasons: string[] = [];
  for (const field of ABI_INPUTS) {
    if (field === "name" && (newSpec.name === "" || newSpec.name === liveName)) continue;
    if (JSON.stringify(oldSpec[field] ?? null) !== JSON.stringify(newSpec[field] ?? null)) {
      reasons.push(`${field} changed`);
    }
  }
  if (oldSpec.freeze && !newSpec.freeze) reasons.push("freeze true → false (a frozen map cannot be thawed)");
  // BTF is part of the ABI: an explicit btf flip, or another key/value shape
  // where both declarations have BTF, builds a new map, so a preview says so.
  // A caller holding the live map (liveName given) compares the live BTF
  // instead, which names the field and trusts what the kernel reports.
  const btfReason = liveName === undefined ? btfChange(oldSpec, newSpec) : undefined;
  if (btfReason) reasons.push(btfReason);
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

// Why two declarations' BTF needs a new map, or undefined. A default that
// changes with the codecs (hex has no BTF form) is not a reason: a live map
// without BTF stays compatible with a spec that does not ask for it.
function btfChange(oldSpec: MapSpec, newSpec: MapSpec): string | undefined {
  if (newSpec.btf !== undefined && oldSpec.btf !== newSpec.btf && effectiveBtf(oldSpec) !== effectiveBtf(newSpec)) return `btf ${effectiveBtf(oldSpec)} → ${newSpec.btf}`;
  if (!effectiveBtf(oldSpec) || !effectiveBtf(newSpec)) return undefined;
  const before = btfOfSpec(oldSpec);
  const after = btfOfSpec(newSpec);
  if (before && after && !Buffer.from(before.data).equals(Buffer.from(after.data))) return "key/value BTF changed (keyType/valueType)";
  return undefined;
}

/**
 * Brings the map owned by this resource (`ownedMapId`, pinned at
 * `oldSpec.pinPath`) to `newSpec`. In place when possible: a delta of the
 * contents, freeze false → true, permissions, a pin move. Otherwise (see
 * recreateReasons, or live ABI drift) a complete new map is built beside the
 * old one and renamed over the pin, which never goes missing; on failure the
 * old map stays pinned and untouched. Throws EbpfError "ForeignPin" when the
 * pin holds a map this resource does not own (or a swap would take out
 * another object than the owned map), "NotAMap" when it holds a program or
 * link. When pinPath changes too, a second pin of the old map naming the new
 * one is kept beside the old path until the old pin is gone, so a re-run
 * after a kill in between finishes the move (finishInterruptedMove) instead
 * of finding the new path taken. `contentsChanged`, when the caller knows it
 * (e.g. from recorded digests), overrides comparing the two specs' contents.
 * `previousKeys`, when the caller recorded them (see packKeys), are the keys
 * the previous declaration managed, in place of `oldSpec`'s declared keys
 * (merge mode deletes those `newSpec` dropped).
 */
export function updatePinnedMap(
  oldSpec: MapSpec, newSpec: MapSpec, ownedMapId: number, warn: Warn = noWarn, contentsChanged?: boolean,
  previousKeys?: readonly (Buffer | null)[],
): MapObservation {
  const managedBefore = previousKeys ?? (newSpec.contentsPolicy === "merge" ? declaredEntries(oldSpec).map((entry) => entry.key) : undefined);
  checkPinLocation(newSpec.pinPath);
  if (newSpec.pinPath !== oldSpec.pinPath) {
    // A re-run after a kill between pinning at the new path and unpinning the old one.
    const moved = finishInterruptedMove(oldSpec.pinPath, newSpec.pinPath, ownedMapId);
    if (moved !== undefined) {
      warn(`${newSpec.pinPath}: finished moving the pin from ${oldSpec.pinPath} (an earlier run was interrupted); map ${moved} is this resource's`);
      return updatePinnedMap(newSpec, newSpec, moved, warn, false, managedBefore);
    }
  }
  const current = openPinned(oldSpec.pinPath, "rw");
  try {
    if (current.info.id !== ownedMapId && !recoverInterruptedSwap(oldSpec.pinPath, ownedMapId, current.info.id)) {
      throw new EbpfError("ForeignPin", `${oldSpec.pinPath} now holds map ${current.info.id}, not map ${ownedMapId} that this resource manages; refresh to see it, or remove that pin`);
    }
    const reasons = recreateReasons(oldSpec, newSpec, contentsChanged, current.info.name);
    const drift = compareAbi(newSpec, current.info);
    if (reasons.length === 0 && drift.length > 0) reasons.push(`live ABI differs (${describeDifferences(drift)})`);
    if (reasons.length > 0) {
      warn(`${newSpec.pinPath}: building a new kernel map (${reasons.join("; ")})`);
      const built = buildFor(newSpec, current, managedBefore);
      const replacement = built.map;
      try {
        // Read back before the swap, so a failing read-back leaves the old map pinned.
        const observation = built.observe();
        if (newSpec.pinPath === oldSpec.pinPath) {
          pinInto(replacement, newSpec.pinPath, { replace: true, expectedId: current.info.id, permissions: newSpec.permissions });
          observation.createdDirectories = [];
        } else {
          // The trace (a second pin of the old map naming the new one) lets a
          // re-run after a kill below recognise the map at the new path as ours.
          const removeTrace = pinMoveTrace(oldSpec.pinPath, current, replacement.info.id);
          try {
            const pinned = pinInto(replacement, newSpec.pinPath, {
              replace: false, permissions: newSpec.permissions,
              takenHint: "choose another pinPath, or remove what is pinned there",
            });
            observation.createdDirectories = pinned.createdDirectories;
            faultPoint("after-pin-new-path");
            unpinIfOwned(oldSpec.pinPath, current.info.id, (what) => warn(`left ${oldSpec.pinPath} in place: ${what}`));
          } finally {
            removeTrace();
          }
        }
        return observation;
      } finally {
        replacement.close();
      }
    }
    const live = reconcile(newSpec, current, managedBefore);
    if (newSpec.freeze && !readLiveState(current).frozen) freezeMap(current, newSpec.pinPath);
    const createdDirectories = newSpec.pinPath !== oldSpec.pinPath ? movePin(oldSpec.pinPath, newSpec.pinPath, current.info.id) : [];
    if (JSON.stringify(newSpec.permissions ?? null) !== JSON.stringify(oldSpec.permissions ?? null)) {
      applyPermissions(newSpec.pinPath, newSpec.permissions);
    }
    const observation = observeReconciled(newSpec, current, live);
    observation.createdDirectories = createdDirectories;
    return observation;
  } finally {
    current.close();
  }
}

/**
 * Moves the pin of map `mapId` from `from` to `to` (see movePinIfOwned);
 * returns the directories created. Throws "PinExists" or "ForeignPin".
 */
function movePin(from: string, to: string, mapId: number): string[] {
  return movePinIfOwned(from, to, mapId).createdDirectories;
}

/** What deletePinnedMap may clean up besides the pin. */
export interface DeleteOptions {
  /**
   * The directories createPinnedMap (or an update that moved the pin)
   * reported in `createdDirectories`. Those that are ancestors of `pinPath`
   * and empty once the pin is gone are removed, innermost first (never
   * recursively, never one that is not empty, never one off bpffs).
   */
  createdDirectories?: string[];
}

/**
 * Unpins `pinPath` only if it holds `ownedMapId` (see unpinIfOwned: the pin
 * is moved to a private name, verified, then unlinked or put back). A
 * missing pin is success; a pin holding another map, or no map at all (a
 * program), is left alone and `warn` says what it holds. Then removes the
 * empty directories of `options.createdDirectories`. Throws EbpfError on
 * kernel errors.
 */
export function deletePinnedMap(pinPath: string, ownedMapId: number, warn: Warn = noWarn, options: DeleteOptions = {}): UnpinOutcome {
  const outcome = unpinIfOwned(pinPath, ownedMapId, (what) => {
    warn(`left ${pinPath} in place: ${what}, not map ${ownedMapId} that this resource created`);
  });
  const ancestors = (options.createdDirectories ?? []).filter((dir) => pinPath.startsWith(`${dir}/`));
  if (ancestors.length > 0) removeEmptyDirectories(ancestors);
  return outcome;
}
