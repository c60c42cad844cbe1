// Packed tables: a map's entries as two buffers (keys, values) of fixed-size
// records, sorted by key bytes, with no object per entry. Large contents go
// from the contents file to the syscall, and from a dump to its digest and
// delta, in this form; entries are decoded to the declared notation only
// where a user sees them (drifted keys, small maps).
import { createHash } from "node:crypto";
import type { RawEntry } from "./map";

/** Entries of fixed-size keys and values packed in two buffers, sorted by key bytes, each key once. */
export class EntryTable {
  /**
   * `keys` holds `count` keys of `keySize` bytes, ascending by bytes and
   * unique; `values` the `count` values of `valueBytes` bytes in the same
   * order. Only sortTable and the table functions below make one.
   */
  constructor(
    readonly keySize: number,
    readonly valueBytes: number,
    readonly count: number,
    readonly keys: Buffer,
    readonly values: Buffer,
  ) {}

  /** The i-th key (a view, not a copy). */
  keyAt(index: number): Buffer {
    return this.keys.subarray(index * this.keySize, (index + 1) * this.keySize);
  }

  /** The i-th value (a view, not a copy). */
  valueAt(index: number): Buffer {
    return this.values.subarray(index * this.valueBytes, (index + 1) * this.valueBytes);
  }

  /** The entries as RawEntry views (one object per entry: for small tables and what a user sees). */
  rawEntries(): RawEntry[] {
    const entries = new Array<RawEntry>(this.count);
    for (let index = 0; index < this.count; index++) entries[index] = { key: this.keyAt(index), value: this.valueAt(index) };
    return entries;
  }

  private digestOnce?: string;

  /** The digest of the table (see tableDigest), computed once. */
  digest(): string {
    this.digestOnce ??= tableDigest(this);
    return this.digestOnce;
  }

  /** An empty table of these sizes. */
  static empty(keySize: number, valueBytes: number): EntryTable {
    return new EntryTable(keySize, valueBytes, 0, Buffer.alloc(0), Buffer.alloc(0));
  }
}

/**
 * Unsorted entries appended one by one into growing buffers, with the
 * caller's number for each (an index in the declaration, or a file line),
 * for messages about duplicates.
 */
export class TableBuilder {
  keys: Buffer;
  values: Buffer;
  origins: Uint32Array;
  count = 0;

  constructor(readonly keySize: number, readonly valueBytes: number, capacity = 1024) {
    const room = Math.max(1, capacity);
    this.keys = Buffer.alloc(room * keySize);
    this.values = Buffer.alloc(room * valueBytes);
    this.origins = new Uint32Array(room);
  }

  /** Makes room for one more entry and returns its slot; the caller writes its key and value bytes at slot × size. */
  reserve(origin: number): number {
    if (this.count === this.origins.length) this.grow();
    this.origins[this.count] = origin;
    return this.count++;
  }

  /** Drops the last reserved entry (its encoding failed). */
  unreserve(): void {
    this.count--;
  }

  /** Appends a copy of `key` and `value`. */
  append(key: Buffer, value: Buffer, origin: number): void {
    const slot = this.reserve(origin);
    key.copy(this.keys, slot * this.keySize);
    value.copy(this.values, slot * this.valueBytes);
  }

  private grow(): void {
    const room = this.origins.length * 2;
    const keys = Buffer.alloc(room * this.keySize);
    this.keys.copy(keys);
    this.keys = keys;
    const values = Buffer.alloc(room * this.valueBytes);
    this.values.copy(values);
    this.values = values;
    const origins = new Uint32Array(room);
    origins.set(this.origins);
    this.origins = origins;
  }
}

