// Pin management: where a pin may live, how it is created without replacing
// anything, how a new map is swapped into a taken path atomically, and how a
// pin is removed only while it holds the map we own.
//
// Every operation walks to the pin's directory with directory fds (no
// symlink followed, bpffs verified) and then names pins relative to that
// directory, so a path component flipped meanwhile cannot move a pin
// elsewhere. bpffs has no compare-and-unlink, so nothing is unlinked at a
// shared name: a pin is first moved (renameat2) to a private name of this
// process, verified there (object kind and map ID), and only then unlinked,
// or put back.
import * as fs from "node:fs";
import * as path from "node:path";
import {
  DirFd, isOnBpffs, NotAMapError, openPinnedMap, RENAME_EXCHANGE, RENAME_NOREPLACE, type MapFd,
} from "../../native";
import { EbpfError, hasErrno, isEbpfError, kernelError } from "./errors";
import { faultPoint } from "./faults";
import { PinPathSchema, STAGING_INFIX } from "./pinpath";

export { STAGING_INFIX } from "./pinpath";

/** Ownership and mode applied to a pin file. */
export interface PinPermissions {
  mode?: number;
  uid?: number;
  gid?: number;
}

const MOUNT_HINT = "mount one with `mount -t bpf bpf /sys/fs/bpf` (or choose a path under an existing bpffs mount)";

// Hints for errnos of directory and pin operations, where the generic hints
// (ENOENT "nothing is pinned there", EACCES "run as root") would mislead.
const DIRECTORY_HINTS: Record<string, string> = {
  ENOENT: "a directory on the way does not exist (it was removed meanwhile); run again",
  EACCES: "the directory's mode or owner does not let this user in; check them with `ls -ld` on each directory of the path",
  ELOOP: "a component of the path is a symlink (it changed since the path was checked); use the real path",
  ENOTDIR: "a component of the path is not a directory (it changed since the path was checked)",
};

/**
 * Checks that `pinPath` is a safe place for a pin and returns it: no NUL,
 * absolute, already normalized, no `..` or dotted or empty component, not in
 * the staging namespace, short enough for its staging name, no symlink on
 * the way, and inside a bpffs mount (the nearest existing ancestor is bpffs).
 * Throws EbpfError "UnsafePath" or "NotBpffs" (or "Permission"/"Kernel" when
 * a directory cannot be inspected). Touches nothing.
 */
