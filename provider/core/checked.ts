// checkSpec: PinnedMap inputs → a checked spec, or one SpecError with every
// failure. It ties the input schema (schema.ts), the per-type kernel rules
// (rules.ts) and the contents encoding (contents.ts) together. The checked
// spec carries its encoded entries and codecs, so nothing downstream parses,
// validates or encodes the declaration again.
import { adoptedCodecs, checkMapBtf } from "./btfmap";
import { CodecError, makeCodec, fixedSize, type CodecDecl } from "./codecs";
import {
  encodeEntries, isTableType, readContentsFile, rawEntriesOf, tableNotation, toNotation, valueBytesOf, type ContentsTarget, type EncodedEntry, type SpecCodecs,
} from "./contents";
import { encodeContentsFile, encodeTable, type OriginTable } from "./packed";
import { EntryTable } from "./table";
import { FailureList, InputError, type Failure, type InputErrorMaker } from "./failures";
import { MAP_TYPES, type MapTypeName, type SizeRule } from "./maptypes";
import { checkNumaAndExtra, checkShape, hostOf, type HostInfo, type ResolvedShape, type ShapeContext } from "./rules";
import { checkPinHost } from "./pinhost";
import { parseInputs, type ContentEntry, type InnerMapSpec, type ParsedInput, type SpecFields } from "./schema";

/** Every failure of a spec; the message has one `path: rule` line per failure (at most 100, then a count). */
export class SpecError extends InputError {
  constructor(failures: readonly Failure[], omitted = 0, omittedPath = "") {
    super(failures, omitted, omittedPath);
    this.name = "SpecError";
  }
}

const specError: InputErrorMaker = (failures, omitted, omittedPath) => new SpecError(failures, omitted, omittedPath);

/**
 * A checked spec: the inputs with defaults filled in — sizes implied by the
 * type, maxEntries of perf_event_array, flags in bit order (numa_node
 * included when numaNode is set), keyType/valueType "hex" (keyType null for
 * key-less types, valueType null for *_of_maps, whose values are pin paths),
 * contentsPolicy "exact", freeze false, ifExists "fail", name "", mapExtra 0,
 * contents [] (as declared inline; a contentsFile of a keyed map with plain
 * values leaves it empty: its entries are in `table`) — and, as
 * non-enumerable properties (so JSON and deep equality see only the fields),
 * the encoded `entries` in canonical order, the `codecs` that read them and,
 * for keyed maps with plain values, the packed `table`. Only checkSpec makes
 * one; a copy (`{ ...spec }`) loses them and must be checked again.
 */
export type MapSpec = SpecFields & {
  /** The declared contents encoded for the kernel, in canonical order (keyed types: made from `table` when first read). */
  readonly entries: readonly EncodedEntry[];
  /** The key and value codecs, and the CPU count per-CPU values span. */
  readonly codecs: SpecCodecs;
  /**
   * Keyed types with plain values (see isTableType): the declared contents
   * as a packed table, sorted by key bytes. Large contents travel in this
   * form only; `entries` is made from it for whoever asks.
   */
  readonly table?: EntryTable;
};

// A fixed-size codec implies the size it encodes (u32 key → keySize 4),
// unless the size is given (a mismatch is then the codec's failure) or the
// type fixes the size itself.
function impliedSize(declared: number | undefined, decl: CodecDecl | undefined, typeRule: SizeRule | undefined): number | undefined {
  if (declared !== undefined || decl === undefined || (typeRule && "fixed" in typeRule)) return declared;
  return fixedSize(decl);
}

function codecFor(decl: CodecDecl | undefined, size: number | undefined, path: string, failures: FailureList): ReturnType<typeof makeCodec> | undefined {
  if (size === undefined) return undefined;
  try {
    return makeCodec(decl ?? "hex", size, path);
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    failures.addAll(error);
    return undefined;
  }
}

