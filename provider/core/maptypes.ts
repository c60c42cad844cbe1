// The kernel's map types and map flags, and the rules each type imposes on
// BPF_MAP_CREATE, as data: every per-type fact lives on the type's entry.
// rules.ts turns these rules into check failures; map.ts and the lifecycle
// read the behaviour facts (per-CPU, keyless, array-like, batch, dumpable).
//
// Numbers come from enum bpf_map_type and the map_flags enum of
// include/uapi/linux/bpf.h (torvalds/linux; the 6.18 uapi ends at
// BPF_MAP_TYPE_ARENA = 33 and BPF_F_NO_USER_CONV = 1 << 18: on this 6.18
// kernel type 34 and flag bit 19 are EINVAL for every size we tried).
// Rules were measured on 6.18 with raw BPF_MAP_CREATE calls and read back
// with BPF_OBJ_GET_INFO_BY_FD; "measured:" notes record what the kernel did.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { possibleCpus, type ValueLayout } from "../../native";
import { perCpuStride } from "./codecs";

/** Map flag name (lower case, no BPF_F_ prefix) → bit, as in the uapi header. */
export const MAP_FLAGS = {
  no_prealloc: 1 << 0,
  no_common_lru: 1 << 1,
  numa_node: 1 << 2,
  rdonly: 1 << 3,
  wronly: 1 << 4,
  stack_build_id: 1 << 5,
  zero_seed: 1 << 6,
  rdonly_prog: 1 << 7,
  wronly_prog: 1 << 8,
  clone: 1 << 9,
  mmapable: 1 << 10,
  preserve_elems: 1 << 11,
  inner_map: 1 << 12,
  link: 1 << 13,
  path_fd: 1 << 14,
  vtype_btf_obj_fd: 1 << 15,
  token_fd: 1 << 16,
  segv_on_fault: 1 << 17,
  no_user_conv: 1 << 18,
} as const;

/** A map flag name. */
export type MapFlagName = keyof typeof MAP_FLAGS;

/** Every flag name, in bit order (the canonical order of flag lists). */
export const MAP_FLAG_NAMES = Object.keys(MAP_FLAGS) as [MapFlagName, ...MapFlagName[]];

/**
 * Flags a user may not declare, with the reason. Every other flag may be
 * declared where the type accepts it (MapTypeInfo.flags).
 * numa_node is accepted only together with `numaNode` (it is implied by it;
 * accepting it keeps read-back flag lists usable as inputs).
 */
export const UNDECLARABLE_FLAGS: Partial<Record<MapFlagName, string>> = {
  // measured: accepted at create but absent from the map_flags the kernel
  // reports; they restrict only the creating fd, so populating would fail.
  rdonly: "rdonly only restricts the creating fd (the kernel does not keep it in map_flags) and would block populating; use freeze for a read-only map",
  wronly: "wronly only restricts the creating fd (the kernel does not keep it in map_flags) and would block populating",
  clone: "clone applies to sk_storage maps, which need BTF and are not supported",
  link: "link applies to struct_ops maps, which are not supported",
  path_fd: "path_fd is a BPF_OBJ_PIN/BPF_OBJ_GET flag, not a map property",
  vtype_btf_obj_fd: "vtype_btf_obj_fd applies to struct_ops maps, which are not supported",
  token_fd: "token_fd is a BPF token argument, not a map property",
};

/**
 * Returns the bit mask of the named flags. Throws on an unknown name (spec
 * validation has already refused those).
 */
export function flagsToMask(names: readonly string[]): number {
  let mask = 0;
  for (const n of names) {
    const bit = (MAP_FLAGS as Record<string, number>)[n];
    if (bit === undefined) throw new Error(`unknown map flag ${JSON.stringify(n)}`);
    mask |= bit;
  }
  return mask >>> 0;
}

/**
 * Returns the flag names of a mask in bit order; bits without a name are
 * rendered as hex ("0x100000") so that nothing is lost.
 */