export function checkPinLocation(pinPath: string): string {
  if (typeof pinPath !== "string" || pinPath.includes("\0")) {
    throw new EbpfError("UnsafePath", `pinPath ${JSON.stringify(pinPath)} must be a string without NUL bytes`);
  }
  if (!path.isAbsolute(pinPath)) throw new EbpfError("UnsafePath", `pinPath ${JSON.stringify(pinPath)} must be absolute`);
  const components = pinPath.split("/").slice(1);
  if (components.some((part) => part === "" || part === "." || part === "..")) {
    throw new EbpfError("UnsafePath", `pinPath ${pinPath} must be normalized: no empty, "." or ".." components`);
  }
  if (components[components.length - 1].includes(".")) {
    throw new EbpfError("UnsafePath", `pinPath ${pinPath}: bpffs refuses names containing "."`);
  }
  const rule = PinPathSchema.safeParse(pinPath);
  if (!rule.success) throw new EbpfError("UnsafePath", `pinPath ${pinPath}: ${rule.error.issues[0]!.message}`);
  let current = "/";
  let nearestExisting = "/";
  for (const part of components) {
    current = path.join(current, part);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(current);
    } catch (error) {
      if (hasErrno(error, "ENOENT")) break;
      throw kernelError("inspect", current, error, {}, DIRECTORY_HINTS);
    }
    if (stat.isSymbolicLink()) {
      throw new EbpfError("UnsafePath", `pinPath ${pinPath} passes through the symlink ${current}; use the real path`);
    }
    if (current !== pinPath && !stat.isDirectory()) {
      throw new EbpfError("UnsafePath", `pinPath ${pinPath}: ${current} is not a directory`);
    }
    nearestExisting = current;
  }
  const directory = nearestExisting === pinPath ? path.dirname(pinPath) : nearestExisting;
  let onBpffs: boolean;
  try {
    onBpffs = isOnBpffs(directory);
  } catch (error) {
    throw kernelError("inspect the filesystem of", directory, error, {}, DIRECTORY_HINTS);
  }
  if (!onBpffs) {
    throw new EbpfError("NotBpffs", `pinPath ${pinPath}: ${directory} is not on a bpffs mount; ${MOUNT_HINT}`);
  }
  return pinPath;
}

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
    for (const part of components) {
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
        try {
          dir.mkdir(part, options.mode ?? 0o700);
          created.push(next);
        } catch (error) {
          if (!hasErrno(error, "EEXIST")) throw kernelError("create directory", next, error, {}, DIRECTORY_HINTS);
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
 * Creates the missing parent directories of `pinPath` (see openPinParent)
 * and returns the ones it created, outermost first. Throws like
 * openPinParent.
 */
export function ensurePinParent(pinPath: string, mode = 0o700): string[] {
  const parent = openPinParent(pinPath, { create: true, mode });
  parent.dir.close();
  return parent.created;
}

// ---------------------------------------------------------------- identity

let selfStart: string | undefined;

/** The start time (clock ticks after boot, /proc/<pid>/stat field 22) of process `pid`, or undefined if it does not run. */
function startTimeOf(pid: number): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Fields after the command name, which is in parentheses and may hold spaces.
  return text.slice(text.lastIndexOf(")") + 2).split(" ")[19];
}

function selfIdentity(): { pid: number; start: string } {
  selfStart ??= startTimeOf(process.pid) ?? "0";
  return { pid: process.pid, start: selfStart };
}

/**
 * The private name beside the pin `name` under which this process stages or
 * retires map `ids[0]` (`ids[1]`: the map a pin move installs elsewhere):
 * `<name>_pulumi_ebpf_staging_<pid>_<start time>_<id>[_<id>]`. The pid and
 * start time identify this process beyond pid reuse; the ID is what the pin
 * must hold for anyone to remove it once this process is gone.
 */
export function stagingName(name: string, ids: number[], identity = selfIdentity()): string {
  return `${name}${STAGING_INFIX}${identity.pid}_${identity.start}_${ids.join("_")}`;
}

interface StagingName {
  pid: number;
  start: string;
  ids: number[];
}

const NUMBER = "(0|[1-9][0-9]*)";
const STAGING_TAIL = new RegExp(`^${NUMBER}_${NUMBER}_${NUMBER}(?:_${NUMBER})?$`);

/** Parses `candidate` as a staging name beside the pin `name`, exactly; undefined if it is not one. */
function parseStagingName(name: string, candidate: string): StagingName | undefined {
  const prefix = `${name}${STAGING_INFIX}`;
  if (!candidate.startsWith(prefix)) return undefined;
  const match = STAGING_TAIL.exec(candidate.slice(prefix.length));
  if (!match) return undefined;
  const ids = [Number(match[3]), ...(match[4] === undefined ? [] : [Number(match[4])])];
  if (ids.some((id) => id > 0xffffffff) || Number(match[1]) > 4194304) return undefined;
  return { pid: Number(match[1]), start: match[2]!, ids };
}

/** Whether the process that made staging name `staging` no longer runs (same pid and start time). */
function ownerGone(staging: StagingName): boolean {
  return startTimeOf(staging.pid) !== staging.start;
}

/** What a pin holds. */
export type PinContent =
  | { kind: "missing" }
  | { kind: "map"; id: number }
  /** A program, a link, a symlink or a directory. */
  | { kind: "other"; what: string };

/** Describes pin contents for messages: "map 12", "a BPF program". */
export function describeContent(content: PinContent): string {
  if (content.kind === "map") return `map ${content.id}`;
  if (content.kind === "missing") return "nothing";
  return `a ${content.what}`;
}

/**
 * What the pin `name` in `dir` holds: its object kind and, for a map, its
 * ID. Throws EbpfError on errors other than a missing pin.
 */
export function inspectPin(dir: DirFd, name: string): PinContent {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(dir.procPath(name));
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return { kind: "missing" };
    throw kernelError("inspect", path.join(dir.path, name), error, {}, DIRECTORY_HINTS);
  }
  if (stat.isSymbolicLink()) return { kind: "other", what: "symlink" };
  if (stat.isDirectory()) return { kind: "other", what: "directory" };
  let map: MapFd;
  try {
    map = dir.openMap(name, "ro");
  } catch (error) {
    if (error instanceof NotAMapError) return { kind: "other", what: `BPF ${error.objectKind}` };
    if (hasErrno(error, "ENOENT")) return { kind: "missing" };
    throw kernelError("open", path.join(dir.path, name), error);
  }
  try {
    return { kind: "map", id: map.info.id };
  } finally {
    map.close();
  }
}

