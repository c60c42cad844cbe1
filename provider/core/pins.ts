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
  NotAMapError, openPinnedMap, RENAME_EXCHANGE, RENAME_NOREPLACE, type DirFd, type MapFd,
} from "../../native";
import { EbpfError, hasErrno, isEbpfError, kernelError } from "./errors";
import { faultPoint } from "./faults";
import { DIRECTORY_HINTS, openPinParent, removeEmptyDirectories, type PinParent } from "./pindir";
import { checkPinHost } from "./pinhost";
import { PinPathSchema } from "./pinpath";
import { valueLayout } from "./maptypes";
import {
  describeContent, inspectPin, listNames, ownerGone, parseStagingName, removeStaleStagingPinsIn, stagingName, unlinkIfHolds,
} from "./staging";

export { STAGING_INFIX } from "./pinpath";
export { openPinParent, removeEmptyDirectories, type PinParent } from "./pindir";
export {
  describeContent, inspectPin, removeStaleStagingPins, removeStaleStagingPinsIn, stagingName, type PinContent,
} from "./staging";

// Pinning as root into a verified bpffs directory: the staging name has no
// dots, so EPERM is not bpffs's dotted-name rule; say what else it can be.
const PIN_HINTS: Record<string, string> = {
  ...DIRECTORY_HINTS,
  EPERM: "the pin was refused: without CAP_BPF (or CAP_SYS_ADMIN) pinning is not allowed, and bpffs refuses names containing \".\"",
};

/** Ownership and mode applied to a pin file. */
export interface PinPermissions {
  mode?: number;
  uid?: number;
  gid?: number;
}

/**
 * Checks that `pinPath` is a safe place for a pin and returns it: no NUL,
 * absolute, already normalized, no `..` or dotted or empty component, not in
 * the staging namespace, short enough for its staging name, no symlink on
 * the way, inside a bpffs mount (the nearest existing ancestor is bpffs), and
 * no dotted directory to create (see checkPinHost, which checkSpec runs too).
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
  const issue = checkPinHost(pinPath);
  if (issue?.failure) throw kernelError(issue.failure.operation, issue.failure.path, issue.failure.error, {}, DIRECTORY_HINTS);
  if (issue) throw new EbpfError(issue.kind, `pinPath ${pinPath}: ${issue.rule}`);
  return pinPath;
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
      throw kernelError("pin", path.join(dir.path, staging), error, {}, PIN_HINTS);
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
 * back (up to 8 times, should a third party swap again meanwhile), discards
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
  for (let attempt = 0; attempt < 8; attempt++) {
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
    map = openPinnedMap(pinPath, "ro", valueLayout);
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
