// Declared contents encoded straight into a packed table (table.ts): inline
// entries, and contents files streamed line by line with a fast path for the
// common line shape ({"key":N,"value":N}, numbers or plain strings), so a
// million-line file never becomes a million objects. Lines the fast path
// cannot decide go through the full notation (JSON, the entry schema, the
// codecs), with the same messages naming the file and line.
import { collecting, type Codec } from "./codecs";
import {
  CONTENTS_MAX_BYTES, encodeKey, encodeValue, entryOfLine, lineOf, shortHex, valueBytesOf, withinEncodingBudget,
  type ContentsTarget, type SpecCodecs,
} from "./contents";
import type { FailureList } from "./failures";
import { MAP_TYPES } from "./maptypes";
import type { ContentEntry } from "./schema";
import { streamLines } from "./linefile";
import { sortTable, TableBuilder, type EntryTable } from "./table";

// Writes a declared key or value at `offset` of `out`: a number through the
// codec's allocation-free path where it has one, anything else (and any
// number it refuses, for the message) through encode. Returns false when it
// failed (the failure collected).
function put(codec: Codec, value: unknown, out: Buffer, offset: number, where: () => string, failures: FailureList): boolean {
  if (typeof value === "number" && codec.encodeNumberInto?.(value, out, offset)) return true;
  const bytes = collecting(failures, () => codec.encode(value, where()));
  if (!bytes) return false;
  bytes.copy(out, offset);
  return true;
}

/** A table and the origin of each of its entries: its index in the declaration, or its line in a contents file. */
export interface OriginTable {
  table: EntryTable;
  origins: Uint32Array;
}

/** Encodes entries one at a time into a TableBuilder, then sorts them into a table. */
class TableEncoder {
  readonly builder: TableBuilder;
  private readonly keyCodec: Codec;
  private readonly valueCodec: Codec;
  private readonly perCpu: boolean;
  private readonly stride: number;
  private readonly indexLimit: number | undefined;
  private readonly recordBytes: number;
  /** Entries given (encoded or not), for the maxEntries rule. */
  given = 0;
  /** False once the memory budget is spent: nothing more is encoded. */
  private withinBudget = true;

  constructor(
    private readonly target: ContentsTarget, private readonly codecs: SpecCodecs, private readonly failures: FailureList, capacity: number,
  ) {
    const info = MAP_TYPES[target.mapType];
    this.keyCodec = codecs.key!;
    this.valueCodec = codecs.value!;
    this.perCpu = info.perCpu === true;
    this.stride = this.perCpu ? Math.ceil(this.valueCodec.size / 8) * 8 : this.valueCodec.size;
    const rule = info.contents!;
    this.indexLimit = rule.kind === "keyed" && rule.index ? target.maxEntries : undefined;
    const valueBytes = valueBytesOf(target, codecs);
    this.recordBytes = this.keyCodec.size + valueBytes;
    this.builder = new TableBuilder(this.keyCodec.size, valueBytes, Math.min(capacity, Math.floor(CONTENTS_MAX_BYTES / Math.max(1, this.recordBytes))));
  }

  // Counts one more entry against the memory budget; false (and one failure) past it.
  private admit(): boolean {
    this.given++;
    if (!this.withinBudget) return false;
    if (this.given * this.recordBytes <= CONTENTS_MAX_BYTES) return true;
    this.withinBudget = withinEncodingBudget(this.given, this.target, this.codecs, this.failures);
    return this.withinBudget;
  }

  /**
   * The fast path: a key and a value that are numbers the codecs write as
   * they are. Returns false, having kept nothing, when the full path must
   * decide (strings, numbers a codec refuses, array indices out of range).
   */
  tryFast(key: unknown, value: unknown, origin: number): boolean {
    const { builder } = this;
    if (typeof key !== "number" || typeof value !== "number") return false;
    if (!this.keyCodec.encodeNumberInto || !this.valueCodec.encodeNumberInto) return false;
    if (!this.admit()) return true;
    const slot = builder.reserve(origin);
    const keyOffset = slot * builder.keySize;
    const valueOffset = slot * builder.valueBytes;
    // An array index is the key's bytes read as the kernel reads them (u32 LE),
    // whatever the codec's notation (a u32be key 1 is index 16777216).
    if (!this.keyCodec.encodeNumberInto(key, builder.keys, keyOffset) ||
      (this.indexLimit !== undefined && builder.keys.readUInt32LE(keyOffset) >= this.indexLimit) ||
      !this.valueCodec.encodeNumberInto(value, builder.values, valueOffset)) {
      builder.unreserve();
      this.given--;
      return false;
    }
    if (this.perCpu) this.spread(valueOffset);
    return true;
  }

