// Validation of PinnedMap inputs (DESIGN.md) before any syscall.
//
// The zod schemas below are the single source of the input types, their shape
// validation and its error text. checkSpec() parses each property with its
// own schema (so one bad property does not hide the others), then applies the
// per-type kernel rules of maptypes.ts and encodes the contents with the
// codecs, collecting every failure into one SpecError.
import { readFileSync } from "node:fs";
import { PinPathSchema } from "./pinpath";
import { z } from "zod";
import {
  CanonicalValue, Codec, CodecDecl, CodecError, CodecSchema, Failure, decodePerCpu, encodePerCpu, fixedSize, makeCodec,
} from "./codecs.js";
import {
  HASH_KV_MAX, MAP_FLAG_NAMES, MAP_FLAGS, MAP_TYPE_NAMES, MAP_TYPES, MapFlagName, MapTypeInfo, MapTypeName, PAGE_SIZE,
  SizeRule, UNDECLARABLE_FLAGS, flagsToMask, kernelMaxCpus, possibleCpuCount,
} from "./maptypes.js";

export type { Failure } from "./codecs.js";

/** Every failure of a spec; the message has one `path: rule` line per failure. */
export class SpecError extends Error {
  constructor(readonly failures: Failure[]) {
    super(failures.map((f) => (f.path ? `${f.path}: ${f.rule}` : f.rule)).join("\n"));
    this.name = "SpecError";
  }
}

const U32 = z
  .number({ error: "must be an integer" })
  .int({ error: "must be an integer" })
  .min(0, { error: "must be ≥ 0" })
  .max(0xffffffff, { error: "must fit in 32 bits (≤ 4294967295)" });

/** Kernel map name: at most 15 characters of [A-Za-z0-9_.] (the 16th byte is the NUL). */
export const MapNameSchema = z
  .string({ error: "must be a string" })
  .regex(/^[A-Za-z0-9_.]*$/, { error: "may only contain [A-Za-z0-9_.]" })
  .max(15, { error: "is longer than 15 characters (the kernel keeps 16 bytes with the NUL)" });

/** A map type name (bpftool's spelling). */
export const MapTypeSchema = z.enum(MAP_TYPE_NAMES, { error: `must be one of ${MAP_TYPE_NAMES.join(", ")}` });

/** A flag list: names without the BPF_F_ prefix, lower case. */
export const FlagsSchema = z.array(z.enum(MAP_FLAG_NAMES, { error: `is not a map flag (${MAP_FLAG_NAMES.join(", ")})` }));

/** The inner map template of array_of_maps / hash_of_maps. Sizes implied by the type may be omitted. */
export const InnerMapSchema = z.strictObject({
  mapType: MapTypeSchema,
  keySize: U32.optional(),
  valueSize: U32.optional(),
  maxEntries: U32.optional(),
  flags: FlagsSchema.optional(),
});

/** One declared entry; values are checked by the key/value codecs. */
export const ContentEntrySchema = z.strictObject({
  key: z.unknown().optional(),
  value: z.unknown().optional(),
  perCpuValues: z.array(z.unknown(), { error: "must be an array (one value per possible CPU)" }).optional(),
});

/** Pin file permissions: mode (0..0o7777, or an octal string like "0640"), uid, gid. */
export const PermissionsSchema = z.strictObject({
  mode: z
    .union([
      z.number().int().min(0).max(0o7777),
      z.string().regex(/^0?[0-7]{1,4}$/).transform((s) => parseInt(s, 8)),
    ], { error: "must be an integer 0..0o7777 or an octal string like \"0640\"" })
    .optional(),
  uid: U32.optional(),
  gid: U32.optional(),
});

/** map_extra: a safe integer, or a decimal or 0x string; the arena address needs hex. */
export const MapExtraSchema = z.union([
  z.number().int().min(0).refine(Number.isSafeInteger),
  z.string().regex(/^(0x[0-9a-fA-F]+|[0-9]+)$/).transform(Number).refine(Number.isSafeInteger),
], { error: "must be a non-negative integer below 2^53 (a number, or a decimal or 0x string)" });

