// The implementation behind the PinnedMap dynamic provider: Pulumi's
// check/diff/create/read/update/delete over the lifecycle core's public
// entry. The stub that Pulumi serializes into each resource's state
// (sdk/stub.ts) loads this module by package name at call time
// (`pulumi-ebpf/dynamic`, its `provider` export), so stacks always run the
// installed version.
//
// Only types from @pulumi/pulumi are used here; nothing of it is loaded at run
// time, so this module works in any dynamic-provider host.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import {
  canonicalContents, checkSpec, contentsAreObservable, createPinnedMap, declaredDigest, deletePinnedMap, describeDrift,
  observePinnedMap, PinnedMapSpecInputSchema, recreateReasons, SpecError, updatePinnedMap,
  type ContentEntry, type ContentsDrift, type MapObservation, type MapSpec,
} from "../core";
import { arrayForm, comparableContents, keyedPath } from "./keyed";
import { deltaCounts, describeNewMap, fileContentsDelta, inlineContentsDelta } from "./reports";
import {
  canonicalInputs, carriedRecords, declarationOf, declaredInputsOf, FILE_DIGEST_PROPERTY, hasUnknown, liveInputs, outputsOf,
  recordedDirectories, recordedFileKeys, recordedSpecOf, specOf, specWithoutContents, stateOf,
} from "./properties";
import { GONE, readUnmanaged } from "./unmanaged";

export type { PinnedMapOutputs } from "./properties";

// Provider messages on stderr reach the user as diagnostics (the engine
// attributes them to the stack).
function warn(message: string): void {
  process.stderr.write(`pulumi-ebpf: ${message}\n`);
}

/** Whether the declared contents differ between two canonical property bags (inline or file mode). */
function contentsChanged(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  return comparableContents(olds) !== comparableContents(news) || olds[FILE_DIGEST_PROPERTY] !== news[FILE_DIGEST_PROPERTY];
}

// How many drifted keys of each kind a file-mode refresh names.
const FILE_MODE_DRIFT_KEYS = 20;

/**
 * The live contents in declared notation, and their drift from the
 * declaration. Equal digests mean equal managed contents, so the (cheaper to
 * reuse) declared canonical contents stand for the live ones and nothing is
 * compared entry by entry.
 */
function liveContentsOf(spec: MapSpec, observation: MapObservation): { contents?: ContentEntry[]; drift?: ContentsDrift } {
  const inSync = !contentsAreObservable(spec.mapType) || observation.contentsDigest === declaredDigest(spec);
  if (inSync) return spec.contentsFile !== undefined ? {} : { contents: canonicalContents(spec) };
  // File mode keeps no entries in state; drift names at most a few keys (and decodes only those).
  const fileMode = spec.contentsFile !== undefined;
  const report = observation.driftFromDeclared(fileMode ? FILE_MODE_DRIFT_KEYS : Infinity);
  // One line per map, readable without --diff.
  if (report) warn(`${spec.pinPath}: drift: ${describeDrift(report.drift, 10, report.counts)}`);
  if (fileMode) return { ...(report && { drift: report.drift }) };
  return { contents: observation.contents, ...(report && { drift: report.drift }) };
}