  // Copies CPU 0's slot of a per-CPU value to every other CPU (padding zero).
  private spread(valueOffset: number): void {
    const { values } = this.builder;
    values.fill(0, valueOffset + this.valueCodec.size, valueOffset + this.stride);
    for (let cpu = 1; cpu < this.codecs.possibleCpus; cpu++) {
      values.copy(values, valueOffset + cpu * this.stride, valueOffset, valueOffset + this.stride);
    }
  }

  /** The full path: one declared entry in any notation, failures collected under `where`. */
  add(entry: ContentEntry, origin: number, where: string): void {
    if (!this.admit()) return;
    const before = this.failures.count;
    if (entry.perCpuValues === undefined && entry.value !== undefined && entry.key !== undefined && !this.perCpu && this.indexLimit === undefined) {
      // Plain keyed entries: written in place.
      const slot = this.builder.reserve(origin);
      const keyOk = put(this.keyCodec, entry.key, this.builder.keys, slot * this.builder.keySize, () => `${where}.key`, this.failures);
      const valueOk = put(this.valueCodec, entry.value, this.builder.values, slot * this.builder.valueBytes, () => `${where}.value`, this.failures);
      if (!keyOk || !valueOk) this.builder.unreserve();
      return;
    }
    const key = encodeKey(entry, where, this.target, this.codecs, this.failures);
    const value = encodeValue(entry, where, this.target, this.codecs, this.failures);
    if (this.failures.count === before && key && value instanceof Buffer) this.builder.append(key, value, origin);
  }

  /** Sorts what was encoded into the table; duplicate keys and too many entries are failures (`pathOf` names an origin). */
  finish(pathOf: (origin: number) => string): OriginTable {
    const { builder, target } = this;
    const { table, duplicates, origins } = sortTable(builder.keySize, builder.valueBytes, builder.count, builder.keys, builder.values, builder.origins);
    duplicates.sort((a, b) => a[1] - b[1]);
    for (const [first, second, slot] of duplicates) {
      const key = builder.keys.subarray(slot * builder.keySize, (slot + 1) * builder.keySize);
      this.failures.add(`${pathOf(second)}.key`, `duplicates ${pathOf(first)}.key (both are ${shortHex(key)})`);
    }
    const rule = MAP_TYPES[target.mapType].contents!;
    if (rule.kind === "keyed" && rule.limit && target.maxEntries !== undefined && this.given > target.maxEntries) {
      this.failures.add("contents", `${this.given} entries exceed maxEntries ${target.maxEntries}`);
    }
    return { table, origins };
  }
}

/**
 * Encodes inline contents of a table type (see isTableType) into a packed
 * table, collecting failures under `pathOf(index)`: the same rules and
 * messages as encodeEntries. Returns the table (empty when nothing is declared).
 */
export function encodeTable(
  contents: readonly ContentEntry[], target: ContentsTarget, codecs: SpecCodecs, pathOf: (index: number) => string, failures: FailureList,
): OriginTable {
  const encoder = new TableEncoder(target, codecs, failures, contents.length);
  if (withinEncodingBudget(contents.length, target, codecs, failures)) {
    contents.forEach((entry, index) => {
      const plain = entry.perCpuValues === undefined && Object.keys(entry).length === 2;
      if (!(plain && encoder.tryFast(entry.key, entry.value, index))) encoder.add(entry, index, pathOf(index));
    });
  }
  encoder.given = contents.length;
  return encoder.finish(pathOf);
}

// ---- contents files