/** The PinnedMap inputs of DESIGN.md. */
export const PinnedMapSpecInputSchema = z.strictObject({
  pinPath: PinPathSchema,
  mapType: MapTypeSchema,
  keySize: U32.optional(),
  valueSize: U32.optional(),
  maxEntries: U32.optional(),
  flags: FlagsSchema.optional(),
  name: MapNameSchema.optional(),
  keyType: CodecSchema.optional(),
  valueType: CodecSchema.optional(),
  contents: z.array(ContentEntrySchema, { error: "must be an array of { key?, value?, perCpuValues? }" }).optional(),
  /**
   * Instead of `contents`: a JSON Lines file (one `{ key?, value?, perCpuValues? }`
   * per line, same notation), relative to the Pulumi project directory. Only
   * its digest is kept in the state, so large tables do not grow it.
   */
  contentsFile: z.string({ error: "must be a path to a JSON Lines file" }).min(1, { error: "must not be empty" }).optional(),
  /** Set by check: the digest of contentsFile's entries (in state instead of the entries). */
  contentsFileDigest: z.string({ error: "must be a string" }).optional(),
  contentsPolicy: z.enum(["exact", "merge"], { error: "must be \"exact\" or \"merge\"" }).optional(),
  freeze: z.boolean({ error: "must be a boolean" }).optional(),
  innerMap: InnerMapSchema.optional(),
  ifExists: z.enum(["fail", "adopt", "replace"], { error: "must be \"fail\", \"adopt\" or \"replace\"" }).optional(),
  permissions: PermissionsSchema.optional(),
  numaNode: U32.optional(),
  mapExtra: MapExtraSchema.optional(),
});

/** PinnedMap inputs as a user writes them. */
export type PinnedMapSpecInput = z.input<typeof PinnedMapSpecInputSchema>;
type Parsed = z.output<typeof PinnedMapSpecInputSchema>;

/** One declared entry as validated (the user's notation). */
export type ContentEntry = z.output<typeof ContentEntrySchema>;

/** The inner map template with sizes and flags filled in. */
export type InnerMapSpec = Required<z.output<typeof InnerMapSchema>> & { flags: MapFlagName[] };

/**
 * A checked spec with defaults filled in: sizes implied by the type,
 * maxEntries of perf_event_array, flags in bit order (numa_node included when
 * numaNode is set), keyType/valueType "hex" (keyType null for key-less
 * types, valueType null for *_of_maps, whose values are pin paths), contentsPolicy "exact", freeze false,
 * ifExists "fail", name "", mapExtra 0, contents [] (as declared).
 */
export type MapSpec = Required<Omit<Parsed, "innerMap" | "permissions" | "numaNode" | "keyType" | "valueType" | "flags" | "contentsFile" | "contentsFileDigest">> & {
  /** The JSON Lines file `contents` was read from, if any. */
  contentsFile?: string;
  contentsFileDigest?: string;
  flags: MapFlagName[];
  /** null where the map has no keys (key size 0: queue, stack, bloom_filter, ringbufs, arena). */
  keyType: CodecDecl | null;
  /** null for *_of_maps, whose values are pin paths. */
  valueType: CodecDecl | null;
  innerMap?: InnerMapSpec;
  permissions?: Parsed["permissions"];
  numaNode?: number;
};

/**
 * Reads a JSON Lines contents file: one entry object per non-empty line.
 * Failures name the file and line. Relative paths are resolved against the
 * working directory (the Pulumi project's, for the provider and the program).
 */
