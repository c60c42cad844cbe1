// What a live map says about itself, for maps nobody declared: the spec that
// describes it (so it can be observed like a managed one), and whether its
// contents can be read back at all.
import { liveAbi, type LiveAbi } from "./abi";
import { liveCodecs, readLiveBtf } from "./btfmap";
import { isEbpfError } from "./errors";
import { isDumpable, openPinned } from "./map";
import { MAP_TYPES, mapTypeName, maskToFlags, type MapFlagName, type MapTypeName } from "./maptypes";
import { checkSpec, SpecError, type MapSpec } from "./spec";
import type { CodecDecl } from "./codecs";
import type { MapInfo } from "../../native";

/** A live map as specOfLiveMap found it. */
export interface LiveMapSpec {
  /** The kernel map ID. */
  mapId: number;
  /** Its ABI in declared notation. */
  abi: LiveAbi;
  /**
   * A spec that describes it ("exact" policy, no contents), to observe it
   * with: codecs derived from the map's BTF where it has BTF (ints, structs
   * with their field names, other arrays as hex), else hex; undefined when no
   * spec can express it (e.g. a type that needs BTF).
   */
  spec?: MapSpec;
}

/**
 * Reads the ABI of the map pinned at `pinPath` (read-only) and rebuilds a
 * spec from it: flags the kernel adds by itself are left out, name and
 * mapExtra are kept, and where the map has BTF its key and value codecs are
 * derived from it (see liveCodecs; BTF that cannot be read or expressed
 * leaves hex). Returns undefined when nothing is pinned there. Throws
 * EbpfError ("Permission", "Kernel", …) when the pin cannot be opened.
 */
export function specOfLiveMap(pinPath: string): LiveMapSpec | undefined {
  let info;
  try {
    const map = openPinned(pinPath, "ro");
    info = map.info;
    map.close();
  } catch (error) {
    if (isEbpfError(error, "PinNotFound")) return undefined;
    throw error;
  }
  const abi = liveAbi(info);
  const typeName = mapTypeName(info.type);
  if (typeName === undefined) return { mapId: info.id, abi };
  const kernelFlags = new Set<string>(MAP_TYPES[typeName].kernelFlags ?? []);
  const derived = derivedCodecsOf(pinPath, info, typeName);
  try {
    const base = {
      pinPath,
      mapType: typeName,
      keySize: info.keySize,
      valueSize: info.valueSize,
      maxEntries: info.maxEntries,
      flags: maskToFlags(info.mapFlags).filter((flag) => !kernelFlags.has(flag)) as MapFlagName[],
      contentsPolicy: "exact",
      ...(info.name && { name: info.name }),
      ...(Number(info.mapExtra) && { mapExtra: Number(info.mapExtra) }),
    };
    return { mapId: info.id, abi, spec: specWithCodecs(base, derived) };
  } catch (error) {
    if (!(error instanceof SpecError)) throw error;
    return { mapId: info.id, abi };
  }
}

// The codecs a live map's BTF expresses, as inputs; none without (readable) BTF.
function derivedCodecsOf(pinPath: string, info: MapInfo, mapType: MapTypeName): { keyType?: CodecDecl; valueType?: CodecDecl } {
  try {
    const btf = readLiveBtf(info, pinPath);
    if (btf === undefined || MAP_TYPES[mapType].mapInMap) return {};
    const codecs = liveCodecs(btf, mapType);
    return { ...(codecs.keyType !== null && info.keySize > 0 && { keyType: codecs.keyType }), valueType: codecs.valueType };
  } catch (error) {
    if (isEbpfError(error)) return {};
    throw error;
  }
}

// The spec of `base` with the derived codecs, or with hex where they do not
// check (BTF sizes the map's do not match): a read never fails for them.
function specWithCodecs(base: Record<string, unknown>, derived: { keyType?: CodecDecl; valueType?: CodecDecl }): MapSpec {
  if (derived.keyType !== undefined || derived.valueType !== undefined) {
    try {
      return checkSpec({ ...base, ...derived, btf: undefined });
    } catch (error) {
      if (!(error instanceof SpecError)) throw error;
    }
  }
  return checkSpec(base);
}

/**
 * Whether observing a map of this type reads its contents back. Queue, stack
 * and bloom filter cannot be read without consuming them, and types whose
 * contents cannot be declared are not read: for those an observation reports
 * the declared contents.
 */
export function contentsAreObservable(mapType: MapTypeName): boolean {
  return isDumpable(MAP_TYPES[mapType].id);
}
