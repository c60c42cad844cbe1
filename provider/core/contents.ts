// Map contents as declared: read from a JSON Lines file, encoded for the
// kernel with the key/value codecs (every failure collected), and expressed
// back in canonical notation — the one notation read-back and check share.
import {
  collecting, decodePerCpu, encodePerCpu, perCpuStride, type CanonicalValue, type Codec,
} from "./codecs";
import type { FailureList } from "./failures";
import type { RawEntry } from "./map";
import { MAP_TYPES, type MapTypeName } from "./maptypes";
import { PinPathSchema } from "./pinpath";
import { ContentEntrySchema, type ContentEntry } from "./schema";
import { lineText, streamLines } from "./linefile";

export { CONTENTS_FILE_MAX_BYTES } from "./linefile";
import { copyRecord, type EntryTable } from "./table";

/** A declared entry encoded for the kernel. */
export interface EncodedEntry {
  /** Key bytes; null for queue/stack/bloom_filter. */
  key: Buffer | null;
  /** Value bytes (per-CPU maps: possibleCpus × round_up(valueSize, 8)); *_of_maps: the inner map's pin path. */
  value: Buffer | string;
  /** Index of the entry in spec.contents, for error messages at write time. */
  index: number;
}

/** How a map's keys and values are written and read: its codecs (none where it has no keys, or values are maps) and the CPU count per-CPU values span. */
export interface SpecCodecs {
  readonly key?: Codec;
  readonly value?: Codec;
  readonly possibleCpus: number;
}

// ---- contents files

/**
 * Reads a JSON Lines contents file: one entry object per non-empty line.
 * Only regular files of at most CONTENTS_FILE_MAX_BYTES are read, as strict
 * UTF-8 (see streamLines). Failures name the file and line. Relative paths are
 * resolved against the working directory (the project's, for the provider and
 * the program). Returns the entries and the line each came from. Keyed maps
 * with plain values read their files straight into a packed table instead
 * (packed.ts); this is for the others (queue, stack, bloom filter, maps of maps).
 */
export function readContentsFile(file: string, failures: FailureList): { entries: ContentEntry[]; lines: number[] } {
  const entries: ContentEntry[] = [];
  const lines: number[] = [];
  const read = streamLines(file, (bytes, start, end, line) => {
    const entry = entryOfLine(file, bytes, start, end, line, failures);
    if (entry === undefined) return;
    entries.push(entry);
    lines.push(line);
  });
  if (typeof read === "string") failures.add("contentsFile", read);
  return { entries, lines };
}

/** The path of a contents file's line in failures: `contentsFile <file> line <n>`. */
export const lineOf = (file: string, line: number): string => `contentsFile ${file} line ${line}`;

/**
 * One line of a contents file in the full notation: strict UTF-8, JSON, the
 * entry schema. Returns the entry, or undefined for a blank line or after
 * collecting the failure (under lineOf(file, line)).
 */
export function entryOfLine(file: string, bytes: Buffer, start: number, end: number, line: number, failures: FailureList): ContentEntry | undefined {
  const text = lineText(bytes, start, end, line);
  if (text === undefined) {
    failures.add(lineOf(file, line), "is not valid UTF-8");
    return undefined;
  }
  if (text.trim() === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    failures.add(lineOf(file, line), "is not JSON");
    return undefined;
  }
  const result = ContentEntrySchema.safeParse(parsed);
  if (result.success) return result.data;
  failures.add(lineOf(file, line), `must be an object { key?, value?, perCpuValues? }: ${result.error.issues[0]?.message ?? "invalid"}`);
  return undefined;
}

// ---- encoding

/** How much memory check spends on encoded contents at most: 1 GiB. */
export const CONTENTS_MAX_BYTES = 1 << 30;

/** The map facts encoding needs: its type and the sizes that passed the rules. */
export interface ContentsTarget {
  mapType: MapTypeName;
  keySize?: number;
  valueSize?: number;
  maxEntries?: number;
}

// Key bytes as hex for a message: the first 32 bytes of a long key.
export function shortHex(key: Buffer): string {
  return key.length <= 32 ? key.toString("hex") : `${key.subarray(0, 32).toString("hex")}… (${key.length} bytes)`;
}