/** Unlinks the private pin `name` if it holds map `mapId`; returns whether it did. */
function unlinkIfHolds(dir: DirFd, name: string, mapId: number): boolean {
  const content = inspectPin(dir, name);
  if (content.kind !== "map" || content.id !== mapId) return false;
  try {
    dir.unlink(name);
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return false;
    throw kernelError("unpin", path.join(dir.path, name), error);
  }
  return true;
}

function listNames(dir: DirFd): string[] {
  try {
    return fs.readdirSync(dir.procPath(""));
  } catch {
    return [];
  }
}

/**
 * Removes staging pins beside the pin `name` in `dir` that provably are
 * stale staging pins: the name parses exactly, the process it names (pid and
 * start time) no longer runs, and the pin holds the map whose ID the name
 * carries. Anything else (look-alike names, a staging pin that holds another
 * map, a live process's) is left alone. Returns the removed paths.
 */
export function removeStaleStagingPinsIn(dir: DirFd, name: string): string[] {
  const removed: string[] = [];
  for (const candidate of listNames(dir)) {
    const staging = parseStagingName(name, candidate);
    if (!staging || !ownerGone(staging)) continue;
    if (unlinkIfHolds(dir, candidate, staging.ids[0]!)) removed.push(path.join(dir.path, candidate));
  }
  return removed;
}

/** removeStaleStagingPinsIn beside `pinPath`; nothing when its directory does not exist. */
export function removeStaleStagingPins(pinPath: string): string[] {
  let parent: PinParent;
  try {
    parent = openPinParent(pinPath, { create: false });
  } catch (error) {
    if (isEbpfError(error, "PinNotFound")) return [];
    throw error;
  }
  try {
    return removeStaleStagingPinsIn(parent.dir, parent.name);
  } finally {
    parent.dir.close();
  }
}

function checkPermissions(permissions: PinPermissions): void {
  const { mode, uid, gid } = permissions;
  if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
    throw new EbpfError("Permission", `permissions.mode ${mode} must be an integer 0..0o7777`);
  }
  for (const [field, id] of [["uid", uid], ["gid", gid]] as const) {
    // (uid_t)-1 = 2^32-1 means "leave unchanged" to chown(2), so it is no valid owner.
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < 0xffffffff)) {
      throw new EbpfError("Permission", `permissions.${field} ${id} must be an integer 0..4294967294`);
    }
  }
}

function applyPermissionsTo(target: string, shownAs: string, permissions: PinPermissions): void {
  checkPermissions(permissions);
  try {
    if (permissions.mode !== undefined) fs.chmodSync(target, permissions.mode);
    if (permissions.uid !== undefined || permissions.gid !== undefined) {
      fs.lchownSync(target, permissions.uid ?? -1, permissions.gid ?? -1);
    }
  } catch (error) {
    throw kernelError("set permissions of", shownAs, error);
  }
}

