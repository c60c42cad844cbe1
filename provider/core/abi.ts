// ABI comparison: a declared spec against a live map, field by field, after
// the kernel's own adjustments, so a map the kernel built from a spec always
// compares equal to it (cilium/ebpf's MapSpec.Compatible, with reasons).
import type { MapInfo } from "../../native";
import { maskToFlags, mapTypeName } from "./maptypes";
import { kernelAdjusted, type HostInfo, type MapSpec } from "./spec";

/** One field where the live map differs from the declared spec. */
export interface AbiDifference {
  field: "mapType" | "keySize" | "valueSize" | "maxEntries" | "flags" | "mapExtra";
  declared: string | number | string[];
  live: string | number | string[];
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
 * empty list means compatible.
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
  return differences;
}

/** "maxEntries: declared 32, live 16; flags: declared [no_prealloc], live []" */
export function describeDifferences(differences: AbiDifference[]): string {
  const show = (value: AbiDifference["live"]) => (Array.isArray(value) ? `[${value.join(", ")}]` : String(value));
  return differences.map((d) => `${d.field}: declared ${show(d.declared)}, live ${show(d.live)}`).join("; ");
}
