// The kernel's per-type rules applied to parsed inputs: sizes (filled in
// where the type implies them), max_entries, flags, map_extra, NUMA node and
// the inner map template, each failure naming the property and the rule.
// The rules themselves are data in maptypes.ts.
import { readFileSync } from "node:fs";
import type { FailureList } from "./failures";
import {
  HASH_KV_MAX, MAP_FLAGS, MAP_TYPES, UNDECLARABLE_FLAGS, flagsToMask, kernelMaxCpus, pageSize, possibleCpuCount,
  type MapFlagName, type MapTypeInfo, type MapTypeName, type SizeRule,
} from "./maptypes";

/** Host facts the rules depend on; read from /sys, /proc and the OS when omitted (tests pass them). */
export interface HostInfo {
  possibleCpus?: number;
  /** NR_CPUS, cpumap's limit. */
  kernelMaxCpus?: number;
  /** /proc/sys/kernel/perf_event_max_stack, stack_trace's frame limit. */
  perfMaxStack?: number;
  /** The page size (ringbuf sizes, arena addresses). */
  pageSize?: number;
  /**
   * Whether checkSpec inspects the pin path on this host (symlinks, bpffs,
   * directories to create; see checkPinHost). Default true: check and create
   * of new inputs. Pass false for recorded state (a refresh or destroy of a
   * map whose bpffs is gone must still run) and for checks of inputs alone.
   */
  pinLocation?: boolean;
}

function perfMaxStack(): number {
  try {
    return Number(readFileSync("/proc/sys/kernel/perf_event_max_stack", "utf8").trim()) || 127;
  } catch {
    return 127;
  }
}

/** Host facts, read on first use unless given. */
export interface Host {
  cpus(): number;
  nrCpus(): number;
  maxStack(): number;
  pageSize(): number;
}

/** The host facts of `info`, falling back to the running host's. */
export function hostOf(info: HostInfo): Host {
  return {
    cpus: () => info.possibleCpus ?? possibleCpuCount(),
    nrCpus: () => info.kernelMaxCpus ?? kernelMaxCpus(),
    maxStack: () => info.perfMaxStack ?? perfMaxStack(),
    pageSize: () => info.pageSize ?? pageSize(),
  };
}

/** The shape of a map or inner template as declared (sizes may be implied). */
export interface Shape {
  mapType: MapTypeName;
  keySize?: number;
  valueSize?: number;
  maxEntries?: number;
  flags?: MapFlagName[];
}

/** A shape after the rules: each size undefined where it failed its rule (no codec is built for it). */
export interface ResolvedShape {
  info: MapTypeInfo;
  keySize?: number;
  valueSize?: number;
  maxEntries?: number;
  flags: MapFlagName[];
}

/** Which properties were given at all (a given-but-invalid one is not also "required"), and where they live. */
export interface ShapeContext {
  /** The property path prefix: "" for the map, "innerMap" for its template. */
  base: string;
  given: ReadonlySet<string>;
  numaNode: number | undefined;
  host: Host;
  failures: FailureList;
}

function describe(rule: SizeRule): string {
  if ("fixed" in rule) return `exactly ${rule.fixed}`;
  if ("oneOf" in rule) return rule.oneOf.join(" or ");
  const range = rule.max === undefined ? `≥ ${rule.min}` : `${rule.min}..${rule.max}`;
  return rule.multipleOf ? `${range}, a multiple of ${rule.multipleOf}` : range;
}

function fitsRule(size: number, rule: SizeRule): boolean {
  if ("fixed" in rule) return size === rule.fixed;
  if ("oneOf" in rule) return rule.oneOf.includes(size);
  return size >= rule.min && (rule.max === undefined || size <= rule.max) && (!rule.multipleOf || size % rule.multipleOf === 0);
}

// A key or value size: the declared one if it fits the type's rule, else the
// one the rule implies; undefined (with a failure) when neither.
function resolveSize(shape: Shape, which: "keySize" | "valueSize", context: ShapeContext): number | undefined {
  const rule = MAP_TYPES[shape.mapType][which === "keySize" ? "key" : "value"];
  const declared = shape[which];
  const path = at(context, which);
  if (!rule) return declared;
  if (declared === undefined) {
    if ("fixed" in rule) return rule.fixed;
    if ("oneOf" in rule) return rule.default;
    if (!context.given.has(path)) context.failures.add(path, `is required for ${shape.mapType} (${describe(rule)})`);
    return undefined;
  }
  if (fitsRule(declared, rule)) return declared;
  context.failures.add(path, `${shape.mapType} needs ${which === "keySize" ? "key size" : "value size"} ${describe(rule)}, not ${declared}`);
  return undefined;
}