/** Applies mode/uid/gid to a pin file. Throws EbpfError "Permission" for out-of-range values, or a wrapped error. */
export function applyPermissions(pinPath: string, permissions: PinPermissions | undefined): void {
  if (permissions) applyPermissionsTo(pinPath, pinPath, permissions);
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

// ---------------------------------------------------------------- pinning

/** What pinInto did. */
export interface PinResult {
  /** Directories created for the pin, outermost first. */
  createdDirectories: string[];
}

/**
 * Pins `map` at a staging name beside `pinPath`, applies `permissions` there,
 * then moves it into place: with `replace` false by renameat2(RENAME_NOREPLACE),
 * failing with EbpfError "PinExists" (message: `takenHint`) when the path is
 * taken; with `replace` true by renameat2(RENAME_EXCHANGE), which swaps
 * atomically so the path never goes missing, and leaves what it took out at
 * the staging name. That is unlinked only if it is map `expectedId`; anything
 * else (another map, a program) is exchanged back and EbpfError "ForeignPin"
 * thrown, the new map discarded. A swap killed after the exchange leaves the
 * staging pin for recoverInterruptedSwap. On any failure the staging pin is
 * removed, the path holds what it held, and directories created are removed
 * again.
 */
export function pinInto(
  map: MapFd, pinPath: string,
  options: { replace: boolean; expectedId?: number; permissions?: PinPermissions; dirMode?: number; takenHint?: string },
): PinResult {
  const parent = openPinParent(pinPath, { create: true, mode: options.dirMode });
  const { dir, name } = parent;
  const mapId = map.info.id;
  try {
    removeStaleStagingPinsIn(dir, name);
    const staging = stagingName(name, [mapId]);
    faultPoint("before-pin");
    try {
      dir.pin(map, staging);
    } catch (error) {
      throw kernelError("pin", path.join(dir.path, staging), error, {}, DIRECTORY_HINTS);
    }
    let exchanged = false;
    try {
      if (options.permissions) applyPermissionsTo(dir.procPath(staging), path.join(dir.path, staging), options.permissions);
      faultPoint("before-rename");
      if (options.replace) {
        try {
          dir.rename(staging, dir, name, RENAME_EXCHANGE);
          exchanged = true;
        } catch (error) {
          // Nothing to exchange with (the pin went away meanwhile): a plain move.
          if (!hasErrno(error, "ENOENT")) throw error;
          dir.rename(staging, dir, name, RENAME_NOREPLACE);
        }
      } else {
        dir.rename(staging, dir, name, RENAME_NOREPLACE);
      }
    } catch (error) {
      unlinkIfHolds(dir, staging, mapId);
      if (hasErrno(error, "EEXIST")) {
        const hint = options.takenHint ?? `set ifExists to "adopt" or "replace" to take it over`;
        throw new EbpfError("PinExists", `pinPath ${pinPath} is already taken; ${hint}`, { cause: error, code: "EEXIST" });
      }
      throw kernelError(options.replace ? "swap a new map into" : "pin", pinPath, error, {}, DIRECTORY_HINTS);
    }
    faultPoint("after-rename");
    if (exchanged) retireExchanged(dir, name, staging, mapId, options.expectedId, pinPath);
    return { createdDirectories: parent.created };
  } catch (error) {
    dir.close();
    removeEmptyDirectories(parent.created);
    throw error;
  } finally {
    dir.close();
  }
}

/**
 * After RENAME_EXCHANGE put map `newId` at `name`, `staging` holds what was
 * there. Unlinks it only if it is map `expectedId`; otherwise exchanges it
 * back (a few times, should a third party swap again meanwhile), discards
 * the new map and throws "ForeignPin". Never unlinks anything but `expectedId`
 * or the new map.
 */
function retireExchanged(dir: DirFd, name: string, staging: string, newId: number, expectedId: number | undefined, pinPath: string): void {
  const taken = inspectPin(dir, staging);
  if (taken.kind === "missing") return;
  if (taken.kind === "map" && taken.id === expectedId) {
    unlinkIfHolds(dir, staging, taken.id);
    return;
  }
  const foreign = `${pinPath} held ${describeContent(taken)}, not map ${expectedId} that was to be replaced`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      dir.rename(staging, dir, name, RENAME_EXCHANGE);
    } catch (error) {
      if (!hasErrno(error, "ENOENT")) throw kernelError("put back the pin at", pinPath, error);
      // The pin path went away meanwhile: move the foreign object back plainly
      // (our new map went with the path); if the path was retaken, it stays.
      let movedBack = true;
      try {
        dir.rename(staging, dir, name, RENAME_NOREPLACE);
      } catch {
        movedBack = false;
      }
      if (movedBack) throw new EbpfError("ForeignPin", `${foreign}; it was put back`);
      break;
    }
    const back = inspectPin(dir, staging);
    if (back.kind === "missing") throw new EbpfError("ForeignPin", `${foreign}; it was put back, and the new map discarded`);
    if (back.kind === "map" && back.id === newId) {
      unlinkIfHolds(dir, staging, newId);
      throw new EbpfError("ForeignPin", `${foreign}; it was put back, and the new map discarded`);
    }
    // A third party swapped yet another object in meanwhile: try again.
  }
  throw new EbpfError("ForeignPin", `${foreign}; the path kept changing, so what was taken out stays pinned at ${path.join(dir.path, staging)} (nothing was unpinned)`);
}

