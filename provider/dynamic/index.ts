// The implementation behind the PinnedMap dynamic provider: Pulumi's
// check/diff/create/read/update/delete over the lifecycle core. The stub that
// Pulumi serializes into each resource's state (sdk/stub.ts) loads this module
// by package name at call time, so stacks always run the installed version.
//
// Only types from @pulumi/pulumi are used here; nothing of it is loaded at run
// time, so this module works in any dynamic-provider host.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { liveAbi, type LiveAbi, compareAbi } from "../core/abi";
import { isEbpfError } from "../core/errors";
import { contentsDrift, type ContentsDrift } from "../core/drift";
import {
  createPinnedMap, declaredDigest, deletePinnedMap, observePinnedMap, recreateReasons, updatePinnedMap, type MapObservation,
} from "../core/lifecycle";
import { isDumpable } from "../core/map";
import { MAP_TYPES, mapTypeName, maskToFlags, type MapFlagName } from "../core/maptypes";
import { canonicalContents, checkSpec, PinnedMapSpecInputSchema, SpecError, type ContentEntry, type MapSpec } from "../core/spec";
import { openPinnedMap, type MapInfo } from "../../native";

/** The output properties a PinnedMap adds to its inputs. */
export interface PinnedMapOutputs {
  pinPath: string;
  mapId: number;
  abi: LiveAbi;
  frozen: boolean;
  entryCount: number;
  contentsDigest: string;
}

const INPUT_KEYS = Object.keys(PinnedMapSpecInputSchema.shape) as (keyof typeof PinnedMapSpecInputSchema.shape)[];

// The engine's marker for values not known during preview.
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function hasUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(hasUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(hasUnknown);
  return false;
}

/** The declared inputs among a property bag (state holds inputs and outputs side by side). */
function inputsOf(props: Record<string, unknown>): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const key of INPUT_KEYS) if (props[key] !== undefined) inputs[key] = props[key];
  return inputs;
}

/**
 * The canonical form of checked inputs: defaults filled in, contents in
 * canonical notation and order. Check returns it and read-back produces the
 * same form, so the engine's own old-vs-new diff shows only real changes.
 */
export function canonicalInputs(spec: MapSpec, contents?: ContentEntry[]): Record<string, unknown> {
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
    inputs.contentsFileDigest = declaredDigest(spec);
  } else {
    // Decoding every entry is the costly part; callers that hold the
    // canonical contents already pass them.
    inputs.contents = contents ?? canonicalContents(spec);
  }
  if (spec.name) inputs.name = spec.name;
  if (spec.keyType !== null) inputs.keyType = spec.keyType;
  if (spec.valueType !== null) inputs.valueType = spec.valueType;
  if (spec.innerMap) inputs.innerMap = spec.innerMap;
  if (spec.permissions) inputs.permissions = spec.permissions;
  if (spec.numaNode !== undefined) inputs.numaNode = spec.numaNode;
  if (spec.mapExtra) inputs.mapExtra = spec.mapExtra;
  return inputs;
}

function outputsOf(observation: MapObservation): PinnedMapOutputs {
  return {
    pinPath: observation.pinPath,
    mapId: observation.mapId,
    abi: observation.abi,
    frozen: observation.frozen,
    entryCount: observation.entryCount,
    contentsDigest: observation.contentsDigest,
  };
}

// Provider messages on stderr reach the user as diagnostics (the engine
// attributes them to the stack).
function warn(message: string): void {
  process.stderr.write(`pulumi-ebpf: ${message}\n`);
}

/** Whether the declared contents differ between two canonical input bags (inline or file mode). */
function contentsChanged(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  return JSON.stringify(olds.contents) !== JSON.stringify(news.contents) || olds.contentsFileDigest !== news.contentsFileDigest;
}

function checked(props: Record<string, unknown>): MapSpec {
  return checkSpec(inputsOf(props));
}

/** The spec of a property bag without its contents: all that ABI decisions need, at a fraction of the cost. */
function withoutContents(props: Record<string, unknown>): MapSpec {
  return checkSpec({ ...inputsOf(props), contents: [], contentsFile: undefined, contentsFileDigest: undefined });
}

/**
 * The spec of recorded state. Refresh may have put live contents there that
 * no longer check as inputs (a maps-of-maps slot read back as "map_id:<n>");
 * the ABI and policy still matter, so such contents are dropped rather than
 * failing the operation.
 */
function checkedState(props: Record<string, unknown>): MapSpec {
  try {
    return checked(props);
  } catch (error) {
    if (!(error instanceof SpecError) || !error.failures.every((failure) => failure.path.startsWith("contents"))) throw error;
    return checkSpec({ ...inputsOf(props), contents: [], contentsFile: undefined });
  }
}

/**
 * The live state in declared notation: the old inputs with the contents, the
 * frozen state and any drifted ABI field replaced by what the kernel reports.
 */
function liveInputs(spec: MapSpec, observation: MapObservation, info: MapInfo, contents?: ContentEntry[]): Record<string, unknown> {
  const inputs = canonicalInputs(spec, contents);
  if (spec.contentsFile !== undefined && isDumpable(MAP_TYPES[spec.mapType].id)) inputs.contentsFileDigest = observation.contentsDigest;
  inputs.freeze = observation.frozen;
  for (const difference of compareAbi(spec, info)) inputs[difference.field] = difference.live;
  return inputs;
}

/**
 * The live contents in declared notation, and their drift from the
 * declaration. Equal digests mean equal managed contents, so the (cheaper to
 * reuse) declared canonical contents stand for the live ones and nothing is
 * compared entry by entry.
 */
