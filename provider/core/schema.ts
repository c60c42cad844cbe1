// The input schema of a PinnedMap: zod schemas that are the single source of
// the input types, their shape validation and its error text, and the
// property-by-property parse that check starts with.
import { z } from "zod";
import { CodecSchema, parseCodec, type CodecDecl } from "./codecs";
import { FailureList, MAX_REPORTED_FAILURES } from "./failures";
import { MAP_FLAG_NAMES, MAP_TYPE_NAMES, type MapFlagName } from "./maptypes";
import { PinPathSchema } from "./pinpath";

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

/** How many characters of a name the kernel keeps (BPF_OBJ_NAME_LEN less the NUL). */
export const MAP_NAME_MAX = 15;

/**
 * The kernel name a map gets when none is declared: its pin's file name, cut
 * to MAP_NAME_MAX characters as libbpf cuts its map names, so that a libbpf
 * object pinning by name finds it again (libbpf renames its map to the
 * kernel's name when it reuses a pinned map). Undefined when the file name
 * has characters a map name cannot have (the map then has no name).
 */
export function defaultMapName(pinPath: string): string | undefined {
  const name = pinPath.slice(pinPath.lastIndexOf("/") + 1).slice(0, MAP_NAME_MAX);
  return /^[A-Za-z0-9_.]+$/.test(name) ? name : undefined;
}

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

/** The PinnedMap inputs of docs/design.md. */
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
  /**
   * Whether the map carries BTF of its key and value codecs (what
   * `bpftool map dump` shows field names from, and what bpf_spin_lock
   * needs). Default: true where the map type takes BTF and every codec has
   * a BTF form (hex has none), else false.
   */
  btf: z.boolean({ error: "must be a boolean" }).optional(),
  contents: z.array(ContentEntrySchema, { error: "must be an array of { key?, value?, perCpuValues? }" }).optional(),
  /**
   * Instead of `contents`: a JSON Lines file (one `{ key?, value?, perCpuValues? }`
   * per line, same notation), relative to the working directory. Its
   * entries are read at check; a caller may keep only their digest.
   */
  contentsFile: z.string({ error: "must be a path to a JSON Lines file" }).min(1, { error: "must not be empty" }).optional(),
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

/** PinnedMap inputs as parsed, before defaults. */
export type ParsedInput = z.output<typeof PinnedMapSpecInputSchema>;

/** One declared entry as validated (the user's notation). */
export type ContentEntry = z.output<typeof ContentEntrySchema>;

/** The inner map template with sizes and flags filled in. */
export type InnerMapSpec = Required<z.output<typeof InnerMapSchema>> & { flags: MapFlagName[] };

/** The spec fields of a checked PinnedMap: inputs with defaults filled in (see checkSpec). */
export type SpecFields = Required<Omit<ParsedInput, "innerMap" | "permissions" | "numaNode" | "keyType" | "valueType" | "flags" | "contentsFile" | "btf">> & {
  /** The JSON Lines file `contents` was read from, if any. */
  contentsFile?: string;
  flags: MapFlagName[];
  /** null where the map has no keys (key size 0: queue, stack, bloom_filter, ringbufs, arena). */
  keyType: CodecDecl | null;
  /** null for *_of_maps, whose values are pin paths. */
  valueType: CodecDecl | null;
  innerMap?: InnerMapSpec;
  permissions?: ParsedInput["permissions"];
  numaNode?: number;
  /** `btf` as declared; absent means the default (see effectiveBtf in btfmap.ts). */
  btf?: boolean;
};

/** The input properties, parsed one by one: the valid ones, and the names of those given at all. */
export interface ParsedInputs {
  /** Properties that passed their schema. */
  values: Partial<ParsedInput>;
  /** Properties present in the input (valid or not): a given-but-invalid one is not also "required". */
  given: ReadonlySet<string>;
}

function joinPath(base: string, keys: readonly PropertyKey[]): string {
  let out = base;
  for (const key of keys) out += typeof key === "number" ? `[${key}]` : out ? `.${String(key)}` : String(key);
  return out;
}

// Edit distance (insert, delete, substitute; case differences cost nothing
// extra beyond a substitution), for suggesting a known property name.
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = previous[j - 1]! + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitute));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Returns the known name closest to `name` when it is close enough to be a
 * likely typo (at most a quarter of its letters, and at least 2, differ), else
 * undefined. Names longer than 64 characters get no suggestion.
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  if (name.length > 64) return undefined;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(best.name.length / 4)) ? best.name : undefined;
}

/**
 * Parses each input property with its own schema, so that one bad property
 * does not hide the others and the valid ones remain usable for the rules
 * that follow. Unknown properties fail, naming the closest known one.
 * Returns undefined (with a failure) when the input is not an object.
 */
export function parseInputs(raw: unknown, failures: FailureList): ParsedInputs | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    failures.add("", "must be an object");
    return undefined;
  }
  const shape = PinnedMapSpecInputSchema.shape;
  const known = Object.keys(shape);
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const [name, value] of Object.entries(raw)) {
    if (!Object.hasOwn(shape, name)) {
      // Past the failures an error lists, a suggestion would only be counted: skip its cost.
      const suggestion = failures.count < MAX_REPORTED_FAILURES ? closestName(name, known) : undefined;
      failures.add(name || JSON.stringify(name), suggestion ? `unknown property; did you mean ${suggestion}?` : `unknown property (known: ${known.join(", ")})`);
      continue;
    }
    if (value === undefined) continue;
    given.add(name);
    if (name === "keyType" || name === "valueType") {
      // Codecs have their own parse: it names the one failing field and rule, not every union branch.
      const codec = parseCodec(value);
      if (codec.decl !== undefined) values[name] = codec.decl;
      else for (const issue of codec.issues) failures.add(joinPath(name, issue.path), issue.message);
      continue;
    }
    const result = (shape[name as keyof typeof shape] as z.ZodType).safeParse(value);
    if (result.success) values[name] = result.data;
    else for (const issue of result.error.issues) failures.add(joinPath(name, issue.path), issue.message);
  }
  return { values: values as Partial<ParsedInput>, given };
}
