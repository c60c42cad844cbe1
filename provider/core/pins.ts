// Pin management: where a pin may live, how it is created without replacing
// anything, how a new map is swapped into a taken path atomically, and how a
// pin is removed only while it still holds the map we own.
import * as fs from "node:fs";
import * as path from "node:path";
import { isOnBpffs, openPinnedMap, renameat2, RENAME_EXCHANGE, RENAME_NOREPLACE, type MapFd } from "../../native";
import { EbpfError, kernelError } from "./errors";
import { faultPoint } from "./faults";

/** The infix of staging pins; no dots (bpffs refuses dotted names with EPERM). */
export const STAGING_INFIX = "_pulumi_ebpf_staging_";

/** Ownership and mode applied to a pin file. */
export interface PinPermissions {
  mode?: number;
  uid?: number;
  gid?: number;
}

const MOUNT_HINT = "mount one with `mount -t bpf bpf /sys/fs/bpf` (or choose a path under an existing bpffs mount)";

/**
 * Checks that `pinPath` is a safe place for a pin and returns it: absolute,
 * already normalized, no `..` or dotted or empty component, no symlink on the
 * way, and inside a bpffs mount (the nearest existing ancestor is bpffs).
 * Throws EbpfError "UnsafePath" or "NotBpffs". Touches nothing.
 */
export function checkPinLocation(pinPath: string): string {
  if (!path.isAbsolute(pinPath)) throw new EbpfError("UnsafePath", `pinPath ${JSON.stringify(pinPath)} must be absolute`);
  const components = pinPath.split("/").slice(1);
  if (components.some((part) => part === "" || part === "." || part === "..")) {
    throw new EbpfError("UnsafePath", `pinPath ${pinPath} must be normalized: no empty, "." or ".." components`);
  }
  if (components[components.length - 1].includes(".")) {
    throw new EbpfError("UnsafePath", `pinPath ${pinPath}: bpffs refuses names containing "."`);
  }
  let current = "/";
  let nearestExisting = "/";
  for (const part of components) {
    current = path.join(current, part);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") break;
      throw kernelError("inspect", current, error);
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
  if (!isOnBpffs(directory)) {
    throw new EbpfError("NotBpffs", `pinPath ${pinPath}: ${directory} is not on a bpffs mount; ${MOUNT_HINT}`);
  }
  return pinPath;
}

/**
 * Creates the missing parent directories of `pinPath`, one at a time and each
 * on bpffs, with `mode` (default 0700: a pin's mode is no security boundary, so
 * the directories are where access is restricted). Throws on failure.
 */
export function ensurePinParent(pinPath: string, mode = 0o700): void {
  const parent = path.dirname(pinPath);
  const missing: string[] = [];
  for (let dir = parent; !fs.existsSync(dir); dir = path.dirname(dir)) missing.unshift(dir);
  for (const dir of missing) {
    if (!isOnBpffs(path.dirname(dir))) {
      throw new EbpfError("NotBpffs", `cannot create ${dir}: its parent is not on a bpffs mount; ${MOUNT_HINT}`);
    }
    try {
      fs.mkdirSync(dir, { mode });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw kernelError("create directory", dir, error);
    }
  }
}

let stagingCounter = 0;

/** A fresh staging pin path beside `pinPath`, recognisable by STAGING_INFIX and our pid. */
export function stagingPathFor(pinPath: string): string {
  return `${pinPath}${STAGING_INFIX}${process.pid}_${stagingCounter++}`;
}

/**
 * Removes staging pins beside `pinPath` left by processes that no longer run
 * (a crash between staging and rename). Returns the removed paths.
 */
export function removeStaleStagingPins(pinPath: string): string[] {
  const directory = path.dirname(pinPath);
  const prefix = `${path.basename(pinPath)}${STAGING_INFIX}`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(directory);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("_")[0]);
    if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) continue;
    if (pid === process.pid) continue;
    try {
      fs.unlinkSync(path.join(directory, name));
      removed.push(path.join(directory, name));
    } catch {
      // Someone else cleaned it up.
    }
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Applies mode/uid/gid to a pin file. Throws a wrapped error on failure. */
export function applyPermissions(pinPath: string, permissions: PinPermissions | undefined): void {
  if (!permissions) return;
  try {
    if (permissions.mode !== undefined) fs.chmodSync(pinPath, permissions.mode);
    if (permissions.uid !== undefined || permissions.gid !== undefined) {
      fs.chownSync(pinPath, permissions.uid ?? -1, permissions.gid ?? -1);
    }
  } catch (error) {
    throw kernelError("set permissions of", pinPath, error);
  }
}