function readContentsFile(file: string, failures: Failure[]): { entries: ContentEntry[]; lines: number[] } {
  const entries: ContentEntry[] = [];
  const lines: number[] = [];
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    failures.push({ path: "contentsFile", rule: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` });
    return { entries, lines };
  }
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    const where = `contentsFile ${file} line ${index + 1}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      failures.push({ path: where, rule: "is not JSON" });
      return;
    }
    const result = ContentEntrySchema.safeParse(parsed);
    if (result.success) {
      entries.push(result.data);
      lines.push(index + 1);
    } else failures.push({ path: where, rule: `must be an object { key?, value?, perCpuValues? }: ${result.error.issues[0]?.message ?? "invalid"}` });
  });
  return { entries, lines };
}

/** Host facts the rules depend on; read from /sys when omitted (tests pass them). */
export interface HostInfo {
  possibleCpus?: number;
  /** NR_CPUS, cpumap's limit. */
  kernelMaxCpus?: number;
  /** /proc/sys/kernel/perf_event_max_stack, stack_trace's frame limit. */
  perfMaxStack?: number;
}

function perfMaxStack(): number {
  try {
    return Number(readFileSync("/proc/sys/kernel/perf_event_max_stack", "utf8").trim()) || 127;
  } catch {
    return 127;
  }
}

const host = (h: HostInfo) => ({
  cpus: () => h.possibleCpus ?? possibleCpuCount(),
  nrCpus: () => h.kernelMaxCpus ?? kernelMaxCpus(),
  maxStack: () => h.perfMaxStack ?? perfMaxStack(),
});

function pathOf(base: string, p: readonly PropertyKey[]): string {
  let out = base;
  for (const k of p) out += typeof k === "number" ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out;
}

// Parses each property with its own schema so that every failure is reported
// and the valid properties remain usable for the rules that follow.
function parseProps<S extends z.ZodRawShape>(
  shape: S, raw: unknown, base: string, failures: Failure[],
): Partial<{ [K in keyof S]: z.output<S[K]> }> | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    failures.push({ path: base, rule: "must be an object" });
    return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!Object.hasOwn(shape, k)) failures.push({ path: pathOf(base, [k]) || JSON.stringify(k), rule: `unknown property (known: ${Object.keys(shape).join(", ")})` });
    else if (v === undefined) continue;
    else {
      const r = (shape[k] as z.ZodType).safeParse(v);
      if (r.success) out[k] = r.data;
      else for (const i of r.error.issues) failures.push({ path: pathOf(pathOf(base, [k]), i.path), rule: i.message });
    }
  }
  return out as Partial<{ [K in keyof S]: z.output<S[K]> }>;
}

function describe(rule: SizeRule): string {
  if ("fixed" in rule) return `exactly ${rule.fixed}`;
  if ("oneOf" in rule) return rule.oneOf.join(" or ");
  const range = rule.max === undefined ? `≥ ${rule.min}` : `${rule.min}..${rule.max}`;
  return rule.multipleOf ? `${range}, a multiple of ${rule.multipleOf}` : range;
}

function resolveSize(
  type: string, prop: string, what: string, declared: number | undefined, rule: SizeRule | undefined, failures: Failure[],
): number | undefined {
  if (!rule) return declared;
  if (declared === undefined) {
    if ("fixed" in rule) return rule.fixed;
    if ("oneOf" in rule) return rule.default;
    failures.push({ path: prop, rule: `is required for ${type} (${describe(rule)})` });
    return undefined;
  }
  const ok = "fixed" in rule ? declared === rule.fixed
    : "oneOf" in rule ? rule.oneOf.includes(declared)
    : declared >= rule.min && (rule.max === undefined || declared <= rule.max) && (!rule.multipleOf || declared % rule.multipleOf === 0);
  if (!ok) failures.push({ path: prop, rule: `${type} needs ${what} ${describe(rule)}, not ${declared}` });
  return ok ? declared : undefined;
}

interface Shape {
  mapType: MapTypeName;
  keySize?: number;
  valueSize?: number;
  maxEntries?: number;
  flags?: MapFlagName[];
}

interface Resolved {
  info: MapTypeInfo;
  keySize?: number;
  valueSize?: number;
  maxEntries?: number;
  flags: MapFlagName[];
}