// The order of `count` keys by their bytes: an LSD radix sort of indices,
// one counting pass per 16-bit digit (the first byte alone when the size is
// odd), passes where every key has the same digit skipped, so fixed-size
// keys sort in linear time and equal keys stay in their original order.
function keyOrder(keys: Buffer, keySize: number, count: number): Uint32Array {
  let order = new Uint32Array(count);
  for (let index = 0; index < count; index++) order[index] = index;
  if (count < 2) return order;
  let spare = new Uint32Array(count);
  const buckets = new Uint32Array(65536);
  for (let low = keySize - 1; low >= 0; low -= 2) {
    const sorted = low > 0 ? digitPass16(keys, keySize, low - 1, count, order, spare, buckets) : digitPass8(keys, keySize, count, order, spare, buckets);
    if (sorted) [order, spare] = [spare, order];
  }
  return order;
}

// One pass over the 16-bit digit at bytes `high`, `high + 1`: scatters `order`
// into `into`. Returns false (nothing moved) when every key has the same digit.
function digitPass16(keys: Buffer, keySize: number, high: number, count: number, order: Uint32Array, into: Uint32Array, buckets: Uint32Array): boolean {
  buckets.fill(0);
  for (let entry = 0; entry < count; entry++) {
    const at = entry * keySize + high;
    buckets[(keys[at]! << 8) | keys[at + 1]!]!++;
  }
  if (buckets[(keys[high]! << 8) | keys[high + 1]!] === count) return false;
  let position = 0;
  for (let bucket = 0; bucket < 65536; bucket++) {
    const size = buckets[bucket]!;
    buckets[bucket] = position;
    position += size;
  }
  for (let index = 0; index < count; index++) {
    const entry = order[index]!;
    const at = entry * keySize + high;
    into[buckets[(keys[at]! << 8) | keys[at + 1]!]!++] = entry;
  }
  return true;
}

// digitPass16 for the first byte alone.
function digitPass8(keys: Buffer, keySize: number, count: number, order: Uint32Array, into: Uint32Array, buckets: Uint32Array): boolean {
  buckets.fill(0, 0, 256);
  for (let entry = 0; entry < count; entry++) buckets[keys[entry * keySize]!]!++;
  if (buckets[keys[0]!] === count) return false;
  let position = 0;
  for (let bucket = 0; bucket < 256; bucket++) {
    const size = buckets[bucket]!;
    buckets[bucket] = position;
    position += size;
  }
  for (let index = 0; index < count; index++) {
    const entry = order[index]!;
    into[buckets[keys[entry * keySize]!]!++] = entry;
  }
  return true;
}

/** Copies record `from` of `source` to record `to` of `target` (records of `size` bytes). */
export function copyRecord(source: Buffer, from: number, target: Buffer, to: number, size: number): void {
  if (size > 32) {
    source.copy(target, to * size, from * size, (from + 1) * size);
    return;
  }
  const sourceOffset = from * size;
  const targetOffset = to * size;
  for (let byte = 0; byte < size; byte++) target[targetOffset + byte] = source[sourceOffset + byte]!;
}

// 32-bit word views of a buffer whose offset and length are multiples of 4, else undefined.
function words(buffer: Buffer): Uint32Array | undefined {
  if (buffer.byteOffset % 4 !== 0 || buffer.length % 4 !== 0) return undefined;
  return new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.length / 4);
}

// Gathers records in `order` from `source` into `target` (records of `size`
// bytes): by 32-bit words where sizes and offsets allow (the common case:
// u32/u64/address keys and values), else by bytes.
function gather(source: Buffer, target: Buffer, size: number, order: ArrayLike<number>, count: number): void {
  const from = size % 4 === 0 ? words(source) : undefined;
  const to = size % 4 === 0 ? words(target) : undefined;
  if (from && to) {
    const width = size / 4;
    if (width === 1) {
      for (let index = 0; index < count; index++) to[index] = from[order[index]!]!;
    } else if (width === 2) {
      for (let index = 0; index < count; index++) {
        const at = order[index]! * 2;
        to[2 * index] = from[at]!;
        to[2 * index + 1] = from[at + 1]!;
      }
    } else {
      for (let index = 0; index < count; index++) {
        const at = order[index]! * width;
        for (let word = 0; word < width; word++) to[index * width + word] = from[at + word]!;
      }
    }
    return;
  }
  for (let index = 0; index < count; index++) copyRecord(source, order[index]!, target, index, size);
}