// The inner map template of a map of maps, checked by the same rules.
function checkInnerMap(type: MapTypeName, inputs: Partial<ParsedInput>, context: ShapeContext): InnerMapSpec | undefined {
  const { failures } = context;
  const inner = inputs.innerMap;
  if (!MAP_TYPES[type].mapInMap) {
    if (inner) failures.add("innerMap", `only array_of_maps and hash_of_maps take an inner map, not ${type}`);
    return undefined;
  }
  if (inputs.valueType !== undefined) failures.add("valueType", `must be omitted for ${type}: its values are pin paths of other maps`);
  if (!inner) {
    if (!context.given.has("innerMap")) failures.add("innerMap", `is required for ${type} (the template of the maps it holds)`);
    return undefined;
  }
  if (MAP_TYPES[inner.mapType].mapInMap) {
    failures.add("innerMap.mapType", "an inner map cannot itself hold maps (the kernel allows one level)");
    return undefined;
  }
  const resolved = checkShape(inner, { ...context, base: "innerMap", numaNode: undefined });
  if (!resolved || resolved.keySize === undefined || resolved.valueSize === undefined || resolved.maxEntries === undefined) return undefined;
  return { mapType: inner.mapType, keySize: resolved.keySize, valueSize: resolved.valueSize, maxEntries: resolved.maxEntries, flags: resolved.flags };
}

// The key and value codecs for the sizes that passed the rules.
function codecsFor(type: MapTypeName, inputs: Partial<ParsedInput>, shape: ResolvedShape, cpus: number, failures: FailureList): SpecCodecs {
  const info = MAP_TYPES[type];
  const kind = info.contents!.kind;
  if (shape.keySize === 0 && inputs.keyType !== undefined) failures.add("keyType", `${type} has no keys (key size 0)`);
  return {
    key: kind === "keyed" ? codecFor(inputs.keyType, shape.keySize, "keyType", failures) : undefined,
    value: info.mapInMap || kind === "none" ? undefined : codecFor(inputs.valueType, shape.valueSize, "valueType", failures),
    possibleCpus: cpus,
  };
}

// The declared contents: inline, or read from contentsFile (each entry then
// named by file and line instead of its index).
function declaredContents(inputs: Partial<ParsedInput>, failures: FailureList): { contents: ContentEntry[]; pathOf: (index: number) => string } {
  const inline = { contents: inputs.contents ?? [], pathOf: (index: number) => `contents[${index}]` };
  if (inputs.contentsFile === undefined) return inline;
  if (inputs.contents !== undefined) {
    failures.add("contentsFile", "give contents or contentsFile, not both");
    return inline;
  }
  const file = inputs.contentsFile;
  const { entries, lines } = readContentsFile(file, failures);
  return { contents: entries, pathOf: (index) => `contentsFile ${file} line ${lines[index]}` };
}

// The declared contents of a table type: inline, or streamed from contentsFile
// (each entry then named by file and line instead of its index).
function declaredTable(inputs: Partial<ParsedInput>, target: ContentsTarget, codecs: SpecCodecs, failures: FailureList): OriginTable {
  const inline = () => encodeTable(inputs.contents ?? [], target, codecs, (index) => `contents[${index}]`, failures);
  if (inputs.contentsFile === undefined) return inline();
  if (inputs.contents !== undefined) {
    failures.add("contentsFile", "give contents or contentsFile, not both");
    return inline();
  }
  const codecIdentity = JSON.stringify([target, inputs.keyType ?? "hex", inputs.valueType ?? "hex", codecs.possibleCpus]);
  return encodeContentsFile(inputs.contentsFile, target, codecs, codecIdentity, failures) ??
    { table: EntryTable.empty(codecs.key!.size, valueBytesOf(target, codecs)), origins: new Uint32Array(0) };
}

// The entries of a table in canonical order (the key codec's), made on demand.
function entriesOfTable({ table, origins }: OriginTable, codecs: SpecCodecs): EncodedEntry[] {
  const entries: EncodedEntry[] = [];
  for (let index = 0; index < table.count; index++) entries.push({ key: table.keyAt(index), value: table.valueAt(index), index: origins[index]! });
  const keyCodec = codecs.key!;
  return entries.sort((a, b) => keyCodec.compare(a.key!, b.key!));
}