/** The PinnedMap dynamic provider. Every method throws with a message naming the map and the cause. */
export const provider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<dynamic.CheckResult> {
    const declared = declaredInputsOf(news);
    // Contents written keyed go to the core as an array; failures name the key.
    const keyNames: string[] = [];
    if (declared.contents !== undefined) declared.contents = arrayForm(declared, keyNames);
    const pathOf = (path: string) => keyedPath(path, keyNames);
    // Values not known yet (a preview of inputs from other resources) are
    // checked at update time; a property the core does not know is refused now.
    const onlyNames = hasUnknown(news);
    try {
      // Every property the user gave goes to the core, which refuses the ones it does not know.
      const spec = checkSpec(declared);
      return { inputs: onlyNames ? news : { ...news, ...canonicalInputs(spec) } };
    } catch (error) {
      if (!(error instanceof SpecError)) throw error;
      const failures = onlyNames
        ? error.failures.filter((failure) => Object.hasOwn(declared, failure.path) && !Object.hasOwn(PinnedMapSpecInputSchema.shape, failure.path))
        : error.failures;
      return {
        inputs: news,
        ...(failures.length > 0 && { failures: failures.map((failure) => ({ property: pathOf(failure.path), reason: `${pathOf(failure.path)}: ${failure.rule}` })) }),
      };
    }
  },

  async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<dynamic.DiffResult> {
    if (hasUnknown(news)) return { changes: true };
    const before = declarationOf(olds);
    const after = declarationOf(news);
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])]
      .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
    if (changed.length === 0) return { changes: false };
    try {
      // The ABI needs no contents: check without them, and compare the
      // (canonical) contents as inputs.
      const reasons = recreateReasons(specWithoutContents(olds), specWithoutContents(news), contentsChanged(olds, news));
      if (reasons.length > 0) warn(`${String(after.pinPath)}: a new kernel map will be built and swapped in (${reasons.join("; ")})`);
      else if (news.contentsFile !== undefined && olds[FILE_DIGEST_PROPERTY] !== news[FILE_DIGEST_PROPERTY]) {
        // The state keeps no entries of a file: name what changes against the live map.
        const delta = fileContentsDelta(specOf(news), olds);
        if (delta) warn(`${String(after.pinPath)}: contentsFile ${String(news.contentsFile)}: ${delta}`);
      }
    } catch {
      // Old state that no longer checks: update decides.
    }
    return { changes: true, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: Record<string, unknown>): Promise<dynamic.CreateResult> {
    const spec = specOf(inputs);
    const observation = createPinnedMap(spec, warn);
    // The engine passes what check returned: its contents are canonical already.
    return { id: spec.pinPath, outs: stateOf(spec, observation, inputs.contents) };
  },

  async read(id: string, props: Record<string, unknown>): Promise<dynamic.ReadResult> {
    if (props.mapType === undefined) return readUnmanaged(typeof props.pinPath === "string" ? props.pinPath : id);
    const spec = recordedSpecOf(props);
    const ownedMapId = typeof props.mapId === "number" ? props.mapId : undefined;
    const observed = observePinnedMap(spec, ownedMapId);
    if (observed.status === "missing") return GONE;
    if (observed.status === "foreign") {
      warn(`${spec.pinPath} now holds map ${observed.liveMapId}, not map ${ownedMapId} that this resource created; it is treated as gone (pulumi up will refuse to take over the path unless ifExists is "adopt" or "replace")`);
      return GONE;
    }
    const { contents, drift } = liveContentsOf(spec, observed.observation);
    const inputs = liveInputs(spec, observed, contents);
    return {
      id,
      props: { ...inputs, ...outputsOf(observed.observation), ...(drift && { drift }), ...carriedRecords(spec, props) },
      inputs,
    };
  },

  async update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<dynamic.UpdateResult> {
    // The old contents matter only in merge mode (keys the old declaration
    // managed and the new one drops are deleted): inline, they are in the
    // state; from a file, the state records their keys (the file itself may
    // have changed since). Whether they changed at all comes from the
    // recorded inputs.
    const inlineMerge = olds.contentsPolicy === "merge" && olds.contentsFile === undefined;
    const oldSpec = inlineMerge ? recordedSpecOf(olds) : specWithoutContents(olds);
    const newSpec = specOf(news);
    const changed = contentsChanged(olds, news);
    // What the in-place delta will do, computed before the map changes.
    const rebuild = recreateReasons(oldSpec, newSpec, changed).length > 0;
    // A contents file's delta is counted by the update itself (the state has no entries to compare).
    const inlineDelta = !changed || rebuild || newSpec.contentsFile !== undefined ? "" : inlineContentsDelta(olds, news);
    const observation = updatePinnedMap(oldSpec, newSpec, Number(olds.mapId), warn, changed, recordedFileKeys(olds, warn));
    const fileDelta = changed && newSpec.contentsFile !== undefined && observation.applied ? deltaCounts(observation.applied) : "";
    const delta = inlineDelta || (fileDelta === "+0 ~0 -0" ? "" : fileDelta);
    if (observation.mapId !== Number(olds.mapId)) warn(`${newSpec.pinPath}: new kernel map: ${describeNewMap(oldSpec, newSpec)}`);
    else if (delta) warn(`${newSpec.pinPath}: applied in place: ${delta}`);
    return { outs: stateOf(newSpec, observation, news.contents, olds) };
  },

  async delete(_id: string, props: Record<string, unknown>): Promise<void> {
    deletePinnedMap(String(props.pinPath), Number(props.mapId), warn, { createdDirectories: recordedDirectories(props) });
  },
};
