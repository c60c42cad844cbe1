// ABI comparison: a declared spec against a live map, field by field, after
// the kernel's own adjustments, so a map the kernel built from a spec always
// compares equal to it (cilium/ebpf's MapSpec.Compatible, with reasons).
import type { MapInfo } from "../../native";
import { compareBtf } from "./btfmap";
import type { CodecDecl } from "./codecs";
import { maskToFlags, mapTypeName } from "./maptypes";
import { kernelAdjusted, type HostInfo, type MapSpec } from "./spec";

/** One field where the live map differs from the declared spec. */
export interface AbiDifference {
  field: "mapType" | "keySize" | "valueSize" | "maxEntries" | "flags" | "mapExtra" | "btf" | "keyType" | "valueType";
  /** btf: a boolean; keyType / valueType: the declared codec and the one the live BTF expresses. */
  declared: string | number | string[] | boolean | CodecDecl;
  live: string | number | string[] | boolean | CodecDecl;
  /** Where the difference is and both sides, for btf, keyType and valueType (e.g. `valueType.struct[1]: declared field …, live field …`). */
  detail?: string;
}

/** The ABI of a live map in declared notation (type and flag names). */
export interface LiveAbi {
  mapType: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: string[];
  mapExtra: string;
}

/** Expresses a map's kernel info in declared notation; unknown types read as "type_<n>". */
export function liveAbi(info: MapInfo): LiveAbi {
  return {
    mapType: mapTypeName(info.type) ?? `type_${info.type}`,
    keySize: info.keySize,
    valueSize: info.valueSize,
    maxEntries: info.maxEntries,
    flags: maskToFlags(info.mapFlags),
    mapExtra: info.mapExtra.toString(),
  };
}

/**
 * Compares `spec` with a live map's `info`. Returns every differing field with
 * the declared value (as the kernel would report it) and the live one; an
 * empty list means compatible. BTF is part of the ABI (see compareBtf in
 * btfmap.ts): its presence when `btf` is declared, and where both sides have
 * it, the key and value shapes. Reading a live map's BTF needs
 * CAP_SYS_ADMIN; throws EbpfError when it cannot be read.
 */
export function compareAbi(spec: MapSpec, info: MapInfo, hostInfo: HostInfo = {}): AbiDifference[] {
  const expected = kernelAdjusted(spec, hostInfo);
  const live = liveAbi(info);
  const differences: AbiDifference[] = [];
  if (expected.typeId !== info.type) differences.push({ field: "mapType", declared: spec.mapType, live: live.mapType });
  if (expected.keySize !== info.keySize) differences.push({ field: "keySize", declared: expected.keySize, live: info.keySize });
  if (expected.valueSize !== info.valueSize) differences.push({ field: "valueSize", declared: expected.valueSize, live: info.valueSize });
  if (expected.maxEntries !== info.maxEntries) differences.push({ field: "maxEntries", declared: expected.maxEntries, live: info.maxEntries });
  if (expected.mapFlags >>> 0 !== info.mapFlags >>> 0) {
    differences.push({ field: "flags", declared: maskToFlags(expected.mapFlags), live: live.flags });
  }
  if (BigInt(expected.mapExtra) !== info.mapExtra) {
    differences.push({ field: "mapExtra", declared: String(expected.mapExtra), live: live.mapExtra });
  }
  // Shapes only matter between maps of the same sizes; a size difference already says it.
  if (differences.length === 0) differences.push(...compareBtf(spec, info, spec.pinPath));
  return differences;
}

/** "maxEntries: declared 32, live 16; flags: declared [no_prealloc], live []" */
export function describeDifferences(differences: AbiDifference[]): string {
  const show = (value: AbiDifference["live"]) => (Array.isArray(value) ? `[${value.join(", ")}]` : String(value));
  return differences.map((d) => d.detail ?? `${d.field}: declared ${show(d.declared as AbiDifference["live"])}, live ${show(d.live)}`).join("; ");
}
