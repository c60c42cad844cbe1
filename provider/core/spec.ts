// The spec API in one place: checkSpec and what it returns, the input
// schemas, the per-type rules and the contents helpers, re-exported from
// the modules that hold them (checked.ts, schema.ts, rules.ts, contents.ts).
export { SpecError, checkSpec, canonicalContents, encodeContents, checkedPartsOf } from "./checked";
export type { MapSpec } from "./checked";
export {
  PinnedMapSpecInputSchema, ContentEntrySchema, InnerMapSchema, PermissionsSchema, MapExtraSchema, MapNameSchema,
  MapTypeSchema, FlagsSchema, closestName,
} from "./schema";
export type { PinnedMapSpecInput, ContentEntry, InnerMapSpec } from "./schema";
export { kernelAdjusted } from "./rules";
export type { HostInfo, KernelView } from "./rules";
export { CONTENTS_FILE_MAX_BYTES, CONTENTS_MAX_BYTES, toNotation } from "./contents";
export type { EncodedEntry, SpecCodecs } from "./contents";
export { InputError, FailureList, MAX_REPORTED_FAILURES } from "./failures";
export type { Failure } from "./failures";