/** Encodes one entry's key (failures collected under `path`); null for keyless maps, undefined when it failed. */
export function encodeKey(entry: ContentEntry, path: string, target: ContentsTarget, codecs: SpecCodecs, failures: FailureList): Buffer | null | undefined {
  const type = target.mapType;
  const rule = MAP_TYPES[type].contents!;
  if (rule.kind === "values") {
    if (entry.key !== undefined) failures.add(`${path}.key`, `${type} entries have no key (values are pushed in order)`);
    return null;
  }
  if (entry.key === undefined) {
    failures.add(`${path}.key`, `is required for ${type}`);
    return undefined;
  }
  const codec = codecs.key;
  if (!codec) return undefined;
  const key = collecting(failures, () => codec.encode(entry.key, `${path}.key`));
  if (key && rule.kind === "keyed" && rule.index && target.maxEntries !== undefined) {
    const index = key.readUInt32LE(0);
    if (index >= target.maxEntries) {
      failures.add(`${path}.key`, `index ${index} is beyond the ${type} (maxEntries ${target.maxEntries})`);
      return undefined;
    }
  }
  return key;
}

/** Encodes one entry's value (failures collected under `path`): bytes, per-CPU bytes, or an inner map's pin path. */
export function encodeValue(entry: ContentEntry, path: string, target: ContentsTarget, codecs: SpecCodecs, failures: FailureList): Buffer | string | undefined {
  const type = target.mapType;
  const info = MAP_TYPES[type];
  const hasValue = entry.value !== undefined;
  const hasPerCpu = entry.perCpuValues !== undefined;
  if (hasPerCpu && !info.perCpu) failures.add(`${path}.perCpuValues`, `only per-CPU maps take perCpuValues; ${type} takes value`);
  else if (hasPerCpu && hasValue) failures.add(path, "give value or perCpuValues, not both");
  else if (!hasPerCpu && !hasValue) failures.add(`${path}.value`, `is required${info.perCpu ? " (or perCpuValues)" : ""}`);
  else if (info.mapInMap) {
    const pinPath = PinPathSchema.safeParse(entry.value);
    if (pinPath.success) return pinPath.data;
    failures.add(`${path}.value`, `must be the pin path of the inner map: ${pinPath.error.issues[0]!.message}`);
  } else if (codecs.value) {
    const codec = codecs.value;
    if (!info.perCpu) return collecting(failures, () => codec.encode(entry.value, `${path}.value`));
    const perCpu = hasPerCpu ? { perCpuValues: entry.perCpuValues! } : { value: entry.value };
    return collecting(failures, () => encodePerCpu(codec, perCpu, codecs.possibleCpus, path));
  }
  return undefined;
}

/** Bytes of one encoded value: per-CPU maps hold every possible CPU's slot. */
export function valueBytesOf(target: ContentsTarget, codecs: SpecCodecs): number {
  return MAP_TYPES[target.mapType].perCpu ? perCpuStride(target.valueSize ?? 0) * codecs.possibleCpus : (target.valueSize ?? 0);
}

/** Whether a map type's contents travel as a packed table: keyed, values of fixed size (not maps of maps). */
export function isTableType(mapType: MapTypeName): boolean {
  const info = MAP_TYPES[mapType];
  return info.contents?.kind === "keyed" && !info.mapInMap;
}

// Bytes the encoded contents would take; refused beyond CONTENTS_MAX_BYTES
// before anything is encoded (a one-character string value of a 2 GiB array
// slot would otherwise cost 2 GiB per entry).
export function withinEncodingBudget(count: number, target: ContentsTarget, codecs: SpecCodecs, failures: FailureList): boolean {
  const valueBytes = valueBytesOf(target, codecs);
  const total = count * ((target.keySize ?? 0) + valueBytes);
  if (total <= CONTENTS_MAX_BYTES) return true;
  failures.add("contents", `${count} entries of ${(target.keySize ?? 0) + valueBytes} bytes need ${total} bytes; check encodes at most ${CONTENTS_MAX_BYTES} (1 GiB) of contents`);
  return false;
}

/**
 * Encodes the declared contents, collecting failures (each under
 * `pathOf(index)`); returns the entries in canonical order: sorted by the
 * key codec's order, or as declared for queue/stack/bloom_filter (the push
 * order). Duplicate keys and more entries than maxEntries fail.
 */