/**
 * The ID of the map pinned at `pinPath`, or undefined when nothing is pinned
 * there. Throws EbpfError "NotAMap" when the pin holds a program or link, or
 * a wrapped error.
 */
export function pinnedMapId(pinPath: string): number | undefined {
  let map: MapFd;
  try {
    map = openPinnedMap(pinPath, "ro");
  } catch (error) {
    if (hasErrno(error, "ENOENT")) return undefined;
    if (error instanceof NotAMapError) {
      throw new EbpfError("NotAMap", `${pinPath} holds a BPF ${error.objectKind}, not a map; leave it to whoever pinned it and choose another pinPath`);
    }
    throw kernelError("open", pinPath, error, { ENOENT: "PinNotFound" });
  }
  try {
    return map.info.id;
  } finally {
    map.close();
  }
}

/**
 * Recognizes a swap (pinInto with `replace`) that was killed after the
 * exchange: the pin holds map `liveMapId`, and a staging pin beside it, made
 * by a process that no longer runs while it staged map `liveMapId` (the ID
 * in its name), holds map `mapId`, the one this resource owned. Then the
 * live map is this resource's: those staging pins are removed and true is
 * returned. Otherwise (a foreign map) returns false and touches nothing.
 */
export function recoverInterruptedSwap(pinPath: string, mapId: number, liveMapId: number): boolean {
  let parent: PinParent;
  try {
    parent = openPinParent(pinPath, { create: false });
  } catch {
    return false;
  }
  try {
    return recoverSwapIn(parent.dir, parent.name, mapId, liveMapId);
  } finally {
    parent.dir.close();
  }
}

function recoverSwapIn(dir: DirFd, name: string, mapId: number, liveMapId: number): boolean {
  let found = false;
  for (const candidate of listNames(dir)) {
    const staging = parseStagingName(name, candidate);
    if (!staging || staging.ids.length !== 1 || staging.ids[0] !== liveMapId || !ownerGone(staging)) continue;
    if (unlinkIfHolds(dir, candidate, mapId)) found = true;
  }
  return found;
}

/** What unpinIfOwned found. */
export type UnpinOutcome = "unpinned" | "missing" | "foreign";

/**
 * Removes the pin at `pinPath` only if it holds map `mapId` (or a map a
 * killed swap of this resource put there, see recoverInterruptedSwap). The
 * pin is first moved to a private name (renameat2 RENAME_NOREPLACE), verified
 * there and unlinked; anything else is moved back. A missing pin is
 * "missing" (success). A pin holding something else is "foreign" and
 * `onForeign` is told what it holds (and where it is kept, should the path
 * have been taken meanwhile). Throws EbpfError on other errors.
 */
export function unpinIfOwned(pinPath: string, mapId: number, onForeign: (what: string) => void = () => undefined): UnpinOutcome {
  let parent: PinParent;
  try {
    parent = openPinParent(pinPath, { create: false });
  } catch (error) {
    if (isEbpfError(error, "PinNotFound")) return "missing";
    throw error;
  }
  const { dir, name } = parent;
  try {
    faultPoint("before-unpin");
    const held = stagingName(name, [mapId]);
    try {
      dir.rename(name, dir, held, RENAME_NOREPLACE);
    } catch (error) {
      if (hasErrno(error, "ENOENT")) {
        removeStaleStagingPinsIn(dir, name);
        return "missing";
      }
      throw kernelError("unpin", pinPath, error, {}, DIRECTORY_HINTS);
    }
    const content = inspectPin(dir, held);
    if (content.kind === "map" && (content.id === mapId || recoverSwapIn(dir, name, mapId, content.id))) {
      unlinkIfHolds(dir, held, content.id);
      // A dead run's staging or move-trace pins of this name go too.
      removeStaleStagingPinsIn(dir, name);
      return "unpinned";
    }
    try {
      dir.rename(held, dir, name, RENAME_NOREPLACE);
      onForeign(`it holds ${describeContent(content)}`);
    } catch {
      onForeign(`it held ${describeContent(content)}, and the path was taken meanwhile, so that stays pinned at ${path.join(dir.path, held)}`);
    }
    return "foreign";
  } finally {
    dir.close();
  }
}