const at = (context: ShapeContext, property: string): string => (context.base ? `${context.base}.${property}` : property);

// max_entries: declared and within the type's bounds, or the possible CPU
// count where the type defaults to it (perf_event_array).
function resolveMaxEntries(shape: Shape, context: ShapeContext): number | undefined {
  const type = shape.mapType;
  const rule = MAP_TYPES[type].entries!;
  const path = at(context, "maxEntries");
  const declared = shape.maxEntries;
  const refuse = (why: string) => {
    context.failures.add(path, `${type} needs maxEntries ${why}, not ${declared}`);
    return undefined;
  };
  if (declared === undefined) {
    if (rule.defaultCpus) return context.host.cpus();
    if (!context.given.has(path)) context.failures.add(path, `is required for ${type}`);
    return undefined;
  }
  const min = rule.min === "page" ? context.host.pageSize() : rule.min;
  const max = rule.max === "cpus" ? context.host.nrCpus() : rule.max;
  if (declared < min) return refuse(`≥ ${min}`);
  if (max !== undefined && declared > max) return refuse(`≤ ${max}${rule.max === "cpus" ? " (the kernel's NR_CPUS)" : ""}`);
  const page = context.host.pageSize();
  if (rule.pagePowerOfTwo && (declared % page !== 0 || (declared & (declared - 1)) !== 0)) {
    return refuse(`a power of two and a multiple of the page size (${page})`);
  }
  return declared;
}

// Why a type does not accept a flag it does not list.
function whyNotAccepted(type: MapTypeName, flag: MapFlagName): string {
  if (flag === "no_prealloc" && type.startsWith("lru_")) return " (LRU maps are always preallocated: the kernel answers ENOTSUPP)";
  if (flag === "no_prealloc") return " (it is always preallocated)";
  if (MAP_TYPES[type].kernelFlags?.includes(flag)) return " (the kernel sets it by itself and refuses it declared)";
  return "";
}

// The declared flags, each accepted by the type, plus numa_node when a NUMA
// node is set; returned in bit order.
function resolveFlags(shape: Shape, context: ShapeContext): MapFlagName[] {
  const type = shape.mapType;
  const info = MAP_TYPES[type];
  const declared = [...new Set(shape.flags ?? [])];
  const accepted = new Set<MapFlagName>(info.flags ?? []);
  (shape.flags ?? []).forEach((flag, index) => {
    const path = at(context, `flags[${index}]`);
    const undeclarable = UNDECLARABLE_FLAGS[flag];
    if (undeclarable) context.failures.add(path, undeclarable);
    else if (flag === "numa_node") {
      if (context.numaNode === undefined) context.failures.add(path, "numa_node is implied by numaNode; set numaNode instead");
    } else if (!accepted.has(flag)) {
      const alternatives = accepted.size ? `; it accepts ${[...accepted].join(", ")}` : "";
      context.failures.add(path, `${type} does not accept ${flag}${whyNotAccepted(type, flag)}${alternatives}`);
    }
  });
  for (const flag of info.requiredFlags ?? []) {
    if (!declared.includes(flag)) context.failures.add(at(context, "flags"), `${type} requires ${flag}`);
  }
  if (declared.includes("rdonly_prog") && declared.includes("wronly_prog")) {
    context.failures.add(at(context, "flags"), "rdonly_prog and wronly_prog exclude each other");
  }
  const flags: MapFlagName[] = declared.filter((flag) => flag !== "numa_node");
  if (context.numaNode !== undefined) flags.push("numa_node");
  return flags.sort((a, b) => MAP_FLAGS[a] - MAP_FLAGS[b]);
}

// The hash family's bound on key + value. Each is at least 1, so one alone
// beyond HASH_KV_MAX - 1 fails too, even when the other is missing or failed.
function checkKeyPlusValue(type: MapTypeName, resolved: ResolvedShape, context: ShapeContext): void {
  const { keySize, valueSize } = resolved;
  if (keySize !== undefined && valueSize !== undefined) {
    if (keySize + valueSize <= HASH_KV_MAX) return;
    context.failures.add(at(context, "valueSize"), `${type} needs keySize + valueSize ≤ ${HASH_KV_MAX}, not ${keySize + valueSize}`);
  } else {
    const [property, size] = keySize !== undefined ? ["keySize", keySize] : ["valueSize", valueSize];
    if (size === undefined || size < HASH_KV_MAX) return;
    context.failures.add(at(context, property), `${type} needs ${property} ≤ ${HASH_KV_MAX - 1} (keySize + valueSize ≤ ${HASH_KV_MAX}), not ${size}`);
  }
  resolved.keySize = undefined;
  resolved.valueSize = undefined;
}