// The per-type kernel rules shared by the map and its inner template.
function checkShape(s: Shape, base: string, numaNode: number | undefined, h: ReturnType<typeof host>, failures: Failure[]): Resolved | undefined {
  const info: MapTypeInfo = MAP_TYPES[s.mapType];
  const at = (p: string) => (base ? `${base}.${p}` : p);
  if (info.unsupported) {
    failures.push({ path: at("mapType"), rule: `${s.mapType} is not supported: ${info.unsupported}` });
    return undefined;
  }
  const t = s.mapType;
  const keySize = resolveSize(t, at("keySize"), "key size", s.keySize, info.key, failures);
  const valueSize = resolveSize(t, at("valueSize"), "value size", s.valueSize, info.value, failures);
  let maxEntries = s.maxEntries;
  const e = info.entries!;
  if (maxEntries === undefined) {
    if (e.defaultCpus) maxEntries = h.cpus();
    else failures.push({ path: at("maxEntries"), rule: `is required for ${t}` });
  } else {
    const max = e.max === "cpus" ? h.nrCpus() : e.max;
    const bad = (rule: string) => { failures.push({ path: at("maxEntries"), rule }); maxEntries = undefined; };
    if (maxEntries < e.min) bad(`${t} needs maxEntries ≥ ${e.min}, not ${maxEntries}`);
    else if (max !== undefined && maxEntries > max) {
      bad(`${t} needs maxEntries ≤ ${max}${e.max === "cpus" ? " (the kernel's NR_CPUS)" : ""}, not ${maxEntries}`);
    } else if (e.pagePowerOfTwo && (maxEntries % PAGE_SIZE !== 0 || (maxEntries & (maxEntries - 1)) !== 0)) {
      bad(`${t} needs maxEntries a power of two and a multiple of the page size (${PAGE_SIZE}), not ${maxEntries}`);
    }
  }
  // Flags.
  const declared = [...new Set(s.flags ?? [])];
  const accepted = new Set<MapFlagName>(info.flags ?? []);
  (s.flags ?? []).forEach((f, i) => {
    const p = at(`flags[${i}]`);
    const reason = UNDECLARABLE_FLAGS[f];
    if (reason) failures.push({ path: p, rule: reason });
    else if (f === "numa_node") {
      if (numaNode === undefined) failures.push({ path: p, rule: "numa_node is implied by numaNode; set numaNode instead" });
    } else if (!accepted.has(f)) {
      const why = f === "no_prealloc" && t.startsWith("lru_") ? " (LRU maps are always preallocated: the kernel answers ENOTSUPP)"
        : f === "no_prealloc" ? " (it is always preallocated)"
        : info.kernelFlags?.includes(f) ? " (the kernel sets it by itself and refuses it declared)"
        : "";
      failures.push({ path: p, rule: `${t} does not accept ${f}${why}${accepted.size ? `; it accepts ${[...accepted].join(", ")}` : ""}` });
    }
  });
  for (const f of info.requiredFlags ?? []) {
    if (!declared.includes(f)) failures.push({ path: at("flags"), rule: `${t} requires ${f}` });
  }
  if (declared.includes("rdonly_prog") && declared.includes("wronly_prog")) {
    failures.push({ path: at("flags"), rule: "rdonly_prog and wronly_prog exclude each other" });
  }
  const flags: MapFlagName[] = declared.filter((f) => f !== "numa_node");
  if (numaNode !== undefined) flags.push("numa_node");
  flags.sort((a, b) => MAP_FLAGS[a] - MAP_FLAGS[b]);
  // Odd rules.
  if (info.kvLimit && keySize !== undefined && valueSize !== undefined && keySize + valueSize > HASH_KV_MAX) {
    failures.push({ path: at("valueSize"), rule: `${t} needs keySize + valueSize ≤ ${HASH_KV_MAX}, not ${keySize + valueSize}` });
  }
  if (t === "stack_trace" && valueSize !== undefined) {
    const frame = flags.includes("stack_build_id") ? 32 : 8;
    const max = frame * h.maxStack();
    if (valueSize % frame !== 0 || valueSize > max) {
      failures.push({ path: at("valueSize"), rule: `stack_trace needs value size a multiple of ${frame}${frame === 32 ? " (struct bpf_stack_build_id, with stack_build_id)" : " (u64 addresses)"} up to ${max} (perf_event_max_stack frames), not ${valueSize}` });
    }
  }
  return { info, keySize, valueSize, maxEntries, flags };
}