export function maskToFlags(mask: number): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const v = (2 ** bit) >>> 0;
    if (((mask >>> 0) & v) === 0) continue;
    const name = MAP_FLAG_NAMES.find((n) => MAP_FLAGS[n] === v);
    out.push(name ?? `0x${v.toString(16)}`);
  }
  return out;
}

/** A size rule: one fixed value (filled in when omitted), one of a few, or a range. */
export type SizeRule =
  | { readonly fixed: number }
  | { readonly oneOf: readonly number[]; readonly default: number }
  | { readonly min: number; readonly max?: number; readonly multipleOf?: number };

/** max_entries rule of a type. */
export interface EntriesRule {
  /** A number, or "page" for the host's page size (ringbufs). */
  readonly min: number | "page";
  /** A number, or "cpus" for the kernel's NR_CPUS (cpumap). */
  readonly max?: number | "cpus";
  /** ringbuf: a power of two and a multiple of the page size. */
  readonly pagePowerOfTwo?: boolean;
  /** perf_event_array: the possible CPU count when omitted. */
  readonly defaultCpus?: boolean;
}

/** What a map type's contents can be. */
export type ContentsRule =
  | { readonly kind: "keyed"; readonly index?: boolean; readonly limit?: boolean }
  | { readonly kind: "values"; readonly limit: boolean }
  | { readonly kind: "none"; readonly reason: string };

/** The kernel's rules for one map type, as spec.ts applies them. */
export interface MapTypeInfo {
  /** enum bpf_map_type value. */
  readonly id: number;
  /** Set when the type cannot be managed here: the reason. */
  readonly unsupported?: string;
  readonly key?: SizeRule;
  readonly value?: SizeRule;
  readonly entries?: EntriesRule;
  /** Flags the kernel accepts for this type (measured), besides numa_node. */
  readonly flags?: readonly MapFlagName[];
  /** Flags that must be present. */
  readonly requiredFlags?: readonly MapFlagName[];
  /** Whether numa_node / numaNode is accepted (measured). */
  readonly numa?: boolean;
  /** Meaning of map_extra, where the kernel takes one (else it must be 0). */
  readonly mapExtra?: "bloom_hashes" | "arena_address";
  /** Values are per possible CPU: user space sees one round_up(valueSize, 8) slot per possible CPU. */
  readonly perCpu?: boolean;
  /** Values are other maps (array_of_maps, hash_of_maps): written as fds, read back as map IDs. */
  readonly mapInMap?: boolean;
  /** Entries have no key: values are pushed and popped in order (queue, stack, bloom_filter). */
  readonly keyless?: boolean;
  /** Every index below max_entries always exists: "absent" reads as all-zero and delete is impossible. */
  readonly arrayLike?: boolean;
  /** The kernel implements BPF_MAP_LOOKUP_BATCH / UPDATE_BATCH / DELETE_BATCH for the type. */
  readonly batch?: boolean;
  /** User space can enumerate the contents without consuming them, and they are declarable (keyed contents). */
  readonly dumpable?: boolean;
  /** Hash family: keySize + valueSize ≤ HASH_KV_MAX (measured). */
  readonly kvLimit?: boolean;
  /** Flags the kernel adds by itself (reported in map_flags). */
  readonly kernelFlags?: readonly MapFlagName[];
  /**
   * Why `freeze` is refused for this type, where freezing makes the map
   * useless (the kernel accepts BPF_MAP_FREEZE for every type here, measured
   * on 6.18; it then refuses every user-space write and writable mmap).
   */
  readonly freezeRefused?: string;
  /** A short statement of the type's rules, for documentation and errors. */
  readonly rules: string;
  readonly contents?: ContentsRule;
}