// Compares record `a` of `left` with record `b` of `right` by bytes.
function compareRecords(left: Buffer, a: number, right: Buffer, b: number, size: number): number {
  const leftOffset = a * size;
  const rightOffset = b * size;
  for (let byte = 0; byte < size; byte++) {
    const difference = left[leftOffset + byte]! - right[rightOffset + byte]!;
    if (difference !== 0) return difference;
  }
  return 0;
}

/** A pair of entries with the same key, by their origins (the earlier first), and the later one's position in the unsorted input. */
export type Duplicate = [first: number, second: number, slot: number];

/**
 * Sorts unsorted packed entries (`origins`: the caller's number of each, for
 * duplicates) into a table. Returns the table, the origin of each of its
 * entries, and the duplicate keys found (each later occurrence paired with
 * the first; the table keeps the first).
 */
export function sortTable(
  keySize: number, valueBytes: number, count: number, keys: Buffer, values: Buffer, origins?: Uint32Array,
): { table: EntryTable; duplicates: Duplicate[]; origins: Uint32Array } {
  let order = keyOrder(keys, keySize, count);
  const originOf = (entry: number) => (origins ? origins[entry]! : entry);
  let sortedKeys = Buffer.allocUnsafe(count * keySize);
  gather(keys, sortedKeys, keySize, order, count);
  // Equal keys are adjacent now (a sequential scan); the radix sort is
  // stable, so a run's first is the earliest occurrence.
  const duplicates: Duplicate[] = [];
  if (firstRepeat(sortedKeys, keySize, count) < count) {
    // Rare (the check fails then): keep each key's first occurrence.
    const kept: number[] = [order[0]!];
    let runStart = 0;
    for (let index = 1; index < count; index++) {
      if (compareRecords(sortedKeys, index - 1, sortedKeys, index, keySize) !== 0) {
        runStart = index;
        kept.push(order[index]!);
      } else duplicates.push([originOf(order[runStart]!), originOf(order[index]!), order[index]!]);
    }
    order = Uint32Array.from(kept);
    sortedKeys = Buffer.allocUnsafe(order.length * keySize);
    gather(keys, sortedKeys, keySize, order, order.length);
  }
  const size = order.length;
  const sortedValues = Buffer.allocUnsafe(size * valueBytes);
  gather(values, sortedValues, valueBytes, order, size);
  const sortedOrigins = new Uint32Array(size);
  for (let index = 0; index < size; index++) sortedOrigins[index] = originOf(order[index]!);
  return { table: new EntryTable(keySize, valueBytes, size, sortedKeys, sortedValues), duplicates, origins: sortedOrigins };
}

// The index of the first record of sorted `keys` equal to the one before it; `count` when none is.
function firstRepeat(keys: Buffer, keySize: number, count: number): number {
  const asWords = keySize % 4 === 0 ? words(keys) : undefined;
  if (asWords && keySize === 4) {
    for (let index = 1; index < count; index++) if (asWords[index] === asWords[index - 1]) return index;
    return count;
  }
  if (asWords) {
    const width = keySize / 4;
    for (let index = 1; index < count; index++) {
      let same = true;
      for (let word = 0; word < width && same; word++) same = asWords[index * width + word] === asWords[(index - 1) * width + word];
      if (same) return index;
    }
    return count;
  }
  for (let index = 1; index < count; index++) if (compareRecords(keys, index - 1, keys, index, keySize) === 0) return index;
  return count;
}

/** A table of keys alone (values of 0 bytes), for membership tests: `keys` in any order, nulls and duplicates dropped. */
export function keyTable(keys: readonly (Buffer | null)[], keySize: number): EntryTable {
  const none = Buffer.alloc(0);
  return tableOf(keys.filter((key): key is Buffer => key !== null).map((key) => ({ key, value: none })), keySize, 0);
}