interface Built {
  key: Buffer | null;
  value: Buffer | string;
  index: number;
}

interface Codecs {
  key?: Codec;
  value?: Codec;
}

// Encodes the declared contents, collecting failures; returns the entries in
// canonical order (sorted by key; queue/stack/bloom_filter as declared).
function buildContents(
  t: MapTypeName, r: Resolved, contents: ContentEntry[], codecs: Codecs, cpus: () => number, failures: Failure[],
): Built[] {
  const info = r.info;
  const rule = info.contents!;
  if (contents.length === 0) return [];
  if (rule.kind === "none") {
    failures.push({ path: "contents", rule: `${t} cannot have declared contents: ${rule.reason}` });
    return [];
  }
  const out: Built[] = [];
  const seen = new Map<string, number>();
  contents.forEach((entry, i) => {
    const p = `contents[${i}]`;
    const errs: Failure[] = [];
    const attempt = <T>(fn: () => T): T | undefined => {
      try {
        return fn();
      } catch (err) {
        if (!(err instanceof CodecError)) throw err;
        errs.push(...err.failures);
        return undefined;
      }
    };
    let key: Buffer | null | undefined = null;
    if (rule.kind === "values") {
      if (entry.key !== undefined) errs.push({ path: `${p}.key`, rule: `${t} entries have no key (values are pushed in order)` });
    } else if (entry.key === undefined) {
      errs.push({ path: `${p}.key`, rule: `is required for ${t}` });
      key = undefined;
    } else if (codecs.key) {
      key = attempt(() => codecs.key!.encode(entry.key, `${p}.key`));
      if (key && rule.index && r.maxEntries !== undefined) {
        const index = key.readUInt32LE(0);
        if (index >= r.maxEntries) errs.push({ path: `${p}.key`, rule: `index ${index} is beyond the ${t} (maxEntries ${r.maxEntries})` });
      }
    } else key = undefined;
    let value: Buffer | string | undefined;
    const hasValue = entry.value !== undefined;
    const hasPer = entry.perCpuValues !== undefined;
    if (hasPer && !info.perCpu) errs.push({ path: `${p}.perCpuValues`, rule: `only per-CPU maps take perCpuValues; ${t} takes value` });
    else if (hasPer && hasValue) errs.push({ path: p, rule: "give value or perCpuValues, not both" });
    else if (!hasPer && !hasValue) errs.push({ path: `${p}.value`, rule: `is required${info.perCpu ? " (or perCpuValues)" : ""}` });
    else if (info.mapInMap) {
      const r2 = PinPathSchema.safeParse(entry.value);
      if (r2.success) value = r2.data;
      else errs.push({ path: `${p}.value`, rule: `must be the pin path of the inner map: ${r2.error.issues[0]!.message}` });
    } else if (codecs.value) {
      const codec = codecs.value;
      value = attempt(() => info.perCpu
        ? encodePerCpu(codec, hasPer ? { perCpuValues: entry.perCpuValues! } : { value: entry.value }, cpus(), p)
        : codec.encode(entry.value, `${p}.value`));
    }
    if (key && rule.kind === "keyed") {
      const k = key.toString("hex");
      const first = seen.get(k);
      if (first !== undefined) errs.push({ path: `${p}.key`, rule: `duplicates contents[${first}].key (both are ${k})` });
      else seen.set(k, i);
    }
    failures.push(...errs);
    if (!errs.length && key !== undefined && value !== undefined) out.push({ key: rule.kind === "values" ? null : key, value, index: i });
  });
  // Arrays bound their keys instead; a bloom filter's max_entries only sizes it.
  if (rule.limit && r.maxEntries !== undefined && contents.length > r.maxEntries) {
    failures.push({ path: "contents", rule: `${contents.length} entries exceed maxEntries ${r.maxEntries}` });
  }
  if (rule.kind === "keyed" && codecs.key) {
    const kc = codecs.key;
    out.sort((a, b) => kc.compare(a.key!, b.key!));
  }
  return out;
}

