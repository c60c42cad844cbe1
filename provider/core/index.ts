// The public entry of the pulumi-ebpf lifecycle core (`pulumi-ebpf/provider`):
// what programs and the adapters over the core (the dynamic provider, a
// provider plugin, a fleet agent) use. It knows nothing of Pulumi. Map
// handles, pin staging, delta planning and fault hooks are internal; the
// order here is the order of docs/api.md.

// Errors.
export { EbpfError, isEbpfError } from "./errors";
export type { EbpfErrorKind } from "./errors";

// Checking a spec.
export { checkSpec, canonicalContents, encodeContents, kernelAdjusted, SpecError, PinnedMapSpecInputSchema } from "./spec";
export type { MapSpec, PinnedMapSpecInput, ContentEntry, InnerMapSpec, EncodedEntry, HostInfo, KernelView } from "./spec";

// The map lifecycle.
export {
  createPinnedMap, observePinnedMap, updatePinnedMap, deletePinnedMap, recreateReasons, declaredDigest,
} from "./lifecycle";
export type { MapObservation, Observed, Warn, DeleteOptions } from "./lifecycle";
export type { DriftReport } from "./livetable";
export type { UnpinOutcome } from "./pins";

// Maps nobody declared.
export { specOfLiveMap, contentsAreObservable } from "./livemap";
export type { LiveMapSpec } from "./livemap";

// Drift and managed keys.
export { contentsDrift, describeDrift, limitDrift } from "./drift";
export type { ContentsDrift, DriftCounts } from "./drift";
export { packKeys, unpackKeys } from "./keyset";

// ABI comparison.
export { compareAbi, describeDifferences, liveAbi } from "./abi";
export type { AbiDifference, LiveAbi } from "./abi";

// Codecs.
export { makeCodec, CodecError } from "./codecs";
export type { Codec, CodecDecl, CanonicalValue } from "./codecs";

// Map types and flags.
export { MAP_TYPES, MAP_TYPE_NAMES, MAP_FLAG_NAMES, flagsToMask, maskToFlags, valueLayout } from "./maptypes";
export type { MapTypeName, MapFlagName, MapTypeInfo } from "./maptypes";

// Pins.
export { checkPinLocation, ensurePinParent, pinnedMapId, STAGING_INFIX } from "./pins";

// BTF.
export { effectiveBtf, BTF_MAP_TYPES, SPIN_LOCK_MAP_TYPES, liveCodecsAt } from "./btfmap";
export { encodeMapBtf, deriveCodec, BtfTypes, BtfFormError } from "./btf";
export type { MapBtf } from "./btf";