const PROG = ["rdonly_prog", "wronly_prog"] as const;
/** Hash family: keySize + valueSize must stay ≤ this (KMALLOC_MAX_SIZE - sizeof(htab_elem) - 1). */
export const HASH_KV_MAX = (4 << 20) - 48 - 1;
// measured: key 4 + value 4194251 ok, value 4194252 E2BIG; key 4194247 + value 8 ok, 4194248 E2BIG.
const HASH_ELEM = `keySize + valueSize ≤ ${HASH_KV_MAX}`;
const KMALLOC_MAX = 4 << 20;
// measured: array value 2147483647 ok, 2147483648 E2BIG (INT_MAX).
const ARRAY_VALUE_MAX = 0x7fffffff;
// measured: percpu value 32768 ok, 32769 E2BIG (PCPU_MIN_UNIT_SIZE).
const PCPU_MAX = 32768;
const needs = (what: string): ContentsRule => ({ kind: "none", reason: `its values are ${what}, which a declaration cannot carry` });
// measured on 6.18: BPF_MAP_FREEZE succeeds on perf_event_array, ringbuf, user_ringbuf, stack_trace, sockmap,
// cgroup_array and queue; a frozen map then refuses user-space updates (EPERM) and writable mmaps (EPERM).
const FD_FREEZE = "its values are fds that user space writes while programs run; a frozen map refuses every user-space write, so it could never be given one";
const STREAM_FREEZE = "user space reads or writes it through a writable mmap, which the kernel refuses on a frozen map (EPERM)";

