// The one-line reports the provider gives per map besides the CLI's diff:
// what an update changes in place, why it builds a new kernel map, and what a
// new contents file changes in the live map.
import {
  describeDrift, isEbpfError, observePinnedMap, recreateReasons, SpecError,
  type ContentsDrift, type DriftCounts, type DriftReport, type MapSpec,
} from "../core";
import { keyedForm } from "./keyed";

/** `+added ~changed -removed` of a per-key difference (its lists, or its counts). */
export function deltaCounts(drift: ContentsDrift | DriftCounts | undefined): string {
  const count = (value: unknown[] | number | undefined) => (typeof value === "number" ? value : value?.length ?? 0);
  return `+${count(drift?.added)} ~${count(drift?.changed)} -${count(drift?.removed)}`;
}

/**
 * The difference between two declarations' inline contents, as the update
 * applies it in place (`+1 ~1 -1`), or "" when the contents are not keyed
 * (keyless maps change by a new map) or nothing changes. Old state recorded
 * as an array compares equal to the same entries keyed.
 */
export function inlineContentsDelta(olds: Record<string, unknown>, news: Record<string, unknown>): string {
  const before = keyedForm(olds.mapType, olds.contents ?? []);
  const after = keyedForm(news.mapType, news.contents ?? []);
  if (Array.isArray(before) || Array.isArray(after) || typeof before !== "object" || typeof after !== "object") return "";
  const was = before as Record<string, unknown>;
  const now = after as Record<string, unknown>;
  const added = Object.keys(now).filter((name) => !Object.hasOwn(was, name));
  const removed = Object.keys(was).filter((name) => !Object.hasOwn(now, name));
  const changed = Object.keys(now).filter((name) => Object.hasOwn(was, name) && JSON.stringify(was[name]) !== JSON.stringify(now[name]));
  if (added.length + changed.length + removed.length === 0) return "";
  return deltaCounts({ added, changed, removed });
}

/**
 * What bringing the live map (`olds.mapId`) to a contents file's entries
 * changes, by key ("added": keys the file adds), naming at most `limit` keys
 * of each kind, with the counts. Reads the live map; undefined when it
 * cannot be read as `spec` (a new map is built then) or nothing changes. In
 * merge mode only declared keys are read back, so none show as removed.
 */
export function fileContentsDrift(spec: MapSpec, olds: Record<string, unknown>, limit = 10): DriftReport | undefined {
  let report;
  try {
    const observed = observePinnedMap(spec, Number(olds.mapId));
    if (observed.status !== "ok") return undefined;
    report = observed.observation.driftFromDeclared(limit);
  } catch (error) {
    if (isEbpfError(error) || error instanceof SpecError) return undefined;
    throw error;
  }
  if (!report) return undefined;
  // From the live map to the declaration: the reverse of the read-back's drift.
  const { added, changed, removed } = report.drift;
  const drift: ContentsDrift = {};
  if (removed) drift.added = removed;
  if (changed) drift.changed = changed;
  if (added) drift.removed = added;
  return { drift, counts: { added: report.counts.removed, changed: report.counts.changed, removed: report.counts.added } };
}

/** fileContentsDrift as one line: `3 entries change: 1 added (…), 1 changed (…), 1 removed (…)`; "" when none. */
export function fileContentsDelta(spec: MapSpec, olds: Record<string, unknown>): string {
  const report = fileContentsDrift(spec, olds);
  if (!report) return "";
  const total = report.counts.added + report.counts.changed + report.counts.removed;
  return `${total} ${total === 1 ? "entry changes" : "entries change"}: ${describeDrift(report.drift, 10, report.counts)}`;
}

// The ABI inputs whose change builds a new map, shown as `field old → new`.
const ABI_FIELDS = ["mapType", "keySize", "valueSize", "maxEntries", "flags", "name", "innerMap", "numaNode", "mapExtra"] as const;

/** Why an update built a new kernel map, as `maxEntries 1024 → 2048` (or the reasons recreateReasons gives). */
export function describeNewMap(oldSpec: MapSpec, newSpec: MapSpec): string {
  const show = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value ?? null));
  const fields = ABI_FIELDS
    .filter((field) => JSON.stringify(oldSpec[field] ?? null) !== JSON.stringify(newSpec[field] ?? null))
    .map((field) => `${field} ${show(oldSpec[field])} → ${show(newSpec[field])}`);
  if (fields.length > 0) return fields.join(", ");
  const reasons = recreateReasons(oldSpec, newSpec);
  return reasons.length > 0 ? reasons.join("; ") : "the live map's ABI differed from the declaration";
}