// The bytes around the numbers of the commonest line shape.
const KEY_PREFIX = Buffer.from(`{"key":`);
const VALUE_PREFIX = Buffer.from(`,"value":`);

// JSON whitespace (newlines are line ends here).
const isSpace = (byte: number) => byte === 0x20 || byte === 0x09 || byte === 0x0d;

// Scans `{"key":<token>,"value":<token>}` (JSON whitespace between tokens),
// where a token is a JSON integer of at most 15 digits or a string of
// printable ASCII without escapes. Anything else is not decided here (scan
// returns false): blank lines (then `blank` is set), other shapes, escapes,
// non-ASCII, fractions, exponents, invalid JSON — the full path decides.
class LineScanner {
  key: number | string = 0;
  value: number | string = 0;
  blank = false;
  private bytes: Buffer = Buffer.alloc(0);
  private at = 0;
  private end = 0;
  private token: number | string = 0;

  scan(bytes: Buffer, start: number, end: number): boolean {
    return this.compact(bytes, start, end) || this.general(bytes, start, end);
  }

  // The commonest line exactly, `{"key":<digits>,"value":<digits>}` with no
  // whitespace, in one pass with no calls; false (nothing decided) otherwise.
  private compact(bytes: Buffer, start: number, end: number): boolean {
    let at = start;
    for (let index = 0; index < KEY_PREFIX.length; index++) if (bytes[at + index] !== KEY_PREFIX[index]) return false;
    at += KEY_PREFIX.length;
    let key = 0;
    const keyStart = at;
    while (at < end && bytes[at]! >= 0x30 && bytes[at]! <= 0x39) key = key * 10 + (bytes[at++]! - 0x30);
    const keyDigits = at - keyStart;
    if (keyDigits === 0 || keyDigits > 15 || (keyDigits > 1 && bytes[keyStart] === 0x30)) return false;
    for (let index = 0; index < VALUE_PREFIX.length; index++) if (bytes[at + index] !== VALUE_PREFIX[index]) return false;
    at += VALUE_PREFIX.length;
    let value = 0;
    const valueStart = at;
    while (at < end && bytes[at]! >= 0x30 && bytes[at]! <= 0x39) value = value * 10 + (bytes[at++]! - 0x30);
    const valueDigits = at - valueStart;
    if (valueDigits === 0 || valueDigits > 15 || (valueDigits > 1 && bytes[valueStart] === 0x30)) return false;
    if (bytes[at] !== 0x7d || at + 1 !== end) return false;
    this.blank = false;
    this.key = key;
    this.value = value;
    return true;
  }

  private general(bytes: Buffer, start: number, end: number): boolean {
    this.bytes = bytes;
    this.at = start;
    this.end = end;
    this.blank = false;
    this.space();
    if (this.at === end) {
      this.blank = true;
      return false;
    }
    if (!this.literal(0x7b) || !this.name("key") || !this.literal(0x3a) || !this.scalar()) return false;
    this.key = this.token;
    if (!this.literal(0x2c) || !this.name("value") || !this.literal(0x3a) || !this.scalar()) return false;
    this.value = this.token;
    if (!this.literal(0x7d)) return false;
    this.space();
    return this.at === end;
  }

  private space(): void {
    while (this.at < this.end && isSpace(this.bytes[this.at]!)) this.at++;
  }

  private literal(byte: number): boolean {
    this.space();
    if (this.at >= this.end || this.bytes[this.at] !== byte) return false;
    this.at++;
    return true;
  }

  private name(text: "key" | "value"): boolean {
    this.space();
    const { bytes } = this;
    if (this.at + 2 + text.length > this.end || bytes[this.at] !== 0x22) return false;
    for (let index = 0; index < text.length; index++) if (bytes[this.at + 1 + index] !== text.charCodeAt(index)) return false;
    if (bytes[this.at + 1 + text.length] !== 0x22) return false;
    this.at += 2 + text.length;
    return true;
  }

