// The live contents of table-typed maps (keyed, plain values: see
// isTableType), handled as packed tables end to end: the dump sorted by key
// bytes, its present and managed parts, the delta to the declared table,
// and the drift named in declared notation for as many keys as a report shows.
import type { MapFd } from "../../native";
import type { MapSpec } from "./checked";
import { type ContentsDrift } from "./drift";
import { deletePacked, dumpPacked, isArrayLike, writePacked } from "./map";
import { faultPoint } from "./faults";
import {
  compareTables, declaredPart, keyTable, pick, pickTable, presentTable, smallest, sortTable, type EntryTable,
} from "./table";

/** The live table of `map`: every entry it reports, sorted by key bytes. Throws a wrapped kernel error naming `label`. */
export function liveTable(map: MapFd, label: string): EntryTable {
  const dump = dumpPacked(map, label);
  return sortTable(map.info.keySize, map.valueBytes, dump.count, dump.keys, dump.values).table;
}

/** What a read-back needs of a table-typed map: how many entries are present, and the managed ones. */
export interface TableState {
  /** Entries present (arrays: indices with a non-zero value, or declared). */
  presentCount: number;
  /** The managed entries (merge: only declared keys), sorted by key bytes. */
  managed: EntryTable;
}

/** Reads the live state of a table-typed map for `spec` (which must carry a table). */
export function readTableState(spec: MapSpec, map: MapFd): TableState {
  const declared = spec.table!;
  const present = presentTable(liveTable(map, spec.pinPath), isArrayLike(map.info.type), declared);
  return { presentCount: present.count, managed: spec.contentsPolicy === "exact" ? present : declaredPart(present, declared) };
}

/** How many keys a delta adds, changes and removes. */
export interface DeltaCounts {
  added: number;
  changed: number;
  removed: number;
}

/** The delta that brings a table-typed map to its declaration, packed. */
export interface TableDelta {
  upserts: { keys: Buffer; values: Buffer; count: number };
  deletes: { keys: Buffer; count: number };
  counts: DeltaCounts;
  /** The state once applied: the declared entries are the managed ones. */
  after: TableState;
}

/**
 * The delta from the live map to `spec`'s table under its policy: upserts of
 * added and changed keys; deletes of undeclared keys (exact), or in merge
 * mode of `previousKeys` (what the previous declaration managed) that `spec`
 * dropped. Reads the map; throws a wrapped kernel error.
 */
export function planTableDelta(spec: MapSpec, map: MapFd, previousKeys?: readonly (Buffer | null)[]): TableDelta {
  const declared = spec.table!;
  const live = presentTable(liveTable(map, spec.pinPath), isArrayLike(map.info.type), declared);
  const difference = compareTables(live, declared);
  const upsertIndices = new Uint32Array(difference.added.length + difference.changed.length);
  upsertIndices.set(difference.added);
  upsertIndices.set(difference.changed, difference.added.length);
  let deleted = pickTable(live, difference.removed);
  // Merge: only keys the previous declaration managed; keys nobody declared stay.
  if (spec.contentsPolicy === "merge") deleted = declaredPart(deleted, keyTable(previousKeys ?? [], declared.keySize));
  const counts = { added: difference.added.length, changed: difference.changed.length, removed: deleted.count };
  return {
    upserts: pick(declared, upsertIndices),
    deletes: { keys: deleted.keys, count: deleted.count },
    counts,
    after: { presentCount: live.count + counts.added - counts.removed, managed: declared },
  };
}

/** Whether a delta changes nothing. */
export function isEmptyDelta(delta: TableDelta): boolean {
  return delta.upserts.count === 0 && delta.deletes.count === 0;
}

/**
 * Applies a table delta: upserts first (batched), then deletes, so a reader
 * never sees a declared key missing. Throws a wrapped kernel error.
 */
export function applyTableDelta(map: MapFd, delta: TableDelta, label: string): void {
  writePacked(map, delta.upserts.keys, delta.upserts.values, delta.upserts.count, label);
  if (delta.deletes.count > 0) faultPoint("before-deletes");
  deletePacked(map, delta.deletes.keys, delta.deletes.count, label);
}

/** A per-key difference named for a report: at most `limit` keys of each kind, and how many there are. */
export interface DriftReport {
  /** Keys in declared notation: the smallest in the key codec's order. */
  drift: ContentsDrift;
  counts: DeltaCounts;
}

/**
 * The per-key difference from `spec`'s declared table to `managed` (the live
 * managed entries): keys only the live map has (added), only the
 * declaration has (removed), and both with different values (changed);
 * undefined when none. Only the named keys are decoded.
 */
export function tableDrift(spec: MapSpec, managed: EntryTable, limit: number): DriftReport | undefined {
  const declared = spec.table!;
  const difference = compareTables(declared, managed);
  const counts = { added: difference.added.length, changed: difference.changed.length, removed: difference.removed.length };
  if (counts.added + counts.changed + counts.removed === 0) return undefined;
  const keyCodec = spec.codecs.key!;
  const named = (table: EntryTable, indices: Uint32Array) =>
    smallest(indices, limit, (a, b) => keyCodec.compare(table.keyAt(a), table.keyAt(b))).map((index) => keyCodec.decode(table.keyAt(index)) as unknown);
  const drift: ContentsDrift = {};
  if (counts.added > 0) drift.added = named(managed, difference.added);
  if (counts.changed > 0) drift.changed = named(managed, difference.changed);
  if (counts.removed > 0) drift.removed = named(declared, difference.removed);
  return { drift, counts };
}
