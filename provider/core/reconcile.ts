// Content reconciliation: the delta that turns the live entries into the
// declared ones (never clear-and-refill), and a digest of managed contents
// that does not depend on order or notation.
import { createHash } from "node:crypto";
import type { MapFd } from "../../native";
import { deleteKeys, isArrayLike, writeEntries, type RawEntry } from "./map";
import { faultPoint } from "./faults";

/** `exact`: the map holds exactly the declared entries; `merge`: only declared keys are managed. */
export type ContentsPolicy = "exact" | "merge";

/** Upserts of new and changed keys, and deletes of undeclared keys (exact only). */
export interface Delta {
  upserts: RawEntry[];
  deletes: Buffer[];
}

/**
 * A key's identity as a Map key: its bytes as a latin1 string (one char per
 * byte: cheaper to make than hex, and it orders like the bytes).
 */
export const keyOf = (key: Buffer | null): string => (key === null ? "" : key.toString("latin1"));

function isZero(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0) return false;
  return true;
}

/**
 * The live entries that count as present: for arrays, whose every index
 * exists, an all-zero value at an undeclared index is "absent" (that is how
 * an undeclared index is expressed); declared indices are always present.
 */
export function presentEntries(mapType: number, live: RawEntry[], declaredKeys: ReadonlySet<string> = new Set()): RawEntry[] {
  return isArrayLike(mapType) ? live.filter((entry) => !isZero(entry.value) || declaredKeys.has(keyOf(entry.key))) : live;
}

/** The keys of `entries` as presentEntries and planDelta compare them. */
export function keySet(entries: RawEntry[]): Set<string> {
  return new Set(entries.map((entry) => keyOf(entry.key)));
}

/**
 * The delta from `live` to `declared` under `policy`. `declared` values for
 * maps of maps are compared through `liveValueOf`, which the caller supplies
 * (an inner map's fd differs from the ID the kernel reports).
 */
export function planDelta(
  mapType: number,
  declared: RawEntry[],
  live: RawEntry[],
  policy: ContentsPolicy,
  sameValue: (declared: RawEntry, live: RawEntry) => boolean = (a, b) => a.value.equals(b.value),
): Delta {
  const liveByKey = new Map(presentEntries(mapType, live, keySet(declared)).map((entry) => [keyOf(entry.key), entry]));
  const declaredKeys = new Set<string>();
  const upserts: RawEntry[] = [];
  for (const entry of declared) {
    const id = keyOf(entry.key);
    declaredKeys.add(id);
    const current = liveByKey.get(id);
    if (current === undefined || !sameValue(entry, current)) upserts.push(entry);
  }
  const deletes: Buffer[] = [];
  if (policy === "exact") {
    for (const [id, entry] of liveByKey) {
      if (!declaredKeys.has(id) && entry.key !== null) deletes.push(entry.key);
    }
  }
  return { upserts, deletes };
}

/**
 * Applies `delta` to `map`: upserts first (batched), then deletes (batched),
 * so a reader never sees a declared key missing. Throws a wrapped kernel error.
 */
export function applyDelta(map: MapFd, delta: Delta, label: string): void {
  writeEntries(map, delta.upserts, label);
  if (delta.deletes.length > 0) faultPoint("before-deletes");
  deleteKeys(map, delta.deletes, label);
}

/**
 * sha256 over managed entries in canonical form: sorted by key bytes, each
 * key and value length-prefixed. Maps of maps hash the inner pin path instead
 * of the value bytes. Keyless maps (queue, stack) keep their order.
 */
export function contentsDigest(entries: RawEntry[], keepOrder = false): string {
  // Keys as latin1 strings compare like their bytes, and far faster than a
  // native Buffer.compare call per comparison.
  const sorted = keepOrder
    ? entries
    : entries
      .map((entry) => ({ entry, order: entry.key === null ? "" : entry.key.toString("latin1") }))
      .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0))
      .map(({ entry }) => entry);
  // One buffer, one hash update: a native call per part costs more than the copy.
  const none = Buffer.alloc(0);
  const parts = sorted.map((entry) => [
    entry.key ?? none,
    entry.innerPinPath !== undefined ? Buffer.from(`pin:${entry.innerPinPath}`) : entry.value,
  ]);
  const total = parts.reduce((sum, [key, value]) => sum + 8 + key.length + value.length, 0);
  const bytes = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const [key, value] of parts) {
    offset = bytes.writeUInt32LE(key.length, offset);
    offset += key.copy(bytes, offset);
    offset = bytes.writeUInt32LE(value.length, offset);
    offset += value.copy(bytes, offset);
  }
  const hash = createHash("sha256").update(bytes);
  return `sha256:${hash.digest("hex")}`;
}