// Makes the spec value: the fields enumerable, entries, codecs and table not.
function checkedSpec(fields: SpecFields, contents: EncodedEntry[] | OriginTable, codecs: SpecCodecs): MapSpec {
  if (Array.isArray(contents)) {
    return Object.defineProperties(fields, {
      entries: { value: Object.freeze(contents), enumerable: false },
      codecs: { value: Object.freeze(codecs), enumerable: false },
    }) as MapSpec;
  }
  let entries: readonly EncodedEntry[] | undefined;
  return Object.defineProperties(fields, {
    entries: { get: () => (entries ??= Object.freeze(entriesOfTable(contents, codecs))), enumerable: false },
    codecs: { value: Object.freeze(codecs), enumerable: false },
    table: { value: contents.table, enumerable: false },
  }) as MapSpec;
}

/**
 * Validates PinnedMap inputs against the schemas and the kernel's per-type
 * rules, encodes every declared entry, and returns the checked spec (see
 * MapSpec). Pure apart from reading host facts (/sys, /proc, the page size),
 * contentsFile and, unless `hostInfo.pinLocation` is false, the pin path's
 * directories (lstat and statfs only, see checkPinHost: a symlink on the way,
 * a path off bpffs, or a dotted directory to create is a pinPath failure). Work is linear in the input (n log n for sorting keys)
 * and bounded by the kernel's limits: sizes are checked before anything is
 * encoded. Throws SpecError listing the failures (path and rule; at most
 * 100, then a count).
 */
export function checkSpec(input: unknown, hostInfo: HostInfo = {}): MapSpec {
  const failures = new FailureList();
  // Without an object or a map type there is nothing to apply rules to.
  const stop = (): never => {
    failures.throwIfAny(specError);
    throw new Error("unreachable: stopped without a failure");
  };
  const host = hostOf(hostInfo);
  const parsed = parseInputs(input, failures);
  if (!parsed) return stop();
  const { values: inputs, given } = parsed;
  if (!given.has("pinPath")) failures.add("pinPath", "is required");
  if (!given.has("mapType")) failures.add("mapType", "is required");
  // Host facts of the pin path, read-only: before anything is created, a
  // path that cannot work is refused here (and so at preview).
  if (inputs.pinPath !== undefined && hostInfo.pinLocation !== false) {
    const issue = checkPinHost(inputs.pinPath);
    if (issue) failures.add("pinPath", `${inputs.pinPath}: ${issue.rule}`);
  }
  const type = inputs.mapType;
  if (type === undefined) return stop();
  // Adopting a map with BTF: codecs left out are the ones its BTF expresses (btfmap.ts).
  if (inputs.ifExists === "adopt" && inputs.pinPath !== undefined && hostInfo.pinLocation !== false && failures.count === 0) {
    Object.assign(inputs, adoptedCodecs(inputs.pinPath, type, given));
  }

  // A codec that failed its own check implies no size, yet its size is not
  // "required" as well; and no contents are checked against a stand-in codec
  // (codecsFor): one failure for one mistake.
  const failedCodec = (name: "keyType" | "valueType") => given.has(name) && inputs[name] === undefined;
  const givenForRules = new Set(given);
  if (failedCodec("keyType")) givenForRules.add("keySize");
  if (failedCodec("valueType")) givenForRules.add("valueSize");
  const context: ShapeContext = { base: "", given: givenForRules, numaNode: inputs.numaNode, host, failures };
  const typeInfo = MAP_TYPES[type];
  const shape = checkShape({
    mapType: type,
    keySize: impliedSize(inputs.keySize, inputs.keyType, typeInfo.key),
    valueSize: impliedSize(inputs.valueSize, inputs.valueType, typeInfo.value),
    maxEntries: inputs.maxEntries,
    flags: inputs.flags,
  }, context);
  if (!shape) return stop();
  const mapExtra = checkNumaAndExtra(type, inputs.numaNode, inputs.mapExtra, context);
  if (inputs.freeze && typeInfo.freezeRefused) failures.add("freeze", `${type} cannot be frozen: ${typeInfo.freezeRefused}`);
  const innerMap = checkInnerMap(type, inputs, context);
  const failuresBeforeCodecs = failures.count;
  const built = codecsFor(type, inputs, shape, host.cpus(), failures);
  if (failures.count === failuresBeforeCodecs && !failedCodec("keyType") && !failedCodec("valueType")) {
    // The btf input and bpf_spin_lock fields (btfmap.ts), over codecs that passed.
    checkMapBtf({
      mapType: type, keySize: shape.keySize!, valueSize: shape.valueSize!, btf: inputs.btf, flags: shape.flags, freeze: inputs.freeze,
      keyType: shape.keySize === 0 ? null : inputs.keyType ?? "hex", valueType: typeInfo.mapInMap ? null : inputs.valueType ?? "hex",
    }, failures);
  }
  const codecs: SpecCodecs = {
    ...built,
    ...(failedCodec("keyType") && { key: undefined }),
    ...(failedCodec("valueType") && { value: undefined }),
  };
  const target: ContentsTarget = { mapType: type, ...shape };
  // Keyed maps with plain values: a packed table; the rest (few entries by nature) entry by entry.
  const packed = isTableType(type) && codecs.key !== undefined && codecs.value !== undefined;
  const { contents, pathOf } = packed ? { contents: inputs.contents ?? [], pathOf: undefined } : declaredContents(inputs, failures);
  const encoded = packed ? declaredTable(inputs, target, codecs, failures) : encodeEntries(contents, target, codecs, pathOf!, failures);
  failures.throwIfAny(specError);

  return checkedSpec({
    pinPath: inputs.pinPath!,
    mapType: type,
    keySize: shape.keySize!,
    valueSize: shape.valueSize!,
    maxEntries: shape.maxEntries!,
    flags: shape.flags,
    name: inputs.name ?? "",
    keyType: shape.keySize === 0 ? null : inputs.keyType ?? "hex",
    valueType: typeInfo.mapInMap ? null : inputs.valueType ?? "hex",
    contents,
    contentsPolicy: inputs.contentsPolicy ?? "exact",
    freeze: inputs.freeze ?? false,
    ifExists: inputs.ifExists ?? "fail",
    mapExtra,
    ...(innerMap && { innerMap }),
    ...(inputs.permissions && { permissions: inputs.permissions }),
    ...(inputs.numaNode !== undefined && { numaNode: inputs.numaNode }),
    ...(inputs.contentsFile !== undefined && { contentsFile: inputs.contentsFile }),
    ...(inputs.btf !== undefined && { btf: inputs.btf }),
  }, encoded, codecs);
}