  private scalar(): boolean {
    this.space();
    const { bytes, end } = this;
    let at = this.at;
    if (at >= end) return false;
    if (bytes[at] === 0x22) {
      const start = ++at;
      while (at < end) {
        const byte = bytes[at]!;
        if (byte === 0x22) break;
        if (byte === 0x5c || byte < 0x20 || byte >= 0x7f) return false;
        at++;
      }
      if (at >= end) return false;
      this.token = bytes.toString("latin1", start, at);
      this.at = at + 1;
      return true;
    }
    const negative = bytes[at] === 0x2d;
    if (negative) at++;
    const first = at;
    let number = 0;
    while (at < end) {
      const byte = bytes[at]!;
      if (byte < 0x30 || byte > 0x39) break;
      number = number * 10 + (byte - 0x30);
      at++;
    }
    const digits = at - first;
    // JSON forbids leading zeros; fractions and exponents are the full path's.
    if (digits === 0 || digits > 15 || (digits > 1 && bytes[first] === 0x30)) return false;
    if (at < end) {
      const next = bytes[at];
      if (next === 0x2e || next === 0x65 || next === 0x45) return false;
    }
    this.token = negative ? -number : number;
    this.at = at;
    return true;
  }
}

/** A parsed contents file kept for the next check of the same file (see encodeContentsFile). */
interface CachedTable {
  key: string;
  digest: string;
  table: OriginTable;
}

// The last few files encoded: check and then create or update in the same
// process parse a file once. Bounded by count and by bytes (a long-running
// provider keeps at most this much); an entry is reused only when the file's
// identity, size, times and content digest all match.
const CACHE_SIZE = 2;
const CACHE_MAX_BYTES = 256 << 20;
const cache: CachedTable[] = [];

const tableBytes = ({ table }: OriginTable) => table.keys.length + table.values.length + 4 * table.count;

/**
 * Reads a JSON Lines contents file of a table type (see isTableType) straight
 * into a packed table: one `{ key, value }` (or `perCpuValues`) per non-empty
 * line, strict UTF-8, at most CONTENTS_FILE_MAX_BYTES. Failures name the file
 * and line (`contentsFile <file> line <n>…`), as encodeEntries names an
 * index. `codecIdentity` names the codecs and sizes, for the cache: a file
 * checked again with the same codecs and unchanged (same identity, size,
 * mtime, ctime and sha256) is not parsed again. Returns the table, or
 * undefined when the file could not be read (the failure collected).
 */
export function encodeContentsFile(
  file: string, target: ContentsTarget, codecs: SpecCodecs, codecIdentity: string, failures: FailureList,
): OriginTable | undefined {
  const where = (line: number) => lineOf(file, line);
  if (cache.length > 0) {
    // Hashing the file is cheap next to parsing it.
    const seen = streamLines(file);
    if (typeof seen === "string") {
      failures.add("contentsFile", seen);
      return undefined;
    }
    const key = `${seen.identity}\0${codecIdentity}`;
    const hit = cache.find((entry) => entry.key === key && entry.digest === seen.digest);
    if (hit) return hit.table;
  }
  const encoder = new TableEncoder(target, codecs, failures, 1024);
  const scanner = new LineScanner();
  const before = failures.count;
  const read = streamLines(file, (bytes, start, end, line) => {
    if (scanner.scan(bytes, start, end)) {
      // What JSON.parse would make of the line; strings (addresses, CIDRs) go to their codec.
      if (!encoder.tryFast(scanner.key, scanner.value, line)) encoder.add({ key: scanner.key, value: scanner.value }, line, where(line));
      return;
    }
    if (scanner.blank) return;
    const entry = entryOfLine(file, bytes, start, end, line, failures);
    if (entry !== undefined) encoder.add(entry, line, where(line));
  });
  if (typeof read === "string") {
    failures.add("contentsFile", read);
    return undefined;
  }
  const table = encoder.finish(where);
  if (failures.count === before && tableBytes(table) <= CACHE_MAX_BYTES) {
    cache.unshift({ key: `${read.identity}\0${codecIdentity}`, digest: read.digest, table });
    while (cache.length > CACHE_SIZE || cache.reduce((sum, entry) => sum + tableBytes(entry.table), 0) > CACHE_MAX_BYTES) cache.pop();
  }
  return table;
}