// A property that failed its schema was treated as absent; drop the
// "is required" that this absence caused.
function withoutEchoes(failures: Failure[]): Failure[] {
  const under = (p: string, q: string) => q === p || q.startsWith(`${p}.`) || q.startsWith(`${p}[`);
  return failures.filter((f, i) => !f.rule.startsWith("is required") || !failures.some((g, j) => j !== i && under(f.path, g.path)));
}

function codecFor(decl: CodecDecl | undefined, size: number | undefined, path: string, failures: Failure[]): Codec | undefined {
  if (size === undefined) return undefined;
  try {
    return makeCodec(decl ?? "hex", size, path);
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    failures.push(...e.failures);
    return undefined;
  }
}

/**
 * Validates PinnedMap inputs against the schemas and the kernel's per-type
 * rules, encodes every declared entry, and returns the spec with defaults
 * filled in. Pure apart from reading /sys and /proc for host facts. Throws
 * SpecError listing every failure (path and rule).
 */
export function checkSpec(input: unknown, hostInfo: HostInfo = {}): MapSpec {
  const result = check(input, hostInfo);
  if (Object.keys(hostInfo).length === 0) checked.set(result.spec, result);
  return result.spec;
}

// The encoded contents and codecs of specs checkSpec returned (with the
// host's own facts), so that encodeContents and canonicalContents do not
// validate and encode every entry again. A MapSpec is never mutated.
const checked = new WeakMap<MapSpec, { entries: Built[]; codecs: Codecs }>();

function checkedAgain(spec: MapSpec, hostInfo: HostInfo): { entries: Built[]; codecs: Codecs } {
  const cached = Object.keys(hostInfo).length === 0 ? checked.get(spec) : undefined;
  return cached ?? check(asInput(spec), hostInfo);
}