/**
 * Moves the pin at `from` to `to` (renameat2 RENAME_NOREPLACE between the
 * verified directories, creating `to`'s missing directories), provided it is
 * map `mapId`: if what moved is anything else, it is moved back and
 * EbpfError "ForeignPin" thrown. Throws "PinExists" when `to` is taken.
 * Returns the directories created.
 */
export function movePinIfOwned(from: string, to: string, mapId: number): PinResult {
  const source = openPinParent(from, { create: false });
  try {
    const target = openPinParent(to, { create: true });
    try {
      try {
        source.dir.rename(source.name, target.dir, target.name, RENAME_NOREPLACE);
      } catch (error) {
        if (hasErrno(error, "EEXIST")) {
          throw new EbpfError("PinExists", `cannot move the pin to ${to}: the path is taken; choose another pinPath or remove what is pinned there`, { cause: error, code: "EEXIST" });
        }
        throw kernelError("move pin to", to, error, { ENOENT: "PinNotFound" }, DIRECTORY_HINTS);
      }
      const moved = inspectPin(target.dir, target.name);
      if (moved.kind !== "map" || moved.id !== mapId) {
        let where = `it was moved back to ${from}`;
        try {
          target.dir.rename(target.name, source.dir, source.name, RENAME_NOREPLACE);
        } catch {
          where = `${from} was taken meanwhile, so it stays at ${to}`;
        }
        throw new EbpfError("ForeignPin", `${from} held ${describeContent(moved)}, not map ${mapId} that this resource manages; ${where}`);
      }
      return { createdDirectories: target.created };
    } catch (error) {
      target.dir.close();
      removeEmptyDirectories(target.created);
      throw error;
    } finally {
      target.dir.close();
    }
  } finally {
    source.dir.close();
  }
}

/**
 * Leaves proof, beside `oldPath`, that this process is moving map `map`
 * (pinned at `oldPath`) to another path as new map `newMapId`: a second pin
 * of `map` at a private name carrying both IDs. A re-run after a kill
 * (finishInterruptedMove) reads it. Returns a function that removes it.
 */
export function pinMoveTrace(oldPath: string, map: MapFd, newMapId: number): () => void {
  const parent = openPinParent(oldPath, { create: false });
  const trace = stagingName(parent.name, [map.info.id, newMapId]);
  try {
    parent.dir.pin(map, trace);
  } catch (error) {
    parent.dir.close();
    throw kernelError("pin", path.join(parent.dir.path, trace), error, {}, DIRECTORY_HINTS);
  }
  return () => {
    try {
      unlinkIfHolds(parent.dir, trace, map.info.id);
    } finally {
      parent.dir.close();
    }
  };
}

/**
 * Finishes a pin move (pinPath and the map changing together) that a killed
 * process left half done: a trace of a process that no longer runs beside
 * `oldPath` holds map `mapId` and names new map N, and `newPath` holds N.
 * Then `oldPath` is unpinned if it still holds `mapId`, the trace removed,
 * and N returned: the map at `newPath` is this resource's. A trace whose new
 * map is not at `newPath` is removed (the move never happened) and undefined
 * returned.
 */
export function finishInterruptedMove(oldPath: string, newPath: string, mapId: number): number | undefined {
  let parent: PinParent;
  try {
    parent = openPinParent(oldPath, { create: false });
  } catch {
    return undefined;
  }
  try {
    for (const candidate of listNames(parent.dir)) {
      const trace = parseStagingName(parent.name, candidate);
      if (!trace || trace.ids.length !== 2 || trace.ids[0] !== mapId || !ownerGone(trace)) continue;
      const traced = inspectPin(parent.dir, candidate);
      if (traced.kind !== "map" || traced.id !== mapId) continue;
      let atNewPath: number | undefined;
      try {
        atNewPath = pinnedMapId(newPath);
      } catch {
        atNewPath = undefined;
      }
      if (atNewPath === trace.ids[1]) {
        unpinIfOwned(oldPath, mapId);
        unlinkIfHolds(parent.dir, candidate, mapId);
        return atNewPath;
      }
      unlinkIfHolds(parent.dir, candidate, mapId);
    }
    return undefined;
  } finally {
    parent.dir.close();
  }
}