// Rules that tie sizes to other facts: the hash family's key + value bound,
// and stack_trace's frame size and count. A size that breaks one is dropped
// (undefined), so that nothing is encoded at a size the kernel refuses.
function checkCombinedSizes(shape: Shape, resolved: ResolvedShape, context: ShapeContext): void {
  const type = shape.mapType;
  if (resolved.info.kvLimit) checkKeyPlusValue(type, resolved, context);
  const { valueSize } = resolved;
  if (valueSize === undefined) return;
  if (type === "stack_trace") {
    const frame = resolved.flags.includes("stack_build_id") ? 32 : 8;
    const max = frame * context.host.maxStack();
    if (valueSize % frame !== 0 || valueSize > max) {
      const what = frame === 32 ? " (struct bpf_stack_build_id, with stack_build_id)" : " (u64 addresses)";
      context.failures.add(at(context, "valueSize"), `stack_trace needs value size a multiple of ${frame}${what} up to ${max} (perf_event_max_stack frames), not ${valueSize}`);
      resolved.valueSize = undefined;
    }
  }
}

/**
 * Applies the per-type kernel rules to a map or inner template: fills in
 * implied sizes and max_entries, checks declared ones, resolves flags.
 * Returns undefined (with a failure) for an unsupported type.
 */
export function checkShape(shape: Shape, context: ShapeContext): ResolvedShape | undefined {
  const info = MAP_TYPES[shape.mapType];
  if (info.unsupported) {
    context.failures.add(at(context, "mapType"), `${shape.mapType} is not supported: ${info.unsupported}`);
    return undefined;
  }
  const resolved: ResolvedShape = {
    info,
    keySize: resolveSize(shape, "keySize", context),
    valueSize: resolveSize(shape, "valueSize", context),
    maxEntries: resolveMaxEntries(shape, context),
    flags: resolveFlags(shape, context),
  };
  checkCombinedSizes(shape, resolved, context);
  return resolved;
}

/** Checks numaNode and mapExtra against the type; returns mapExtra with its default (0). */
export function checkNumaAndExtra(type: MapTypeName, numaNode: number | undefined, mapExtra: number | undefined, context: ShapeContext): number {
  const info = MAP_TYPES[type];
  const { failures } = context;
  if (numaNode !== undefined && !info.numa) failures.add("numaNode", `${type} does not take a NUMA node (the kernel answers EINVAL)`);
  const extra = mapExtra ?? 0;
  if (extra === 0) return extra;
  const page = context.host.pageSize();
  if (info.mapExtra === "bloom_hashes" && extra > 15) failures.add("mapExtra", `bloom_filter takes 0..15 hash functions (0 = kernel default 5), not ${extra}`);
  else if (info.mapExtra === "arena_address" && extra % page !== 0) failures.add("mapExtra", `arena needs a page-aligned address (a multiple of ${page})`);
  else if (!info.mapExtra) failures.add("mapExtra", `only bloom_filter (hash count) and arena (address) take mapExtra; ${type} needs 0`);
  return extra;
}

/** What the kernel reports for a map created from a spec (BPF_OBJ_GET_INFO_BY_FD). */
export interface KernelView {
  typeId: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags: number;
  mapExtra: number;
}

/**
 * Returns what the kernel will report for a map created from a checked spec
 * (or an inner template), after its own adjustments (measured on 6.18):
 * devmap/devmap_hash gain rdonly_prog; no_common_lru rounds max_entries up to
 * a multiple of the possible CPUs; rdonly/wronly would be dropped (they are
 * refused at check). perf_event_array's CPU default is already in the spec.
 */
export function kernelAdjusted(
  spec: { mapType: MapTypeName; keySize: number; valueSize: number; maxEntries: number; flags: readonly MapFlagName[]; mapExtra?: number },
  hostInfo: HostInfo = {},
): KernelView {
  const info: MapTypeInfo = MAP_TYPES[spec.mapType];
  const declared = flagsToMask(spec.flags) & ~(MAP_FLAGS.rdonly | MAP_FLAGS.wronly);
  const mapFlags = (declared | flagsToMask(info.kernelFlags ?? [])) >>> 0;
  let maxEntries = spec.maxEntries;
  if (spec.flags.includes("no_common_lru")) {
    const cpus = hostOf(hostInfo).cpus();
    maxEntries = Math.ceil(maxEntries / cpus) * cpus;
  }
  return { typeId: info.id, keySize: spec.keySize, valueSize: spec.valueSize, maxEntries, mapFlags, mapExtra: spec.mapExtra ?? 0 };
}
