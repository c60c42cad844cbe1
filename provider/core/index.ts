// The lifecycle core of pulumi-ebpf, without Pulumi: spec validation, codecs,
// ABI comparison, reconciliation, pin management and the map lifecycle.
export { checkSpec, canonicalContents, encodeContents, kernelAdjusted, SpecError, PinnedMapSpecInputSchema } from "./spec";
export type { MapSpec, PinnedMapSpecInput, ContentEntry, InnerMapSpec, EncodedEntry, HostInfo } from "./spec";
export { makeCodec, CodecSchema, CodecError, encodePerCpu, decodePerCpu, perCpuStride } from "./codecs";
export type { Codec, CodecDecl, CanonicalValue } from "./codecs";
export { MAP_TYPES, MAP_FLAGS, MAP_TYPE_NAMES, MAP_FLAG_NAMES, flagsToMask, maskToFlags, mapTypeName } from "./maptypes";
export type { MapTypeName, MapFlagName, MapTypeInfo } from "./maptypes";
export { compareAbi, describeDifferences, liveAbi } from "./abi";
export type { AbiDifference, LiveAbi } from "./abi";
export { planDelta, applyDelta, contentsDigest, presentEntries } from "./reconcile";
export type { Delta, ContentsPolicy } from "./reconcile";
export {
  buildMap, createKernelMap, dumpEntries, writeEntries, deleteKeys, readLiveState, freezeMap, openPinned,
} from "./map";
export type { KernelMapSpec, RawEntry, LiveMapState } from "./map";
export {
  checkPinLocation, ensurePinParent, pinInto, pinnedMapId, unpinIfOwned, removeStaleStagingPins, STAGING_INFIX,
} from "./pins";
export type { PinPermissions, UnpinOutcome } from "./pins";
export {
  createPinnedMap, observePinnedMap, updatePinnedMap, deletePinnedMap, recreateReasons, declaredEntries,
  declaredDigest, kernelSpecOf,
} from "./lifecycle";
export type { MapObservation, Observed, Warn } from "./lifecycle";
export { EbpfError, isEbpfError, kernelError } from "./errors";
export type { EbpfErrorKind } from "./errors";