const TABLE = {
  hash: {
    id: 1, batch: true, dumpable: true, kvLimit: true, key: { min: 1 }, value: { min: 1 }, entries: { min: 1 }, numa: true,
    flags: ["no_prealloc", "zero_seed", ...PROG], contents: { kind: "keyed", limit: true },
    rules: `key, value and max_entries > 0; ${HASH_ELEM}`,
  },
  array: {
    id: 2, arrayLike: true, batch: true, dumpable: true, key: { fixed: 4 }, value: { min: 1, max: ARRAY_VALUE_MAX }, entries: { min: 1 }, numa: true,
    flags: ["mmapable", "inner_map", ...PROG], contents: { kind: "keyed", index: true },
    rules: `key size 4 (u32 index < max_entries); value 1..${ARRAY_VALUE_MAX}, max_entries > 0; no no_prealloc`,
  },
  prog_array: {
    id: 3, unsupported: "its values are BPF programs, which are not in scope yet",
    rules: "key 4, value 4 (program fds)",
  },
  perf_event_array: {
    id: 4, key: { fixed: 4 }, value: { fixed: 4 }, entries: { min: 1, defaultCpus: true }, numa: true,
    flags: ["preserve_elems"], contents: needs("perf event fds"),
    freezeRefused: FD_FREEZE,
    rules: "key 4, value 4; max_entries > 0 (the kernel has no default: the possible CPU count is filled in)",
  },
  percpu_hash: {
    id: 5, batch: true, dumpable: true, kvLimit: true, key: { min: 1 }, value: { min: 1, max: PCPU_MAX }, entries: { min: 1 }, perCpu: true,
    flags: ["no_prealloc", "zero_seed", ...PROG], contents: { kind: "keyed", limit: true },
    rules: `key, value and max_entries > 0; value ≤ ${PCPU_MAX}; no numa_node (measured EINVAL)`,
  },
  percpu_array: {
    id: 6, arrayLike: true, batch: true, dumpable: true, key: { fixed: 4 }, value: { min: 1, max: PCPU_MAX }, entries: { min: 1 }, perCpu: true,
    flags: [...PROG], contents: { kind: "keyed", index: true },
    rules: `key size 4; value 1..${PCPU_MAX}; no no_prealloc; no numa_node (measured EINVAL)`,
  },
  stack_trace: {
    id: 7, key: { fixed: 4 }, value: { min: 8 }, entries: { min: 1 }, numa: true,
    flags: ["stack_build_id"], contents: { kind: "none", reason: "it is written by the kernel (user space updates are EINVAL)" },
    freezeRefused: "the kernel writes it; freezing would only stop user space from deleting traces it has read",
    rules: "key 4; value a multiple of 8 (32 with stack_build_id) up to perf_event_max_stack frames (127: 1016, or 4064 with stack_build_id)",
  },
  cgroup_array: {
    id: 8, key: { fixed: 4 }, value: { fixed: 4 }, entries: { min: 1 }, numa: true,
    contents: needs("cgroup fds"), freezeRefused: FD_FREEZE,
    rules: "key 4, value 4 (cgroup fds)",
  },
  lru_hash: {
    id: 9, batch: true, dumpable: true, kvLimit: true, key: { min: 1 }, value: { min: 1 }, entries: { min: 1 }, numa: true,
    flags: ["no_common_lru", "zero_seed", ...PROG], contents: { kind: "keyed", limit: true },
    rules: `as hash; no no_prealloc (measured ENOTSUPP); no_common_lru rounds max_entries up to a multiple of the possible CPUs`,
  },
  lru_percpu_hash: {
    id: 10, batch: true, dumpable: true, kvLimit: true, key: { min: 1 }, value: { min: 1, max: PCPU_MAX }, entries: { min: 1 }, perCpu: true,
    flags: ["no_common_lru", "zero_seed", ...PROG], contents: { kind: "keyed", limit: true },
    rules: `as lru_hash; value ≤ ${PCPU_MAX}; no numa_node (measured EINVAL)`,
  },
  lpm_trie: {
    // measured: value 4194024 ok, 4194025 EINVAL.
    id: 11, batch: true, dumpable: true, key: { min: 5, max: 260 }, value: { min: 1, max: 4194024 }, entries: { min: 1 }, numa: true,
    flags: ["no_prealloc", ...PROG], requiredFlags: ["no_prealloc"], contents: { kind: "keyed", limit: true },
    rules: "no_prealloc required; key 5..260 (u32 prefix length + up to 256 address bytes); value 1..4194024",
  },
  array_of_maps: {
    id: 12, arrayLike: true, batch: true, dumpable: true, key: { fixed: 4 }, value: { fixed: 4 }, entries: { min: 1 }, numa: true, mapInMap: true,
    contents: { kind: "keyed", index: true },
    rules: "key 4, value 4 (map fds, declared as pin paths); innerMap required",
  },
  hash_of_maps: {
    id: 13, batch: true, dumpable: true, kvLimit: true, key: { min: 1 }, value: { fixed: 4 }, entries: { min: 1 }, numa: true, mapInMap: true,
    flags: ["no_prealloc", "zero_seed", ...PROG], contents: { kind: "keyed", limit: true },
    rules: "key > 0, value 4 (map fds, declared as pin paths); innerMap required",
  },
  devmap: {
    // measured: rdonly_prog declared explicitly is EINVAL, yet the kernel reports it.
    id: 14, dumpable: true, key: { fixed: 4 }, value: { oneOf: [4, 8], default: 4 }, entries: { min: 1 }, numa: true,
    kernelFlags: ["rdonly_prog"], contents: { kind: "keyed", index: true },
    rules: "key 4; value 4 (ifindex) or 8 (ifindex + program fd); the kernel sets rdonly_prog itself",
  },
  sockmap: {
    id: 15, key: { fixed: 4 }, value: { oneOf: [4, 8], default: 4 }, entries: { min: 1 }, numa: true,
    contents: needs("socket fds"), freezeRefused: FD_FREEZE,
    rules: "key 4; value 4 or 8 (socket fds)",
  },
  cpumap: {
    // measured: max_entries 256 ok, 257 EINVAL with NR_CPUS 256 (kernel_max 255).
    id: 16, dumpable: true, key: { fixed: 4 }, value: { oneOf: [4, 8], default: 4 }, entries: { min: 1, max: "cpus" }, numa: true,
    contents: { kind: "keyed", index: true },
    rules: "key 4 (CPU index); value 4 (queue size) or 8 (+ program fd); max_entries ≤ NR_CPUS; no rdonly/wronly",
  },
  xskmap: {
    id: 17, key: { fixed: 4 }, value: { fixed: 4 }, entries: { min: 1 }, numa: true,
    contents: needs("AF_XDP socket fds"), freezeRefused: FD_FREEZE,
    rules: "key 4, value 4 (AF_XDP socket fds)",
  },
  sockhash: {
    // measured: key 512 ok, 513 EINVAL.
    id: 18, key: { min: 1, max: 512 }, value: { oneOf: [4, 8], default: 4 }, entries: { min: 1 }, numa: true,
    contents: needs("socket fds"), freezeRefused: FD_FREEZE,
    rules: "key 1..512; value 4 or 8 (socket fds)",
  },
  cgroup_storage: {
    id: 19, unsupported: "its entries exist only for programs attached to cgroups (needs a program)", rules: "",
  },
  reuseport_sockarray: {
    id: 20, key: { fixed: 4 }, value: { oneOf: [4, 8], default: 4 }, entries: { min: 1 }, numa: true,
    flags: [...PROG], contents: needs("socket fds"), freezeRefused: FD_FREEZE,
    rules: "key 4; value 4 or 8 (socket fds)",
  },
  percpu_cgroup_storage: {
    id: 21, perCpu: true, unsupported: "its entries exist only for programs attached to cgroups (needs a program)", rules: "",
  },
  queue: {
    id: 22, keyless: true, key: { fixed: 0 }, value: { min: 1, max: KMALLOC_MAX }, entries: { min: 1 }, numa: true,
    flags: [...PROG], contents: { kind: "values", limit: true },
    rules: `key size 0; value 1..${KMALLOC_MAX}; entries have only values, pushed in order; frozen, user space can only peek (BPF programs still push and pop)`,
  },
  stack: {
    id: 23, keyless: true, key: { fixed: 0 }, value: { min: 1, max: KMALLOC_MAX }, entries: { min: 1 }, numa: true,
    flags: [...PROG], contents: { kind: "values", limit: true },
    rules: `key size 0; value 1..${KMALLOC_MAX}; entries have only values, pushed in order; frozen, user space can only peek (BPF programs still push and pop)`,
  },
  sk_storage: { id: 24, unsupported: "it needs BTF (and sockets)", rules: "" },
  devmap_hash: {
    id: 25, dumpable: true, key: { fixed: 4 }, value: { oneOf: [4, 8], default: 4 }, entries: { min: 1 }, numa: true,
    kernelFlags: ["rdonly_prog"], contents: { kind: "keyed", limit: true },
    rules: "key 4; value 4 (ifindex) or 8 (ifindex + program fd); the kernel sets rdonly_prog itself",
  },
  struct_ops: { id: 26, unsupported: "it needs BTF of a kernel struct", rules: "" },
  ringbuf: {
    id: 27, key: { fixed: 0 }, value: { fixed: 0 }, entries: { min: "page", pagePowerOfTwo: true }, numa: true,
    flags: [], contents: { kind: "none", reason: "it is a stream, not key/value storage" },
    freezeRefused: STREAM_FREEZE,
    rules: "key and value 0; max_entries a power of two and a multiple of the page size; no flags",
  },
  inode_storage: { id: 28, unsupported: "it needs BTF", rules: "" },
  task_storage: { id: 29, unsupported: "it needs BTF", rules: "" },
  bloom_filter: {
    id: 30, keyless: true, key: { fixed: 0 }, value: { min: 1, max: KMALLOC_MAX }, entries: { min: 1 }, numa: true,
    flags: ["zero_seed", ...PROG], mapExtra: "bloom_hashes", contents: { kind: "values", limit: false },
    rules: "key size 0; value > 0; mapExtra 0..15 (hash count, 0 = kernel default 5)",
  },
  user_ringbuf: {
    id: 31, key: { fixed: 0 }, value: { fixed: 0 }, entries: { min: "page", pagePowerOfTwo: true }, numa: true,
    flags: [], contents: { kind: "none", reason: "it is a stream, not key/value storage" },
    freezeRefused: STREAM_FREEZE,
    rules: "key and value 0; max_entries a power of two and a multiple of the page size; no flags",
  },
  cgrp_storage: { id: 32, unsupported: "it needs BTF", rules: "" },
  arena: {
    // measured: 1048576 pages ok, 1048577 EINVAL; map_extra 0x1000 ok, 0x100000001 EINVAL.
    id: 33, key: { fixed: 0 }, value: { fixed: 0 }, entries: { min: 1, max: 1 << 20 },
    flags: ["mmapable", "segv_on_fault", "no_user_conv"], requiredFlags: ["mmapable"], mapExtra: "arena_address",
    contents: { kind: "none", reason: "it is memory pages, not key/value storage" },
    freezeRefused: STREAM_FREEZE,
    rules: "key and value 0; mmapable required; max_entries in pages (≤ 1048576, 4 GiB); mapExtra a page-aligned user address or 0; no numa_node",
  },
} as const satisfies Record<string, MapTypeInfo>;

