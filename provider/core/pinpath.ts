// The pin path rule of check: what a pinPath (or an inner map's pin path)
// must look like before anything touches the filesystem. The pin layer
// (pins.ts) checks what only the filesystem can tell (symlinks, bpffs).
import * as posix from "node:path/posix";
import { z } from "zod";

const BPFFS_HOME = "/sys/fs/bpf";

/**
 * Pin path: absolute, normalized, no empty/./.. components, and no "." in the
 * pin name (measured: bpffs answers EPERM for dotted file and directory
 * names). Directories above the pin are checked for dots only under
 * /sys/fs/bpf, where they are certainly bpffs; elsewhere the mount point may
 * legitimately sit below a dotted directory (mktemp -d makes /tmp/tmp.XXXX),
 * and the pin layer checks the directories it creates. Symlinks and the
 * bpffs magic are checked by the pin layer too.
 */
export const PinPathSchema = z.string({ error: "must be a string" }).superRefine((p, ctx) => {
  const add = (message: string) => ctx.addIssue({ code: "custom", message });
  if (!p.startsWith("/")) return add(`${JSON.stringify(p)} is not an absolute path`);
  if (p.length > 4095) return add("is longer than PATH_MAX (4095)");
  const parts = p.slice(1).split("/");
  if (parts.some((c) => c === "")) return add(`${JSON.stringify(p)} has an empty component (// or a trailing /)`);
  if (parts.some((c) => c === "." || c === "..")) return add(`${JSON.stringify(p)} has a . or .. component; give the normalized path ${JSON.stringify(posix.normalize(p))}`);
  if (p === BPFFS_HOME) return add(`${p} is the bpffs root itself; pin below it`);
  const name = parts[parts.length - 1]!;
  if (name.includes(".")) return add(`the pin name ${JSON.stringify(name)} contains "." (bpffs refuses dotted names with EPERM)`);
  if (p.startsWith(`${BPFFS_HOME}/`)) {
    const dotted = parts.slice(3, -1).find((c) => c.includes("."));
    if (dotted) return add(`the directory ${JSON.stringify(dotted)} contains "." (bpffs refuses dotted names with EPERM)`);
  }
  if (parts.some((c) => Buffer.byteLength(c) > 255)) return add("has a component longer than 255 bytes");
  return undefined;
});
