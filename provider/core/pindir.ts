// The directory of a pin, reached safely: a walk from "/" with O_PATH |
// O_NOFOLLOW directory fds (creating what is missing, inside bpffs only),
// so that every later name is resolved in the directory verified here,
// whatever happens to the path meanwhile; and the removal of directories
// the walk created, when they are empty again.
import * as path from "node:path";
import { DirFd } from "../../native";
import { EbpfError, hasErrno, kernelError } from "./errors";

/** How to get a bpffs mount, for NotBpffs messages. */
export const MOUNT_HINT = "mount one with `mount -t bpf bpf /sys/fs/bpf` (or choose a path under an existing bpffs mount)";

/**
 * Hints for errnos of directory and pin operations, where the generic hints
 * (ENOENT "nothing is pinned there", EACCES "run as root") would mislead.
 */
export const DIRECTORY_HINTS: Record<string, string> = {
  ENOENT: "a directory on the way does not exist (it was removed meanwhile); run again",
  EACCES: "the directory's mode or owner does not let this user in; check them with `ls -ld` on each directory of the path",
  ELOOP: "a component of the path is a symlink (it changed since the path was checked); use the real path",
  ENOTDIR: "a component of the path is not a directory (it changed since the path was checked)",
};

/** Why bpffs refuses a name: not privileges. */
export const DOTTED_NAME_HINT = "bpffs refuses names containing \".\" (EPERM, even for root); choose a name without dots";

// mkdir in bpffs: dotted names are refused before the call, so EPERM there
// is the privilege it says (CAP_SYS_ADMIN-less user namespaces, LSMs).
const MKDIR_HINTS: Record<string, string> = {
  ...DIRECTORY_HINTS,
  EPERM: "the directory cannot be created here: bpffs refuses names with \".\", and an LSM or a mount without write access refuses others; check the directory's mount and mode",
};

/** The verified directory of a pin, the pin's name in it, and the directories the walk created. */
export interface PinParent {
  dir: DirFd;
  name: string;
  /** Directories this walk created, outermost first. */
  created: string[];
}

function onBpffs(dir: DirFd): boolean {
  try {
    return dir.isOnBpffs();
  } catch (error) {
    throw kernelError("inspect the filesystem of", dir.path, error, {}, DIRECTORY_HINTS);
  }
}

/**
 * Opens the directory of `pinPath` by walking from "/" one component at a
 * time with O_PATH|O_NOFOLLOW directory fds, so no symlink is followed and
 * every later name is resolved in the directory verified here. With
 * `create`, missing directories are made (mkdirat, `mode`, default 0700: a
 * pin's mode is no security boundary, so directories are where access is
 * restricted), each only inside a directory on bpffs. The final directory
 * must be on bpffs. Throws EbpfError: "UnsafePath" (a symlink or
 * non-directory on the way), "NotBpffs", "PinNotFound" (a missing directory,
 * without `create`), "Permission", "Kernel". The caller closes `dir`.
 */
export function openPinParent(pinPath: string, options: { create: boolean; mode?: number }): PinParent {
  const components = path.dirname(pinPath).split("/").filter((part) => part !== "");
  let dir = DirFd.root();
  const created: string[] = [];
  try {
    for (const [index, part] of components.entries()) {
      const next = path.join(dir.path, part);
      let child: DirFd | undefined;
      try {
        child = dir.openDir(part);
      } catch (error) {
        if (!options.create || !hasErrno(error, "ENOENT")) throw directoryError(pinPath, next, error);
      }
      if (child === undefined) {
        if (!onBpffs(dir)) {
          throw new EbpfError("NotBpffs", `cannot create ${next}: its parent is not on a bpffs mount; ${MOUNT_HINT}`);
        }
        // Every directory still to make is named before the first is made, so
        // a path that would fail further down leaves nothing behind.
        const dotted = components.slice(index).find((name) => name.includes("."));
        if (dotted !== undefined) {
          throw new EbpfError("UnsafePath", `pinPath ${pinPath}: cannot create the directory ${JSON.stringify(dotted)}: ${DOTTED_NAME_HINT}`);
        }
        try {
          dir.mkdir(part, options.mode ?? 0o700);
          created.push(next);
        } catch (error) {
          if (!hasErrno(error, "EEXIST")) throw kernelError("create directory", next, error, {}, MKDIR_HINTS);
        }
        try {
          child = dir.openDir(part);
        } catch (error) {
          throw directoryError(pinPath, next, error);
        }
      }
      dir.close();
      dir = child;
    }
    if (!onBpffs(dir)) {
      throw new EbpfError("NotBpffs", `pinPath ${pinPath}: ${dir.path} is not on a bpffs mount; ${MOUNT_HINT}`);
    }
    return { dir, name: path.basename(pinPath), created };
  } catch (error) {
    dir.close();
    removeEmptyDirectories(created);
    throw error;
  }
}

function directoryError(pinPath: string, directory: string, error: unknown): Error {
  if (hasErrno(error, "ELOOP") || hasErrno(error, "ENOTDIR")) {
    return new EbpfError("UnsafePath", `pinPath ${pinPath} passes through ${directory}, which is a symlink or not a directory (it changed since the path was checked); use the real path`, { cause: error, code: (error as NodeJS.ErrnoException).code });
  }
  return kernelError("open directory", directory, error, { ENOENT: "PinNotFound" }, DIRECTORY_HINTS);
}

/**
 * Removes each directory of `directories` that is empty, innermost first,
 * and stops at the first one that is not (rmdir refuses non-empty ones;
 * nothing is removed recursively). Each is reached by a verified walk and
 * must still be a directory on bpffs. Returns the removed ones.
 */
export function removeEmptyDirectories(directories: string[]): string[] {
  const removed: string[] = [];
  for (const directory of [...directories].sort((a, b) => b.length - a.length)) {
    let parent: PinParent;
    try {
      parent = openPinParent(directory, { create: false });
    } catch {
      break;
    }
    try {
      const child = parent.dir.openDir(parent.name);
      const isBpffs = child.isOnBpffs();
      child.close();
      if (!isBpffs) break;
      parent.dir.rmdir(parent.name);
      removed.push(directory);
    } catch {
      // Not empty, gone, or no longer a directory: leave it and what is above it.
      break;
    } finally {
      parent.dir.close();
    }
  }
  return removed;
}
