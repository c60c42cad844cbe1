// Declared contents encoded straight into a packed table (table.ts): inline
// entries, and contents files streamed line by line with a fast path for the
// common line shape ({"key":N,"value":N}, numbers or plain strings), so a
// million-line file never becomes a million objects. Lines the fast path
// cannot decide go through the full notation (JSON, the entry schema, the
// codecs), with the same messages naming the file and line.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { collecting, type Codec } from "./codecs";
import {
  CONTENTS_MAX_BYTES, CONTENTS_FILE_MAX_BYTES, encodeKey, encodeValue, shortHex, valueBytesOf, withinEncodingBudget,
  type ContentsTarget, type SpecCodecs,
} from "./contents";
import type { FailureList } from "./failures";
import { MAP_TYPES } from "./maptypes";
import { ContentEntrySchema, type ContentEntry } from "./schema";
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
    if (this.indexLimit !== undefined && !(key >= 0 && key < this.indexLimit)) return false;
    if (!this.admit()) return true;
    const slot = builder.reserve(origin);
    const valueOffset = slot * builder.valueBytes;
    if (!this.keyCodec.encodeNumberInto(key, builder.keys, slot * builder.keySize) ||
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
    for (const [first, second] of duplicates) {
      this.failures.add(`${pathOf(second)}.key`, `duplicates ${pathOf(first)}.key (both are ${shortHex(keyOfOrigin(builder, second))})`);
    }
    const rule = MAP_TYPES[target.mapType].contents!;
    if (rule.kind === "keyed" && rule.limit && target.maxEntries !== undefined && this.given > target.maxEntries) {
      this.failures.add("contents", `${this.given} entries exceed maxEntries ${target.maxEntries}`);
    }
    return { table, origins };
  }
}

// The key bytes of the entry with `origin` in the builder (only for the rare duplicate message).
function keyOfOrigin(builder: TableBuilder, origin: number): Buffer {
  const slot = builder.origins.subarray(0, builder.count).indexOf(origin);
  return builder.keys.subarray(slot * builder.keySize, (slot + 1) * builder.keySize);
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

function fileKind(stat: fs.BigIntStats): string {
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isDirectory()) return "a directory";
  if (stat.isSocket()) return "a socket";
  return "not a regular file";
}

const READ_CHUNK = 4 << 20;

/**
 * Streams a regular file of at most CONTENTS_FILE_MAX_BYTES line by line
 * (`onLine(bytes, start, end, lineNumber)`, lines without their newline; no
 * calls when `onLine` is undefined), hashing it as it goes. O_NONBLOCK keeps
 * a FIFO from blocking the open, fstat (of what was opened) refuses anything
 * but a regular file, and reading stops past the bound, so a file that grows
 * while it is read cannot grow the process. Returns the file's identity
 * (path, device, inode, size, times) and sha256, or the rule it broke.
 */
function streamLines(
  file: string, onLine?: (bytes: Buffer, start: number, end: number, line: number) => void,
): { identity: string; digest: string } | string {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (error) {
    return `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    if (!stat.isFile()) return `${file} is ${fileKind(stat)}; a contents file must be a regular file`;
    const tooBig = (bytes: number | string) => `${file} has ${bytes} bytes; a contents file may have at most ${CONTENTS_FILE_MAX_BYTES} (256 MiB)`;
    if (stat.size > BigInt(CONTENTS_FILE_MAX_BYTES)) return tooBig(String(stat.size));
    const identity = `${path.resolve(file)}\0${stat.dev}\0${stat.ino}\0${stat.size}\0${stat.mtimeNs}\0${stat.ctimeNs}`;
    const hash = createHash("sha256");
    let buffer = Buffer.allocUnsafe(Math.max(1, Math.min(READ_CHUNK, Number(stat.size) + 1)));
    let filled = 0;
    let total = 0;
    let line = 1;
    for (;;) {
      if (filled === buffer.length) {
        // A line longer than the buffer (or a file that grew): grow it.
        const larger = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(larger, 0, 0, filled);
        buffer = larger;
      }
      const read = fs.readSync(fd, buffer, filled, buffer.length - filled, null);
      total += read;
      if (total > CONTENTS_FILE_MAX_BYTES) return tooBig(`more than ${CONTENTS_FILE_MAX_BYTES}`);
      hash.update(buffer.subarray(filled, filled + read));
      if (!onLine) {
        if (read === 0) return { identity, digest: hash.digest("hex") };
        continue;
      }
      const end = filled + read;
      let start = 0;
      let newline = buffer.indexOf(0x0a, filled);
      while (newline >= 0 && newline < end) {
        onLine(buffer, start, newline, line++);
        start = newline + 1;
        newline = buffer.indexOf(0x0a, start);
      }
      if (read === 0) {
        if (start < end) onLine(buffer, start, end, line);
        return { identity, digest: hash.digest("hex") };
      }
      // Keep the unfinished line at the front for the next read.
      buffer.copy(buffer, 0, start, end);
      filled = end - start;
    }
  } catch (error) {
    return `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  } finally {
    fs.closeSync(fd);
  }
}

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
// process parse a file once. Bounded by count; an entry is reused only when
// the file's identity, size, times and content digest all match.
const CACHE_SIZE = 2;
const cache: CachedTable[] = [];

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
  const where = (line: number) => `contentsFile ${file} line ${line}`;
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
  const strict = new TextDecoder("utf-8", { fatal: true });
  const before = failures.count;
  const read = streamLines(file, (bytes, start, end, line) => {
    if (scanner.scan(bytes, start, end)) {
      // What JSON.parse would make of the line; strings (addresses, CIDRs) go to their codec.
      if (!encoder.tryFast(scanner.key, scanner.value, line)) encoder.add({ key: scanner.key, value: scanner.value }, line, where(line));
      return;
    }
    if (scanner.blank) return;
    let text: string;
    try {
      text = strict.decode(bytes.subarray(start, end));
    } catch {
      failures.add(where(line), "is not valid UTF-8");
      return;
    }
    if (text.trim() === "") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      failures.add(where(line), "is not JSON");
      return;
    }
    const result = ContentEntrySchema.safeParse(parsed);
    if (!result.success) {
      failures.add(where(line), `must be an object { key?, value?, perCpuValues? }: ${result.error.issues[0]?.message ?? "invalid"}`);
      return;
    }
    encoder.add(result.data, line, where(line));
  });
  if (typeof read === "string") {
    failures.add("contentsFile", read);
    return undefined;
  }
  const table = encoder.finish(where);
  if (failures.count === before) {
    cache.unshift({ key: `${read.identity}\0${codecIdentity}`, digest: read.digest, table });
    cache.length = Math.min(cache.length, CACHE_SIZE);
  }
  return table;
}
