// Errors of the lifecycle core. One class, EbpfError, with a `kind` that
// callers test (like cilium/ebpf's sentinel errors wrapped with context), and a
// message that names the operation, the map, the errno name and a hint.
import { isBpfError, type BpfError } from "../../native";

/** What went wrong, for callers that branch on it. */
export type EbpfErrorKind =
  /** The pin path is taken (create with ifExists "fail"). */
  | "PinExists"
  /** No map is pinned at the path. */
  | "PinNotFound"
  /** The path is not (or would not be) on a bpffs mount. */
  | "NotBpffs"
  /** The path is relative, has `..`, a dotted component or passes through a symlink. */
  | "UnsafePath"
  /** An existing map's ABI differs from the declared one. */
  | "Incompatible"
  /** The pin holds a map this resource does not own. */
  | "ForeignPin"
  /** The pin holds a BPF object that is not a map (a program, a link). */
  | "NotAMap"
  /** The map is frozen (or the fd read-only), so user space cannot write it. */
  | "Frozen"
  /** The caller lacks the privilege or file access the operation needs. */
  | "Permission"
  /** A bpf(2) command or filesystem call failed. */
  | "Kernel";

/** An error from the lifecycle core; `cause` holds the underlying error, if any. */
export class EbpfError extends Error {
  readonly kind: EbpfErrorKind;
  /** The errno name when the kernel refused (`EPERM`), else undefined. */
  readonly code: string | undefined;

  constructor(kind: EbpfErrorKind, message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EbpfError";
    this.kind = kind;
    this.code = options.code;
  }
}

/**
 * The errno name an error carries (`ENOENT`), from a bpf(2) error or a Node
 * filesystem error; undefined for any other error. The one place errno names
 * are read from errors.
 */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Whether `error` carries the errno name `code`. */
export function hasErrno(error: unknown, code: string): boolean {
  return errnoOf(error) === code;
}

/** Reports whether `error` is an EbpfError, optionally of the given kind. */
export function isEbpfError(error: unknown, kind?: EbpfErrorKind): error is EbpfError {
  return error instanceof EbpfError && (kind === undefined || error.kind === kind);
}

const HINTS: Record<string, string> = {
  EPERM: "needs root or CAP_BPF (plus CAP_SYS_ADMIN/CAP_NET_ADMIN for some map types; kernel.unprivileged_bpf_disabled refuses every bpf(2) command without CAP_BPF); on a frozen or read-only map, writes are refused",
  EACCES: "the pin's mode or the fd's access mode does not allow this; run as root or check the pin's permissions",
  ENOENT: "nothing is pinned there",
  E2BIG: "the map is too large for the kernel (maxEntries × (key + value size) beyond what one allocation may hold), or an attribute the kernel does not know is set; lower maxEntries or the sizes",
  ENOMEM: "the kernel could not allocate the map; lower maxEntries or the value size, or raise the memlock limit",
  EBUSY: "the map has a writable memory mapping, so it cannot be frozen",
  ENOTSUPP: "this kernel does not support that combination of map type and flags",
  EOPNOTSUPP: "this kernel does not support that operation on this map type",
  EINVAL: "the kernel rejected the map's attributes (type, sizes, flags or name)",
  EEXIST: "the path or key already exists",
};

// Where the operation tells more than the errno alone.
function hintFor(operation: string, code: string): string | undefined {
  if (code === "EPERM" && /^(write|delete) entries/.test(operation)) {
    return "the map is frozen or the fd is read-only, so user space cannot write it (a frozen map's contents change only by building a new map: an update of a frozen map's contents swaps one in); without CAP_BPF every bpf(2) command is refused too";
  }
  if (code === "EBUSY" && /^freeze/.test(operation)) {
    return "a process has the map memory-mapped writable (an mmapable array), so it cannot be frozen; unmap it (or stop that process) and run again";
  }
  return HINTS[code];
}

/**
 * Wraps a failed bpf(2) or filesystem call with the operation, the map's pin
 * path, the errno name and a hint. The caller, which knows what the call was,
 * names the kind for the errnos it expects (`{ ENOENT: "PinNotFound" }`) and,
 * in `hints`, a hint where the generic one would mislead (ENOENT on a
 * directory is not "nothing is pinned there"); EPERM/EACCES are "Permission"
 * unless the caller says otherwise, everything else "Kernel". Node argument
 * errors (code ERR_*) become "Kernel" (or what `kinds` says); other non-errno
 * errors are returned unchanged.
 */
export function kernelError(
  operation: string, pinPath: string, error: unknown, kinds: Partial<Record<string, EbpfErrorKind>> = {},
  hints: Partial<Record<string, string>> = {},
): Error {
  if (error instanceof EbpfError) return error;
  const code = errnoOf(error);
  if (code === undefined) {
    // Node's own argument errors (ERR_OUT_OF_RANGE, ERR_INVALID_ARG_VALUE)
    // mean a value the caller should have refused; they still name the map.
    const nodeCode = (error as NodeJS.ErrnoException | undefined)?.code;
    if (typeof nodeCode === "string" && nodeCode.startsWith("ERR_")) {
      return new EbpfError(kinds[nodeCode] ?? "Kernel", `${operation} ${pinPath} failed: ${(error as Error).message}`, { cause: error, code: nodeCode });
    }
    return error instanceof Error ? error : new Error(String(error));
  }
  const command = isBpfError(error) ? ` (${(error as BpfError).command})` : "";
  const text = hints[code] ?? hintFor(operation, code);
  const hint = text ? `: ${text}` : "";
  const kind: EbpfErrorKind = kinds[code] ?? (code === "EPERM" || code === "EACCES" ? "Permission" : "Kernel");
  return new EbpfError(kind, `${operation} ${pinPath}${command} failed with ${code}${hint}`, { cause: error, code });
}
