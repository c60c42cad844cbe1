// The property bags the engine passes to the dynamic provider and the ones it
// returns: which properties are the user's inputs (checked by the core, which
// refuses unknown ones), which are outputs, and which are this adapter's own
// state (a contents file's digest and, in merge mode, its managed keys).
import {
  canonicalContents, checkSpec, PinnedMapSpecInputSchema, compareAbi, contentsAreObservable, declaredDigest, encodeContents, packKeys, SpecError, unpackKeys,
  type HostInfo, type MapObservation, type MapSpec, type Observed,
} from "../core";
import { arrayForm, comparableContents, keyedForm } from "./keyed";

/** The output properties a PinnedMap adds to its inputs (pinPath is both). */
export interface PinnedMapOutputs {
  pinPath: string;
  mapId: number;
  abi: MapObservation["abi"];
  frozen: boolean;
  entryCount: number;
  contentsDigest: string;
}

/** Where the dynamic provider host keeps the serialized provider, among the inputs. */
const PROVIDER_PROPERTY = "__provider";

/**
 * With contentsFile, the digest of the file's entries. Check puts it among
 * the inputs, so that the engine's diff sees a changed file; refresh puts the
 * live digest there, so drift shows as a changed digest.
 */
export const FILE_DIGEST_PROPERTY = "contentsFileDigest";

/**
 * With contentsFile in merge mode, the keys the file declared (packKeys), in
 * the outputs only: an update deletes the keys the previous file declared and
 * the new one dropped, without the state keeping the entries.
 */
export const FILE_KEYS_PROPERTY = "contentsFileKeys";

/**
 * The directories the provider created for the pin (outermost first), in the
 * outputs only: destroy removes those that are empty then, and never a
 * directory that existed before.
 */
export const CREATED_DIRECTORIES_PROPERTY = "createdDirectories";

/** The properties a user declares (the core's input schema); everything else in state is outputs or records. */
const INPUT_PROPERTIES = new Set(Object.keys(PinnedMapSpecInputSchema.shape));

/**
 * How recorded state is checked: by the input rules only, not against the
 * host (a pin path whose bpffs is gone must still refresh as "gone" and
 * destroy; new inputs were checked against the host by check).
 */
const RECORDED: HostInfo = { pinLocation: false };

/** The user's properties among check's news: everything but the serialized provider. */
export function declaredInputsOf(news: Record<string, unknown>): Record<string, unknown> {
  const { [PROVIDER_PROPERTY]: _provider, ...declared } = news;
  return declared;
}

/**
 * The spec inputs among recorded state (outputs, or inputs check returned):
 * only the properties of the input schema. Unknown user properties were
 * refused by check already; anything else in state (outputs, this adapter's
 * records, properties another version of the provider recorded) is set
 * aside, so an upgrade or a downgrade never makes recorded state unusable.
 * `withContents: false` leaves contents out (reading keyed contents back
 * costs a codec call per entry; callers that drop them skip it).
 */
export function specInputsOf(props: Record<string, unknown>, withContents = true): Record<string, unknown> {
  const inputs = Object.fromEntries(Object.entries(props).filter(([key, value]) =>
    value !== undefined && INPUT_PROPERTIES.has(key) && (withContents || key !== "contents")));
  // Keyed contents (see keyed.ts) go to the core as the array it checks.
  if (inputs.contents !== undefined) inputs.contents = arrayForm(inputs);
  return inputs;
}

/** The properties whose change is a change of the declaration: the spec inputs and a contents file's digest. */
export function declarationOf(props: Record<string, unknown>): Record<string, unknown> {
  const declaration = specInputsOf(props, false);
  // Contents compare keyed and order-free: state recorded as an array (before
  // the keyed form) equals the same entries keyed.
  if (props.contents !== undefined) declaration.contents = comparableContents(props);
  if (props[FILE_DIGEST_PROPERTY] !== undefined) declaration[FILE_DIGEST_PROPERTY] = props[FILE_DIGEST_PROPERTY];
  return declaration;
}

