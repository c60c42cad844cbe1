// What only the host can tell about a pin path, asked at check time with
// read-only calls (lstat, statfs) before anything is created: the path
// passes through no symlink or file, the nearest existing directory is on a
// bpffs mount, and no directory that would be created there has a dotted
// name (bpffs refuses those with EPERM). pinpath.ts holds the rules that
// need no host at all.
import * as fs from "node:fs";
import * as path from "node:path";
import { errnoOf } from "./errors";

/** statfs f_type of bpffs (BPF_FS_MAGIC, include/uapi/linux/magic.h). */
export const BPF_FS_MAGIC = 0xcafe4a11;

// A few f_type values worth naming in a message (include/uapi/linux/magic.h).
const FILESYSTEM_NAMES: Record<number, string> = {
  0xef53: "ext2/3/4",
  0x01021994: "tmpfs",
  0x62656572: "sysfs",
  0x9fa0: "proc",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x794c7630: "overlayfs",
  0x1373: "devfs",
};

/** The hint for a path that is not on bpffs: how to get a bpffs mount. */
export const BPFFS_MOUNT_HINT = "mount one with `mount -t bpf bpf /sys/fs/bpf` (or choose a path under an existing bpffs mount)";

/** What checkPinHost found wrong, as the rule a check failure states, and the error kind it stands for. */
export interface PinHostIssue {
  kind: "UnsafePath" | "NotBpffs" | "Permission" | "Kernel";
  rule: string;
  /** The failed call's error, where a directory could not be inspected, and the path it failed on. */
  failure?: { error: unknown; path: string; operation: string };
}

function filesystemOf(directory: string): number {
  return fs.statfsSync(directory).type;
}

function describeFilesystem(type: number): string {
  const name = FILESYSTEM_NAMES[type];
  return name ? `${name}, not bpffs` : `filesystem magic 0x${type.toString(16)}, not bpffs`;
}

/**
 * Inspects a pin path (already valid by PinPathSchema) on this host without
 * changing anything: walks it with lstat from "/", refusing a symlink or a
 * non-directory on the way and a directory at the pin itself; statfs of the
 * nearest existing directory must be bpffs; the directories that would be
 * created below it must have no "." in their names (bpffs answers EPERM).
 * Returns the first issue, or undefined when the path is fine. Never
 * throws for the path's sake: an unreadable directory is an issue too.
 */
export function checkPinHost(pinPath: string): PinHostIssue | undefined {
  const components = pinPath.split("/").slice(1);
  let current = "/";
  let nearestDirectory = "/";
  let missingFrom = components.length;
  for (let index = 0; index < components.length; index++) {
    current = path.posix.join(current, components[index]!);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(current);
    } catch (error) {
      const code = errnoOf(error);
      if (code === "ENOENT") {
        missingFrom = index;
        break;
      }
      const why = code === "EACCES" ? "the directory's mode or owner does not let this user in" : String(error);
      return {
        kind: code === "EACCES" || code === "EPERM" ? "Permission" : "Kernel",
        rule: `cannot inspect ${current} (${code ?? "error"}: ${why}); check the mode of each directory on the way`,
        failure: { error, path: current, operation: "inspect" },
      };
    }
    const isPin = index === components.length - 1;
    if (stat.isSymbolicLink()) return { kind: "UnsafePath", rule: `passes through the symlink ${current}; use the real path` };
    if (isPin) {
      if (stat.isDirectory()) return { kind: "UnsafePath", rule: `${current} is a directory; a pin path names a file in one` };
      break;
    }
    if (!stat.isDirectory()) return { kind: "UnsafePath", rule: `${current} is not a directory` };
    nearestDirectory = current;
  }
  let type: number;
  try {
    type = filesystemOf(nearestDirectory);
  } catch (error) {
    return {
      kind: "Kernel", rule: `cannot inspect the filesystem of ${nearestDirectory} (${errnoOf(error) ?? String(error)})`,
      failure: { error, path: nearestDirectory, operation: "inspect the filesystem of" },
    };
  }
  if (type !== BPF_FS_MAGIC) {
    return { kind: "NotBpffs", rule: `${nearestDirectory} is not on a bpffs mount (${describeFilesystem(type)}); ${BPFFS_MOUNT_HINT}` };
  }
  // The directories to create, below the nearest existing one (the pin name itself is pinpath.ts's rule).
  const dotted = components.slice(missingFrom, -1).find((part) => part.includes("."));
  if (dotted !== undefined) {
    return { kind: "UnsafePath", rule: `the directory ${JSON.stringify(dotted)} would be created in bpffs, which refuses names containing "." (EPERM); choose a name without dots` };
  }
  return undefined;
}