export function encodeEntries(
  contents: readonly ContentEntry[], target: ContentsTarget, codecs: SpecCodecs,
  pathOf: (index: number) => string, failures: FailureList,
): EncodedEntry[] {
  const type = target.mapType;
  const rule = MAP_TYPES[type].contents!;
  if (contents.length === 0) return [];
  if (rule.kind === "none") {
    failures.add("contents", `${type} cannot have declared contents: ${rule.reason}`);
    return [];
  }
  if (!withinEncodingBudget(contents.length, target, codecs, failures)) return [];
  const encoded: EncodedEntry[] = [];
  const firstIndexOfKey = new Map<string, number>();
  contents.forEach((entry, index) => {
    const path = pathOf(index);
    const before = failures.count;
    const key = encodeKey(entry, path, target, codecs, failures);
    const value = encodeValue(entry, path, target, codecs, failures);
    if (key) {
      const identity = key.toString("latin1");
      const first = firstIndexOfKey.get(identity);
      if (first === undefined) firstIndexOfKey.set(identity, index);
      else failures.add(`${path}.key`, `duplicates ${pathOf(first)}.key (both are ${shortHex(key)})`);
    }
    if (failures.count === before && key !== undefined && value !== undefined) encoded.push({ key, value, index });
  });
  // Arrays bound their keys instead; a bloom filter's max_entries only sizes it.
  if (rule.limit && target.maxEntries !== undefined && contents.length > target.maxEntries) {
    failures.add("contents", `${contents.length} entries exceed maxEntries ${target.maxEntries}`);
  }
  const keyCodec = codecs.key;
  if (rule.kind === "keyed" && keyCodec) encoded.sort((a, b) => keyCodec.compare(a.key!, b.key!));
  return encoded;
}

// ---- notation

/** A checked spec's facts that reading entries needs. */
export interface NotationTarget {
  mapType: MapTypeName;
  codecs: SpecCodecs;
}

/**
 * Expresses raw entries in the declared notation and canonical order (sorted
 * by the key codec; keyless maps as given): maps of maps show the inner pin
 * path where known, else `map_id:<n>`; per-CPU values show `{ value }` when
 * all CPUs agree, else `{ perCpuValues }`. Read-back and check's canonical
 * contents both use it.
 */
export function toNotation(target: NotationTarget, entries: readonly RawEntry[]): ContentEntry[] {
  const { codecs } = target;
  const info = MAP_TYPES[target.mapType];
  const keyCodec = codecs.key;
  const sorted = keyCodec ? [...entries].sort((a, b) => keyCodec.compare(a.key!, b.key!)) : entries;
  return sorted.map((entry) => {
    const out: ContentEntry = {};
    if (entry.key !== null && keyCodec) out.key = keyCodec.decode(entry.key);
    if (entry.innerPinPath !== undefined) out.value = entry.innerPinPath;
    else if (info.mapInMap) out.value = `map_id:${entry.value.readUInt32LE(0)}`;
    else if (info.perCpu) Object.assign(out, decodePerCpu(codecs.value!, entry.value, codecs.possibleCpus));
    else out.value = codecs.value!.decode(entry.value) satisfies CanonicalValue;
    return out;
  });
}

// Record `index` (of `size` bytes) of `source`, copied into `scratch`.
function load(scratch: Buffer, source: Buffer, index: number, size: number): Buffer {
  copyRecord(source, index, scratch, 0, size);
  return scratch;
}

/**
 * A packed table's entries (see table.ts) in the declared notation and
 * canonical order, as toNotation expresses RawEntry lists, without a Buffer
 * per entry: keys and values are decoded from two scratch buffers (decoded
 * notation never refers to the bytes it came from).
 */
export function tableNotation(target: NotationTarget, table: EntryTable): ContentEntry[] {
  const { codecs } = target;
  const keyCodec = codecs.key!;
  const valueCodec = codecs.value!;
  const perCpu = MAP_TYPES[target.mapType].perCpu === true;
  const { keySize, valueBytes, keys, values } = table;
  const left = Buffer.allocUnsafe(keySize);
  const right = Buffer.allocUnsafe(keySize);
  const order = Array.from({ length: table.count }, (_, index) => index)
    .sort((a, b) => keyCodec.compare(load(left, keys, a, keySize), load(right, keys, b, keySize)));
  const valueScratch = Buffer.allocUnsafe(valueBytes);
  return order.map((index) => {
    const key = keyCodec.decode(load(left, keys, index, keySize));
    const value = load(valueScratch, values, index, valueBytes);
    return perCpu ? { key, ...decodePerCpu(valueCodec, value, codecs.possibleCpus) } : { key, value: valueCodec.decode(value) };
  });
}

/** Encoded entries as the map layer takes them (maps of maps: the inner pin path, no value bytes yet). */
export function rawEntriesOf(entries: readonly EncodedEntry[]): RawEntry[] {
  return entries.map((entry) =>
    typeof entry.value === "string"
      ? { key: entry.key, value: Buffer.alloc(0), innerPinPath: entry.value }
      : { key: entry.key, value: entry.value },
  );
}