// The engine's marker for values not known during preview.
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Whether any value in `value` is not known yet (a preview of inputs that depend on other resources). */
export function hasUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(hasUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(hasUnknown);
  return false;
}

/** The spec of a property bag (check's inputs or recorded state). Throws SpecError. */
export function specOf(props: Record<string, unknown>): MapSpec {
  return checkSpec(specInputsOf(props));
}

/** The spec of a property bag without its contents: all that ABI decisions need, at a fraction of the cost. */
export function specWithoutContents(props: Record<string, unknown>): MapSpec {
  return checkSpec({ ...specInputsOf(props, false), contents: [], contentsFile: undefined }, RECORDED);
}

/**
 * The spec of recorded state, for a read-back. Refresh may have put live
 * contents there that no longer check as inputs (a maps-of-maps slot read
 * back as "map_id:<n>"); the ABI and policy still matter, so such contents
 * are dropped rather than failing the operation. A contents file that is
 * missing or does not check is an error naming the file: reading back
 * without it would turn the resource into inline contents.
 */
export function recordedSpecOf(props: Record<string, unknown>): MapSpec {
  const inputs = specInputsOf(props);
  try {
    return checkSpec(inputs, RECORDED);
  } catch (error) {
    if (!(error instanceof SpecError)) throw error;
    if (inputs.contentsFile !== undefined && error.failures.some((failure) => /^contents(File|\[|$)/.test(failure.path))) {
      throw new Error(
        `${String(inputs.pinPath)}: cannot compare the map with its contentsFile ${String(inputs.contentsFile)}:\n${error.message}\n` +
        "the state is left as it was: restore or fix the file, then refresh again",
      );
    }
    if (!error.failures.every((failure) => /^contents(\[|$)/.test(failure.path))) throw error;
    return checkSpec({ ...inputs, contents: [] }, RECORDED);
  }
}

/**
 * The canonical form of checked inputs: defaults filled in, contents in
 * canonical notation and order, keyed by key where entries have keys (see
 * keyed.ts) (or, with contentsFile, the file's name and
 * digest). Check returns it and read-back produces the same form, so the
 * engine's own old-vs-new diff shows only real changes.
 */
export function canonicalInputs(spec: MapSpec, contents?: unknown): Record<string, unknown> {
  const inputs: Record<string, unknown> = {
    pinPath: spec.pinPath,
    mapType: spec.mapType,
    keySize: spec.keySize,
    valueSize: spec.valueSize,
    maxEntries: spec.maxEntries,
    flags: spec.flags,
    contentsPolicy: spec.contentsPolicy,
    freeze: spec.freeze,
    ifExists: spec.ifExists,
  };
  if (spec.contentsFile !== undefined) {
    // File mode: the state keeps the file's name and digest, not its entries.
    inputs.contentsFile = spec.contentsFile;
    inputs[FILE_DIGEST_PROPERTY] = declaredDigest(spec);
  } else {
    // Decoding every entry is the costly part; callers that hold the
    // canonical contents already pass them.
    inputs.contents = keyedForm(spec.mapType, contents ?? canonicalContents(spec));
  }
  if (spec.name) inputs.name = spec.name;
  if (spec.keyType !== null) inputs.keyType = spec.keyType;
  if (spec.valueType !== null) inputs.valueType = spec.valueType;
  if (spec.btf !== undefined) inputs.btf = spec.btf;
  if (spec.innerMap) inputs.innerMap = spec.innerMap;
  if (spec.permissions) inputs.permissions = spec.permissions;
  if (spec.numaNode !== undefined) inputs.numaNode = spec.numaNode;
  if (spec.mapExtra) inputs.mapExtra = spec.mapExtra;
  return inputs;
}

/** Whether a spec's managed keys are recorded in the state: a contents file of a keyed map in merge mode. */
function recordsFileKeys(spec: MapSpec): boolean {
  return spec.contentsFile !== undefined && spec.contentsPolicy === "merge" && spec.keyType !== null;
}

/**
 * The outputs of a create or update: the canonical inputs, the observation,
 * the managed keys where recorded, and the directories the provider created
 * (`earlier`: those recorded before this operation, kept).
 */
export function stateOf(
  spec: MapSpec, observation: MapObservation, contents?: unknown, earlier: Record<string, unknown> = {},
): Record<string, unknown> {
  const directories = [...recordedDirectories(earlier), ...(observation.createdDirectories ?? [])];
  return {
    ...canonicalInputs(spec, contents),
    ...outputsOf(observation),
    ...(recordsFileKeys(spec) && { [FILE_KEYS_PROPERTY]: packKeys(declaredKeys(spec), spec.keySize) }),
    ...(directories.length > 0 && { [CREATED_DIRECTORIES_PROPERTY]: [...new Set(directories)] }),
  };
}

// The declared keys of a spec (views into its packed table where it has one).
function declaredKeys(spec: MapSpec): Buffer[] {
  const table = spec.table;
  if (!table) return encodeContents(spec).map((entry) => entry.key!);
  return Array.from({ length: table.count }, (_, index) => table.keyAt(index));
}

/** The directories recorded in state as created by the provider (see CREATED_DIRECTORIES_PROPERTY). */
export function recordedDirectories(props: Record<string, unknown>): string[] {
  const recorded = props[CREATED_DIRECTORIES_PROPERTY];
  return Array.isArray(recorded) ? recorded.filter((dir): dir is string => typeof dir === "string") : [];
}

/** The adapter's records a refresh keeps: the managed keys (they change only with the declaration) and the created directories. */
export function carriedRecords(spec: MapSpec, props: Record<string, unknown>): Record<string, unknown> {
  const record = props[FILE_KEYS_PROPERTY];
  const directories = recordedDirectories(props);
  return {
    ...(recordsFileKeys(spec) && typeof record === "string" && { [FILE_KEYS_PROPERTY]: record }),
    ...(directories.length > 0 && { [CREATED_DIRECTORIES_PROPERTY]: directories }),
  };
}

/**
 * The keys the previous contents file managed, from recorded state; undefined
 * when none are recorded (inline contents, exact mode, or state written
 * before they were). A record that does not unpack is reported through
 * `warn` and ignored: no key is then deleted for having been dropped.
 */
export function recordedFileKeys(props: Record<string, unknown>, warn: (message: string) => void): Buffer[] | undefined {
  const record = props[FILE_KEYS_PROPERTY];
  if (typeof record !== "string" || props.contentsFile === undefined) return undefined;
  try {
    return unpackKeys(record, Number(props.keySize));
  } catch (error) {
    warn(`${String(props.pinPath)}: ${FILE_KEYS_PROPERTY} in the state is unusable (${(error as Error).message}); keys dropped from the contents file are not deleted this time`);
    return undefined;
  }
}

/** The output properties of an observation. */
export function outputsOf(observation: MapObservation): PinnedMapOutputs {
  return {
    pinPath: observation.pinPath,
    mapId: observation.mapId,
    abi: observation.abi,
    frozen: observation.frozen,
    entryCount: observation.entryCount,
    contentsDigest: observation.contentsDigest,
  };
}

/**
 * The live state in declared notation: the old inputs with the contents, the
 * frozen state and any drifted ABI field replaced by what the kernel reports.
 */
export function liveInputs(
  spec: MapSpec, observed: Extract<Observed, { status: "ok" }>, contents?: unknown,
): Record<string, unknown> {
  const inputs = canonicalInputs(spec, contents);
  if (spec.contentsFile !== undefined && contentsAreObservable(spec.mapType)) inputs[FILE_DIGEST_PROPERTY] = observed.observation.contentsDigest;
  inputs.freeze = observed.observation.frozen;
  for (const difference of compareAbi(spec, observed.info)) inputs[difference.field] = difference.live;
  return inputs;
}