/** A table of `entries` (RawEntry form, keys not null, any order; duplicates keep the first). */
export function tableOf(entries: readonly RawEntry[], keySize: number, valueBytes: number): EntryTable {
  const builder = new TableBuilder(keySize, valueBytes, entries.length);
  entries.forEach((entry, index) => builder.append(entry.key!, entry.value, index));
  return sortTable(keySize, valueBytes, builder.count, builder.keys, builder.values).table;
}

function isZeroRecord(values: Buffer, index: number, size: number): boolean {
  const offset = index * size;
  for (let byte = 0; byte < size; byte++) if (values[offset + byte] !== 0) return false;
  return true;
}

// Keeps the records of `table` at the indices `keep` says.
function filterTable(table: EntryTable, keep: (index: number) => boolean): EntryTable {
  const picked: number[] = [];
  for (let index = 0; index < table.count; index++) if (keep(index)) picked.push(index);
  return picked.length === table.count ? table : pickTable(table, Uint32Array.from(picked));
}

/**
 * The entries of `live` that count as present: for arrays (every index
 * exists), an all-zero value at an index `declared` does not hold is absent;
 * declared indices are always present.
 */
export function presentTable(live: EntryTable, arrayLike: boolean, declared: EntryTable): EntryTable {
  if (!arrayLike) return live;
  const inDeclared = membership(live, declared);
  return filterTable(live, (index) => inDeclared[index] === 1 || !isZeroRecord(live.values, index, live.valueBytes));
}

/** The entries of `live` whose keys `declared` holds (merge mode manages those only). */
export function declaredPart(live: EntryTable, declared: EntryTable): EntryTable {
  const inDeclared = membership(live, declared);
  return filterTable(live, (index) => inDeclared[index] === 1);
}

/** Indices of the entries of `table` whose keys none of `others` holds, ascending. */
export function undeclaredIndices(table: EntryTable, ...others: EntryTable[]): Uint32Array {
  const held = others.map((other) => membership(table, other));
  const picked: number[] = [];
  for (let index = 0; index < table.count; index++) if (held.every((found) => found[index] === 0)) picked.push(index);
  return Uint32Array.from(picked);
}

// For each entry of `table`, 1 when `other` has its key (a merge of two sorted tables).
function membership(table: EntryTable, other: EntryTable): Uint8Array {
  const found = new Uint8Array(table.count);
  const size = table.keySize;
  let j = 0;
  for (let i = 0; i < table.count && j < other.count;) {
    const order = compareRecords(table.keys, i, other.keys, j, size);
    if (order === 0) {
      found[i] = 1;
      i++;
      j++;
    } else if (order < 0) i++;
    else j++;
  }
  return found;
}

/**
 * sha256 over the table, in the form contentsDigest hashes entries (sorted by
 * key bytes; each key and value preceded by its length, u32 LE), so the two
 * agree. Hashed in chunks: no copy of the whole table.
 */
export function tableDigest(table: EntryTable): string {
  const hash = createHash("sha256");
  const { keySize, valueBytes, keys, values } = table;
  const record = 8 + keySize + valueBytes;
  const perChunk = Math.max(1, Math.floor((1 << 20) / record));
  const chunk = Buffer.allocUnsafe(Math.min(table.count, perChunk) * record);
  const keyLength = Buffer.alloc(4);
  keyLength.writeUInt32LE(keySize);
  const valueLength = Buffer.alloc(4);
  valueLength.writeUInt32LE(valueBytes);
  for (let start = 0; start < table.count; start += perChunk) {
    const end = Math.min(table.count, start + perChunk);
    let offset = 0;
    for (let index = start; index < end; index++) {
      // Each part is preceded by its length, u32 little-endian.
      for (let byte = 0; byte < 4; byte++) chunk[offset + byte] = keyLength[byte]!;
      offset += 4;
      const keyStart = index * keySize;
      for (let byte = 0; byte < keySize; byte++) chunk[offset + byte] = keys[keyStart + byte]!;
      offset += keySize;
      for (let byte = 0; byte < 4; byte++) chunk[offset + byte] = valueLength[byte]!;
      offset += 4;
      const valueStart = index * valueBytes;
      for (let byte = 0; byte < valueBytes; byte++) chunk[offset + byte] = values[valueStart + byte]!;
      offset += valueBytes;
    }
    hash.update(chunk.subarray(0, offset));
  }
  return `sha256:${hash.digest("hex")}`;
}