function liveContentsOf(spec: MapSpec, observation: MapObservation): { contents?: ContentEntry[]; drift?: ContentsDrift } {
  const inSync = !isDumpable(MAP_TYPES[spec.mapType].id) || observation.contentsDigest === declaredDigest(spec);
  if (spec.contentsFile !== undefined) {
    // File mode keeps no entries in state; drift names at most a few keys.
    return inSync ? {} : { drift: contentsDrift(canonicalContents(spec), observation.contents, FILE_MODE_DRIFT_KEYS) };
  }
  if (inSync) return { contents: canonicalContents(spec) };
  return { contents: observation.contents, drift: contentsDrift(canonicalContents(spec), observation.contents) };
}

// How many drifted keys of each kind a file-mode refresh names.
const FILE_MODE_DRIFT_KEYS = 20;

/** Reads a map this stack does not manage (PinnedMap.get): its ABI and, where decodable as hex, contents. */
function readUnmanaged(pinPath: string): dynamic.ReadResult {
  let info;
  try {
    const map = openPinnedMap(pinPath, "ro");
    info = map.info;
    map.close();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { id: undefined, props: {} } as unknown as dynamic.ReadResult;
    throw error;
  }
  const abi = liveAbi(info);
  const typeName = mapTypeName(info.type);
  const kernelFlags = new Set<string>(typeName ? MAP_TYPES[typeName].kernelFlags ?? [] : []);
  let props: Record<string, unknown> = { pinPath, abi, mapId: info.id };
  try {
    const spec = checkSpec({
      pinPath,
      mapType: abi.mapType,
      keySize: info.keySize,
      valueSize: info.valueSize,
      maxEntries: info.maxEntries,
      flags: maskToFlags(info.mapFlags).filter((flag) => !kernelFlags.has(flag)) as MapFlagName[],
      contentsPolicy: "exact",
      ...(info.name && { name: info.name }),
      ...(Number(info.mapExtra) && { mapExtra: Number(info.mapExtra) }),
    });
    const observed = observePinnedMap(spec);
    if (observed.status === "ok") {
      props = { ...liveInputs(spec, observed.observation, observed.info, observed.observation.contents), ...outputsOf(observed.observation) };
    }
  } catch (error) {
    // A map we cannot express as a spec (e.g. a BTF-only type) still reports its ABI.
    if (!(error instanceof SpecError) && !isEbpfError(error)) throw error;
  }
  return { id: pinPath, props };
}

/** The PinnedMap dynamic provider. Every method throws with a message naming the map and the cause. */
export const provider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<dynamic.CheckResult> {
    if (hasUnknown(news)) return { inputs: news };
    try {
      return { inputs: { ...news, ...canonicalInputs(checkSpec(inputsOf(news))) } };
    } catch (error) {
      if (!(error instanceof SpecError)) throw error;
      return {
        inputs: news,
        failures: error.failures.map((failure) => ({ property: failure.path, reason: `${failure.path}: ${failure.rule}` })),
      };
    }
  },

  async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<dynamic.DiffResult> {
    if (hasUnknown(news)) return { changes: true };
    const before = inputsOf(olds);
    const after = inputsOf(news);
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])]
      .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
    if (changed.length === 0) return { changes: false };
    try {
      // The ABI needs no contents: check without them, and compare the
      // (canonical) contents as inputs.
      const reasons = recreateReasons(withoutContents(olds), withoutContents(news), contentsChanged(olds, news));
      if (reasons.length > 0) warn(`${String(after.pinPath)}: a new kernel map will be built and swapped in (${reasons.join("; ")})`);
    } catch {
      // Old state that no longer checks: update decides.
    }
    return { changes: true, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: Record<string, unknown>): Promise<dynamic.CreateResult> {
    const spec = checked(inputs);
    const observation = createPinnedMap(spec, warn);
    // The engine passes what check returned: its contents are canonical already.
    return { id: spec.pinPath, outs: { ...canonicalInputs(spec, inputs.contents as ContentEntry[]), ...outputsOf(observation) } };
  },

  async read(id: string, props: Record<string, unknown>): Promise<dynamic.ReadResult> {
    if (props.mapType === undefined) return readUnmanaged(typeof props.pinPath === "string" ? props.pinPath : id);
    const spec = checkedState(props);
    const ownedMapId = typeof props.mapId === "number" ? props.mapId : undefined;
    const observed = observePinnedMap(spec, ownedMapId);
    if (observed.status === "missing") {
      return { id: undefined, props: {} } as unknown as dynamic.ReadResult;
    }
    if (observed.status === "foreign") {
      warn(`${spec.pinPath} now holds map ${observed.liveMapId}, not map ${ownedMapId} that this resource created; it is treated as gone (pulumi up will refuse to take over the path unless ifExists is "adopt" or "replace")`);
      return { id: undefined, props: {} } as unknown as dynamic.ReadResult;
    }
    const { contents, drift } = liveContentsOf(spec, observed.observation);
    const inputs = liveInputs(spec, observed.observation, observed.info, contents);
    return { id, props: { ...inputs, ...outputsOf(observed.observation), ...(drift && { drift }) }, inputs };
  },

  async update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<dynamic.UpdateResult> {
    // The old contents matter only in merge mode (keys the old declaration
    // managed and the new one drops are deleted); whether they changed at all
    // comes from the recorded inputs.
    const oldSpec = olds.contentsPolicy === "merge" ? checkedState(olds) : withoutContents(olds);
    const newSpec = checked(news);
    const observation = updatePinnedMap(oldSpec, newSpec, Number(olds.mapId), warn, contentsChanged(olds, news));
    return { outs: { ...canonicalInputs(newSpec, news.contents as ContentEntry[]), ...outputsOf(observation) } };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    deletePinnedMap(String(props.pinPath), Number(props.mapId), warn);
  },
};