function check(input: unknown, hostInfo: HostInfo): { spec: MapSpec; entries: Built[]; codecs: Codecs } {
  const failures: Failure[] = [];
  const h = host(hostInfo);
  const v = parseProps(PinnedMapSpecInputSchema.shape, input, "", failures);
  if (!v) throw new SpecError(failures);
  if (v.pinPath === undefined && !failures.some((f) => f.path === "pinPath")) failures.push({ path: "pinPath", rule: "is required" });
  if (v.mapType === undefined) {
    if (!failures.some((f) => f.path === "mapType")) failures.push({ path: "mapType", rule: "is required" });
    throw new SpecError(failures);
  }
  const t = v.mapType;
  const info: MapTypeInfo = MAP_TYPES[t];
  // A fixed-size codec implies the size it encodes (u32 key → keySize 4),
  // unless the size is given; a mismatch is then the codec's failure.
  // Types with a fixed size keep theirs (and the codec reports a mismatch).
  const typeRules = MAP_TYPES[v.mapType];
  const isFixed = (rule: SizeRule | undefined) => rule !== undefined && "fixed" in rule;
  const implied = {
    ...(v.keySize === undefined && v.keyType !== undefined && !isFixed(typeRules.key) && { keySize: fixedSize(v.keyType) }),
    ...(v.valueSize === undefined && v.valueType !== undefined && !isFixed(typeRules.value) && { valueSize: fixedSize(v.valueType) }),
  };
  const r = checkShape({ ...(v as Shape), ...implied }, "", v.numaNode, h, failures);
  if (!r) throw new SpecError(failures);
  if (v.numaNode !== undefined && !info.numa) failures.push({ path: "numaNode", rule: `${t} does not take a NUMA node (the kernel answers EINVAL)` });
  const extra = v.mapExtra ?? 0;
  if (extra !== 0) {
    if (info.mapExtra === "bloom_hashes" && extra > 15) failures.push({ path: "mapExtra", rule: `bloom_filter takes 0..15 hash functions (0 = kernel default 5), not ${extra}` });
    else if (info.mapExtra === "arena_address" && extra % PAGE_SIZE !== 0) failures.push({ path: "mapExtra", rule: `arena needs a page-aligned address (a multiple of ${PAGE_SIZE})` });
    else if (!info.mapExtra) failures.push({ path: "mapExtra", rule: `only bloom_filter (hash count) and arena (address) take mapExtra; ${t} needs 0` });
  }
  // Inner map template.
  let innerMap: InnerMapSpec | undefined;
  if (info.mapInMap) {
    if (!v.innerMap) failures.push({ path: "innerMap", rule: `is required for ${t} (the template of the maps it holds)` });
    else if (MAP_TYPES[v.innerMap.mapType].mapInMap === true) {
      failures.push({ path: "innerMap.mapType", rule: "an inner map cannot itself hold maps (the kernel allows one level)" });
    } else {
      const ir = checkShape(v.innerMap, "innerMap", undefined, h, failures);
      if (ir && ir.keySize !== undefined && ir.valueSize !== undefined && ir.maxEntries !== undefined) {
        innerMap = { mapType: v.innerMap.mapType, keySize: ir.keySize, valueSize: ir.valueSize, maxEntries: ir.maxEntries, flags: ir.flags };
      }
    }
    if (v.valueType !== undefined) failures.push({ path: "valueType", rule: `must be omitted for ${t}: its values are pin paths of other maps` });
  } else if (v.innerMap) {
    failures.push({ path: "innerMap", rule: `only array_of_maps and hash_of_maps take an inner map, not ${t}` });
  }
  const rule = info.contents!;
  const keyless = r.keySize === 0;
  if (keyless && v.keyType !== undefined) failures.push({ path: "keyType", rule: `${t} has no keys (key size 0)` });
  // Contents.
  const codecs: Codecs = {
    key: rule.kind === "keyed" ? codecFor(v.keyType, r.keySize, "keyType", failures) : undefined,
    value: info.mapInMap || rule.kind === "none" ? undefined : codecFor(v.valueType, r.valueSize, "valueType", failures),
  };
  let declared = v.contents ?? [];
  let fileLines: number[] = [];
  if (v.contentsFile !== undefined) {
    if (v.contents !== undefined) failures.push({ path: "contentsFile", rule: "give contents or contentsFile, not both" });
    else ({ entries: declared, lines: fileLines } = readContentsFile(v.contentsFile, failures));
  }
  const fileFailuresFrom = failures.length;
  const entries = buildContents(t, r, declared, codecs, h.cpus, failures);
  // Entries of a file are named by file and line, not by a contents index.
  if (v.contentsFile !== undefined) {
    for (const failure of failures.slice(fileFailuresFrom)) {
      failure.path = failure.path.replace(/^contents\[(\d+)\]/, (_, index) => `contentsFile ${v.contentsFile} line ${fileLines[Number(index)]}`);
    }
  }
  if (failures.length) throw new SpecError(withoutEchoes(failures));
  const spec: MapSpec = {
    pinPath: v.pinPath!,
    mapType: t,
    keySize: r.keySize!,
    valueSize: r.valueSize!,
    maxEntries: r.maxEntries!,
    flags: r.flags,
    name: v.name ?? "",
    keyType: keyless ? null : v.keyType ?? "hex",
    valueType: info.mapInMap ? null : v.valueType ?? "hex",
    contents: declared,
    contentsPolicy: v.contentsPolicy ?? "exact",
    freeze: v.freeze ?? false,
    ifExists: v.ifExists ?? "fail",
    mapExtra: extra,
    ...(innerMap && { innerMap }),
    ...(v.permissions && { permissions: v.permissions }),
    ...(v.numaNode !== undefined && { numaNode: v.numaNode }),
    ...(v.contentsFile !== undefined && { contentsFile: v.contentsFile }),
  };
  return { spec, entries, codecs };
}