/** A map type name (bpftool's spelling). */
export type MapTypeName = keyof typeof TABLE;

/** Every map type of the 6.18 uapi, by bpftool's name: its enum value and rules. */
export const MAP_TYPES: Readonly<Record<MapTypeName, MapTypeInfo>> = TABLE;

/** Every map type name, in enum order. */
export const MAP_TYPE_NAMES = Object.keys(MAP_TYPES) as [MapTypeName, ...MapTypeName[]];

const NAME_BY_ID = new Map<number, MapTypeName>(MAP_TYPE_NAMES.map((name) => [MAP_TYPES[name].id, name]));

/** Returns the map type name for a kernel enum value, or undefined. */
export function mapTypeName(id: number): MapTypeName | undefined {
  return NAME_BY_ID.get(id);
}

/** Returns the rules of the map type with this kernel enum value, or undefined for a type this table does not know. */
export function mapTypeInfo(id: number): MapTypeInfo | undefined {
  const name = NAME_BY_ID.get(id);
  return name === undefined ? undefined : MAP_TYPES[name];
}

let cachedPageSize: number | undefined;
/**
 * Returns the host's page size (ringbuf max_entries and arena addresses are
 * multiples of it), asked of the OS once (`getconf PAGESIZE`; node has no
 * sysconf). Throws if it cannot be read.
 */