/**
 * Returns the checked parts of a spec. Throws TypeError when the spec was
 * not made by checkSpec (a spread copy loses them: check the copy).
 */
export function checkedPartsOf(spec: MapSpec): { entries: readonly EncodedEntry[]; codecs: SpecCodecs } {
  if (!spec.entries || !spec.codecs) throw new TypeError(`the spec of ${spec.pinPath} was not made by checkSpec (a copy of a checked spec must be checked again)`);
  return { entries: spec.entries, codecs: spec.codecs };
}

/**
 * Returns the contents of a checked spec encoded for the kernel, in canonical
 * order: sorted by the key codec's order, or as declared for
 * queue/stack/bloom_filter (the push order). Throws TypeError for a spec not
 * made by checkSpec.
 */
export function encodeContents(spec: MapSpec): readonly EncodedEntry[] {
  return checkedPartsOf(spec).entries;
}

/**
 * Returns the contents of a checked spec in canonical notation
 * (decode(encode(x))) and canonical order, as read-back shows them: per-CPU
 * values as { value } when all CPUs agree, else { perCpuValues }. Throws
 * TypeError for a spec not made by checkSpec.
 */
export function canonicalContents(spec: MapSpec): ContentEntry[] {
  if (spec.table) return tableNotation({ mapType: spec.mapType, codecs: spec.codecs }, spec.table);
  const { entries, codecs } = checkedPartsOf(spec);
  return toNotation({ mapType: spec.mapType, codecs }, rawEntriesOf(entries));
}