/**
 * Pins `map` at a staging name beside `pinPath`, applies `permissions` there,
 * then moves it into place: with `replace` false by renameat2(RENAME_NOREPLACE),
 * failing with EbpfError "PinExists" when the path is taken; with `replace`
 * true by renameat2(RENAME_EXCHANGE), which swaps atomically so the path never
 * goes missing, and leaves the old map at the staging name until it is
 * unlinked: a swap killed in between leaves that trace for
 * recoverInterruptedSwap. On any failure the staging pin is removed and the
 * path is untouched.
 */
export function pinInto(map: MapFd, pinPath: string, options: { replace: boolean; permissions?: PinPermissions; dirMode?: number }): void {
  ensurePinParent(pinPath, options.dirMode);
  removeStaleStagingPins(pinPath);
  const staging = stagingPathFor(pinPath);
  try {
    map.pin(staging);
  } catch (error) {
    throw kernelError("pin", staging, error);
  }
  try {
    applyPermissions(staging, options.permissions);
    faultPoint("before-rename");
    if (options.replace) {
      try {
        renameat2(staging, pinPath, RENAME_EXCHANGE);
      } catch (error) {
        // Nothing to exchange with (the pin went away meanwhile): a plain move.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        renameat2(staging, pinPath, RENAME_NOREPLACE);
      }
    } else {
      renameat2(staging, pinPath, RENAME_NOREPLACE);
    }
  } catch (error) {
    try {
      fs.unlinkSync(staging);
    } catch {
      // Already gone; nothing more to undo.
    }
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new EbpfError("PinExists", `pinPath ${pinPath} is already taken; set ifExists to "adopt" or "replace" to take it over`, { cause: error, code: "EEXIST" });
    }
    throw kernelError(options.replace ? "swap a new map into" : "pin", pinPath, error);
  }
  faultPoint("after-rename");
  if (options.replace) {
    // After the exchange the staging name holds the old map (if there was
    // one); unpinning it is the last step. Should that fail, the next
    // operation on this path removes it as a stale staging pin.
    try {
      fs.unlinkSync(staging);
    } catch {
      // Nothing more to do.
    }
  }
}

/** The map ID pinned at `pinPath`, or undefined when nothing is pinned there. Throws on other errors. */
export function pinnedMapId(pinPath: string): number | undefined {
  let map: MapFd;
  try {
    map = openPinnedMap(pinPath, "ro");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
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
 * exchange: the pin holds the new map, and a staging pin of a process that no
 * longer runs holds map `mapId`, the one this resource owned. Then the map at
 * the pin is this resource's; the stale staging pins holding `mapId` are
 * removed and true is returned. Otherwise (a foreign map) returns false and
 * touches nothing.
 */
export function recoverInterruptedSwap(pinPath: string, mapId: number): boolean {
  const directory = path.dirname(pinPath);
  const prefix = `${path.basename(pinPath)}${STAGING_INFIX}`;
  let names: string[];
  try {
    names = fs.readdirSync(directory);
  } catch {
    return false;
  }
  let found = false;
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("_")[0]);
    if (pid === process.pid || (Number.isInteger(pid) && processAlive(pid))) continue;
    const staging = path.join(directory, name);
    let id: number | undefined;
    try {
      id = pinnedMapId(staging);
    } catch {
      continue;
    }
    if (id !== mapId) continue;
    found = true;
    try {
      fs.unlinkSync(staging);
    } catch {
      // Someone else cleaned it up.
    }
  }
  return found;
}

/** What unpinIfOwned found. */
export type UnpinOutcome = "unpinned" | "missing" | "foreign";

/**
 * Removes the pin at `pinPath` only if it still holds map `mapId`. A missing
 * pin is "missing" (success); a pin holding another map is left alone and
 * reported as "foreign". Throws on other errors.
 */
export function unpinIfOwned(pinPath: string, mapId: number): UnpinOutcome {
  const liveId = pinnedMapId(pinPath);
  if (liveId === undefined) return "missing";
  if (liveId !== mapId && !recoverInterruptedSwap(pinPath, mapId)) return "foreign";
  faultPoint("before-unpin");
  try {
    fs.unlinkSync(pinPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw kernelError("unpin", pinPath, error);
  }
  return "unpinned";
}
