// `pulumi import ebpf:index:PinnedMap NAME ID`: the import ID names the live
// map, and optionally the codecs to express its contents with, and the read
// that adopts it into the state. Without codecs the contents are hex, as the
// kernel holds them.
import { z } from "zod";
import {
  checkSpec, observePinnedMap, PinnedMapSpecInputSchema, specOfLiveMap, SpecError,
  type MapSpec,
} from "../core";
import { canonicalInputs, liveInputs, outputsOf } from "../dynamic/properties";

/**
 * A typed import ID: a JSON object with the pin path and the codecs of the
 * contents (the spec's own `keyType` / `valueType` rules).
 */
const TypedImportIdSchema = z.strictObject({
  pinPath: z.string(),
  keyType: PinnedMapSpecInputSchema.shape.keyType,
  valueType: PinnedMapSpecInputSchema.shape.valueType,
});

/** What an import ID asks for. */
export type ImportRequest = z.infer<typeof TypedImportIdSchema>;

/**
 * Reads an import ID: an absolute pin path (`/sys/fs/bpf/app/allow`), or a
 * JSON object `{"pinPath": …, "keyType": …, "valueType": …}`. Throws an Error
 * naming the ID and the rule it breaks.
 */
export function parseImportId(id: string): ImportRequest {
  if (!id.trimStart().startsWith("{")) return { pinPath: id };
  let parsed: unknown;
  try {
    parsed = JSON.parse(id);
  } catch (error) {
    throw new Error(`import ID ${id}: not a pin path and not a JSON object (${(error as Error).message})`);
  }
  const result = TypedImportIdSchema.safeParse(parsed);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.join(".") || "(the ID)"}: ${issue.message}`);
    throw new Error(`import ID ${id}: ${issues.join("; ")} (an import ID is a pin path or {"pinPath", "keyType", "valueType"})`);
  }
  return result.data;
}

// Inputs equal to their defaults: left out of the imported inputs, so the
// generated code declares only what the map needs.
const DEFAULT_INPUTS: Record<string, unknown> = { contentsPolicy: "exact", ifExists: "fail", freeze: false, keyType: "hex", valueType: "hex" };

/** What importing a live map yields: its ID, all its properties (state), and the inputs that declare it. */
export interface ImportedMap {
  id: string;
  props: Record<string, unknown>;
  inputs: Record<string, unknown>;
}

/**
 * Reads the map an import ID names: its ABI, frozen state and contents (in
 * the ID's codecs, else hex). Undefined when nothing is pinned there. Throws
 * an Error when the ID is malformed, its codecs do not fit the map (the
 * spec's own failure text), or the map cannot be declared as a PinnedMap
 * (e.g. a type that needs BTF); EbpfError when the pin cannot be read.
 */
export function importLiveMap(id: string): ImportedMap | undefined {
  const request = parseImportId(id);
  const live = specOfLiveMap(request.pinPath);
  if (live === undefined) return undefined;
  if (live.spec === undefined) {
    throw new Error(`${request.pinPath}: map ${live.mapId} (${live.abi.mapType}) cannot be declared as a PinnedMap, so it cannot be imported`);
  }
  let spec: MapSpec = live.spec;
  if (request.keyType !== undefined || request.valueType !== undefined) {
    const { contents: _contents, ...abi } = canonicalInputs(live.spec, []);
    try {
      // A codec left out keeps the one the live map's BTF gave (canonicalInputs), not hex.
      spec = checkSpec({
        ...abi, contents: [],
        ...(request.keyType !== undefined && { keyType: request.keyType }),
        ...(request.valueType !== undefined && { valueType: request.valueType }),
      }, { pinLocation: false });
    } catch (error) {
      if (!(error instanceof SpecError)) throw error;
      throw new Error(`import ID ${id}: the codecs do not fit the live map ${live.mapId}:\n${error.message}`);
    }
  }
  const observed = observePinnedMap(spec);
  if (observed.status !== "ok") return undefined;
  const inputs = liveInputs(spec, observed, observed.observation.contents);
  const props = { ...inputs, ...outputsOf(observed.observation) };
  const declared = Object.fromEntries(Object.entries(inputs).filter(([name, value]) =>
    !(Object.hasOwn(DEFAULT_INPUTS, name) && DEFAULT_INPUTS[name] === value) && !(name === "flags" && Array.isArray(value) && value.length === 0)));
  return { id: spec.pinPath, props, inputs: declared };
}