/** A declared entry encoded for the kernel. */
export interface EncodedEntry {
  /** Key bytes; null for queue/stack/bloom_filter. */
  key: Buffer | null;
  /** Value bytes (per-CPU maps: possibleCpus × round_up(valueSize, 8)); *_of_maps: the inner map's pin path. */
  value: Buffer | string;
  /** Index of the entry in spec.contents, for error messages at write time. */
  index: number;
}

/**
 * Returns the contents of a checked spec encoded for the kernel, in canonical
 * order: sorted by the key codec's order, or as declared for
 * queue/stack/bloom_filter (the push order). Throws SpecError if the spec
 * does not check (e.g. it was not made by checkSpec).
 */
export function encodeContents(spec: MapSpec, hostInfo: HostInfo = {}): EncodedEntry[] {
  return checkedAgain(spec, hostInfo).entries;
}

// A MapSpec is valid input again, once the null codecs are dropped.
function asInput(spec: MapSpec): unknown {
  // contents already holds what contentsFile named.
  const { keyType, valueType, contentsFile: _file, contentsFileDigest: _digest, ...rest } = spec;
  return { ...rest, ...(keyType !== null && { keyType }), ...(valueType !== null && { valueType }) };
}

/**
 * Returns the contents of a checked spec in canonical notation
 * (decode(encode(x))) and canonical order, as read-back shows them: per-CPU
 * values as { value } when all CPUs agree, else { perCpuValues }. Throws
 * SpecError if the spec does not check.
 */
export function canonicalContents(spec: MapSpec, hostInfo: HostInfo = {}): ContentEntry[] {
  const { entries, codecs } = checkedAgain(spec, hostInfo);
  const h = host(hostInfo);
  const info: MapTypeInfo = MAP_TYPES[spec.mapType];
  return entries.map((e) => {
    const out: ContentEntry = {};
    if (e.key) out.key = codecs.key!.decode(e.key);
    if (typeof e.value === "string") out.value = e.value;
    else if (info.perCpu) Object.assign(out, decodePerCpu(codecs.value!, e.value, h.cpus()));
    else out.value = codecs.value!.decode(e.value) satisfies CanonicalValue;
    return out;
  });
}

/** What the kernel reports for a map created from a spec (BPF_OBJ_GET_INFO_BY_FD). */
export interface KernelView {
  typeId: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags: number;
  mapExtra: number;
}

/**
 * Returns what the kernel will report for a map created from a checked spec
 * (or an inner template), after its own adjustments (measured on 6.18):
 * devmap/devmap_hash gain rdonly_prog; no_common_lru rounds max_entries up to
 * a multiple of the possible CPUs; rdonly/wronly would be dropped (they are
 * refused at check). perf_event_array's CPU default is already in the spec.
 */
export function kernelAdjusted(
  spec: Pick<MapSpec, "mapType" | "keySize" | "valueSize" | "maxEntries" | "flags"> & { mapExtra?: number },
  hostInfo: HostInfo = {},
): KernelView {
  const info: MapTypeInfo = MAP_TYPES[spec.mapType];
  const declared = flagsToMask(spec.flags) & ~(MAP_FLAGS.rdonly | MAP_FLAGS.wronly);
  const mapFlags = (declared | flagsToMask(info.kernelFlags ?? [])) >>> 0;
  let maxEntries = spec.maxEntries;
  if (spec.flags.includes("no_common_lru")) {
    const cpus = host(hostInfo).cpus();
    maxEntries = Math.ceil(maxEntries / cpus) * cpus;
  }
  return { typeId: info.id, keySize: spec.keySize, valueSize: spec.valueSize, maxEntries, mapFlags, mapExtra: spec.mapExtra ?? 0 };
}