/** Whether two tables hold the same entries (byte for byte). */
export function sameTable(a: EntryTable, b: EntryTable): boolean {
  return a.count === b.count && a.keySize === b.keySize && a.valueBytes === b.valueBytes && a.keys.equals(b.keys) && a.values.equals(b.values);
}

/** Indices into two tables, grown as needed. */
class IndexList {
  items = new Uint32Array(64);
  length = 0;
  push(index: number): void {
    if (this.length === this.items.length) {
      const larger = new Uint32Array(this.items.length * 2);
      larger.set(this.items);
      this.items = larger;
    }
    this.items[this.length++] = index;
  }
  toArray(): Uint32Array {
    return this.items.subarray(0, this.length);
  }
}

/**
 * How `to` differs from `from` by key: indices into `to` of keys only it has
 * (added), into `from` of keys only it has (removed), and into `to` of keys
 * both have with different values (changed).
 */
export interface TableDifference {
  added: Uint32Array;
  removed: Uint32Array;
  changed: Uint32Array;
}

/** The per-key difference from `from` to `to` (same key and value sizes), in one pass over both. */
export function compareTables(from: EntryTable, to: EntryTable): TableDifference {
  const added = new IndexList();
  const removed = new IndexList();
  const changed = new IndexList();
  const keySize = from.keySize;
  let i = 0;
  let j = 0;
  while (i < from.count || j < to.count) {
    const order = i === from.count ? 1 : j === to.count ? -1 : compareRecords(from.keys, i, to.keys, j, keySize);
    if (order < 0) removed.push(i++);
    else if (order > 0) added.push(j++);
    else {
      if (compareRecords(from.values, i, to.values, j, from.valueBytes) !== 0) changed.push(j);
      i++;
      j++;
    }
  }
  return { added: added.toArray(), removed: removed.toArray(), changed: changed.toArray() };
}

/** The entries of `table` at `indices`, packed (keys and values in index order). */
export function pick(table: EntryTable, indices: Uint32Array): { keys: Buffer; values: Buffer; count: number } {
  const keys = Buffer.allocUnsafe(indices.length * table.keySize);
  const values = Buffer.allocUnsafe(indices.length * table.valueBytes);
  indices.forEach((from, to) => {
    copyRecord(table.keys, from, keys, to, table.keySize);
    copyRecord(table.values, from, values, to, table.valueBytes);
  });
  return { keys, values, count: indices.length };
}

/** The entries of `table` at ascending `indices`, as a table (still sorted, keys still unique). */
export function pickTable(table: EntryTable, indices: Uint32Array): EntryTable {
  const { keys, values, count } = pick(table, indices);
  return new EntryTable(table.keySize, table.valueBytes, count, keys, values);
}

/**
 * The `limit` smallest of `indices` by `compare` (ascending), without sorting
 * them all: what a drift report names of a large difference.
 */
export function smallest(indices: Uint32Array, limit: number, compare: (a: number, b: number) => number): number[] {
  if (indices.length <= limit) return Array.from(indices).sort(compare);
  const best: number[] = [];
  for (const index of indices) {
    if (best.length === limit && compare(index, best[best.length - 1]!) >= 0) continue;
    let at = best.length;
    while (at > 0 && compare(index, best[at - 1]!) < 0) at--;
    best.splice(at, 0, index);
    if (best.length > limit) best.pop();
  }
  return best;
}
