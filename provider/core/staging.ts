// The pin layer's private names beside a pin (staging pins, pins being
// retired, move traces) and what may be done with them: each name carries
// the pid and start time of the process that made it and the ID of the map
// it was made for, so a stale one is removed only when provably stale.
import * as fs from "node:fs";
import * as path from "node:path";
import { NotAMapError, type DirFd, type MapFd } from "../../native";
import { hasErrno, isEbpfError, kernelError } from "./errors";
import { DIRECTORY_HINTS, openPinParent, type PinParent } from "./pindir";
import { STAGING_INFIX } from "./pinpath";
import { valueLayout } from "./maptypes";

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

/** A parsed staging name. */
export interface StagingName {
  pid: number;
  start: string;
  ids: number[];
}

const NUMBER = "(0|[1-9][0-9]*)";
const STAGING_TAIL = new RegExp(`^${NUMBER}_${NUMBER}_${NUMBER}(?:_${NUMBER})?$`);

/** Parses `candidate` as a staging name beside the pin `name`, exactly; undefined if it is not one. */
export function parseStagingName(name: string, candidate: string): StagingName | undefined {
  const prefix = `${name}${STAGING_INFIX}`;
  if (!candidate.startsWith(prefix)) return undefined;
  const match = STAGING_TAIL.exec(candidate.slice(prefix.length));
  if (!match) return undefined;
  const ids = [Number(match[3]), ...(match[4] === undefined ? [] : [Number(match[4])])];
  if (ids.some((id) => id > 0xffffffff) || Number(match[1]) > 4194304) return undefined;
  return { pid: Number(match[1]), start: match[2]!, ids };
}

/** Whether the process that made staging name `staging` no longer runs (same pid and start time). */
export function ownerGone(staging: StagingName): boolean {
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
    map = dir.openMap(name, "ro", valueLayout);
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
export function unlinkIfHolds(dir: DirFd, name: string, mapId: number): boolean {
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
/** The names in `dir` (none when it cannot be read). */
export function listNames(dir: DirFd): string[] {
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