export function pageSize(): number {
  if (cachedPageSize === undefined) {
    const answer = Number(execFileSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).trim());
    if (!Number.isSafeInteger(answer) || answer <= 0) throw new Error(`getconf PAGESIZE answered ${JSON.stringify(answer)}`);
    cachedPageSize = answer;
  }
  return cachedPageSize;
}

/**
 * Bytes of one value as user space reads and writes it: per-CPU types hold a
 * round_up(valueSize, 8) slot per possible CPU (`cpus`), others valueSize.
 * Unknown type ids (types newer than this table) count as not per-CPU.
 */
export function valueBytesOf(typeId: number, valueSize: number, cpus: number = possibleCpus()): number {
  return mapTypeInfo(typeId)?.perCpu ? perCpuStride(valueSize) * cpus : valueSize;
}

/** The binding's value layout from this table: what createMap/openPinnedMap take for any map type. */
export const valueLayout: ValueLayout = (info) => valueBytesOf(info.type, info.valueSize);

/** The possible-CPU count (sizes per-CPU values) and its parser, from the binding. */
export { parseCpuList, possibleCpus as possibleCpuCount } from "../../native";

let nrCpus: number | undefined;
/**
 * Returns the kernel's NR_CPUS (cpumap's max_entries limit) from
 * /sys/devices/system/cpu/kernel_max (which holds NR_CPUS - 1), cached.
 * Falls back to the possible CPU count when the file is missing.
 */
export function kernelMaxCpus(): number {
  if (nrCpus === undefined) {
    try {
      nrCpus = Number(readFileSync("/sys/devices/system/cpu/kernel_max", "utf8").trim()) + 1;
    } catch {
      nrCpus = possibleCpus();
    }
  }
  return nrCpus;
}
