// The pin path rule of check: what a pinPath (or an inner map's pin path)
// must look like before anything touches the filesystem. What only the host
// can tell (symlinks, bpffs, dotted directories still to create) is
// pinhost.ts's, which checkSpec and the pin layer (pins.ts) both run.
import * as posix from "node:path/posix";
import { z } from "zod";

const BPFFS_HOME = "/sys/fs/bpf";

/**
 * The infix of the pin layer's private names beside a pin (staging pins,
 * pins being retired). No dots: bpffs refuses dotted names with EPERM. Pin
 * names containing it are refused, so nothing a user declares can look like
 * one of them.
 */
export const STAGING_INFIX = "_pulumi_ebpf_staging_";

/**
 * The longest suffix the pin layer appends to a pin name for a private name:
 * the infix, a pid (at most 7 digits: pid_max is at most 2^22), a process
 * start time (a u64, 20 digits) and two map IDs (u32, 10 digits each), each
 * after a "_".
 */
export const STAGING_SUFFIX_MAX = STAGING_INFIX.length + 7 + 1 + 20 + 1 + 10 + 1 + 10;

/** NAME_MAX: the longest file name bpffs takes, in bytes. */
const NAME_MAX = 255;
/** PATH_MAX less the terminating NUL. */
const PATH_BYTES_MAX = 4095;

/**
 * Pin path: no NUL, absolute, normalized, no empty/./.. components, no "."
 * in the pin name (measured: bpffs answers EPERM for dotted file and
 * directory names), no STAGING_INFIX in it, and short enough that the
 * staging name beside it (STAGING_SUFFIX_MAX more bytes) is still a valid
 * name and path. Directories above the pin are checked for dots only under
 * /sys/fs/bpf, where they are certainly bpffs; elsewhere the mount point may
 * legitimately sit below a dotted directory (mktemp -d makes /tmp/tmp.XXXX);
 * checkPinHost (pinhost.ts) refuses dotted directories that would be created
 * in bpffs, symlinks, and paths off bpffs.
 */
export const PinPathSchema = z.string({ error: "must be a string" }).superRefine((p, ctx) => pinPathRule(p, ctx, true));

/**
 * The pin path of a map that is only read (an inner map a map of maps
 * refers to): PinPathSchema's rules except the staging namespace and the
 * room for a staging suffix, which matter only where the pin layer pins.
 */
export const ExistingPinPathSchema = z.string({ error: "must be a string" }).superRefine((p, ctx) => pinPathRule(p, ctx, false));

function pinPathRule(p: string, ctx: z.RefinementCtx, pinnedHere: boolean): void {
  const add = (message: string) => ctx.addIssue({ code: "custom", message });
  if (p.includes("\0")) return add(`${JSON.stringify(p)} contains a NUL byte (no path can)`);
  if (!p.startsWith("/")) return add(`${JSON.stringify(p)} is not an absolute path`);
  const bytes = Buffer.byteLength(p);
  const suffix = pinnedHere ? STAGING_SUFFIX_MAX : 0;
  if (bytes + suffix > PATH_BYTES_MAX) {
    if (!pinnedHere) return add(`is ${bytes} bytes long; at most ${PATH_BYTES_MAX} (PATH_MAX with the NUL)`);
    return add(`is ${bytes} bytes long; at most ${PATH_BYTES_MAX - STAGING_SUFFIX_MAX} bytes, so that the staging name beside it (up to ${STAGING_SUFFIX_MAX} more bytes) stays within PATH_MAX (4096 with the NUL)`);
  }
  const parts = p.slice(1).split("/");
  if (parts.some((c) => c === "")) return add(`${JSON.stringify(p)} has an empty component (// or a trailing /)`);
  if (parts.some((c) => c === "." || c === "..")) return add(`${JSON.stringify(p)} has a . or .. component; give the normalized path ${JSON.stringify(posix.normalize(p))}`);
  if (p === BPFFS_HOME) return add(`${p} is the bpffs root itself; pin below it`);
  const name = parts[parts.length - 1]!;
  if (name.includes(".")) return add(`the pin name ${JSON.stringify(name)} contains "." (bpffs refuses dotted names with EPERM)`);
  if (pinnedHere && name.includes(STAGING_INFIX)) {
    return add(`the pin name ${JSON.stringify(name)} contains ${JSON.stringify(STAGING_INFIX)}, which is reserved for the staging pins beside a pin`);
  }
  const nameBytes = Buffer.byteLength(name);
  if (pinnedHere && nameBytes + STAGING_SUFFIX_MAX > NAME_MAX) {
    return add(`the pin name is ${nameBytes} bytes long; at most ${NAME_MAX - STAGING_SUFFIX_MAX} bytes, so that its staging name (up to ${STAGING_SUFFIX_MAX} more bytes) stays within NAME_MAX (${NAME_MAX})`);
  }
  if (p.startsWith(`${BPFFS_HOME}/`)) {
    const dotted = parts.slice(3, -1).find((c) => c.includes("."));
    if (dotted) return add(`the directory ${JSON.stringify(dotted)} contains "." (bpffs refuses dotted names with EPERM)`);
  }
  if (parts.some((c) => Buffer.byteLength(c) > NAME_MAX)) return add(`has a component longer than NAME_MAX (${NAME_MAX} bytes)`);
}
