// Drift of contents by key: what a read-back found added, changed or removed
// behind the declaration's back, in declared notation.
import type { ContentEntry } from "./spec";

/** Keys (in declared notation) whose entries differ between the declaration and the live map. */
export interface ContentsDrift {
  added?: unknown[];
  changed?: unknown[];
  removed?: unknown[];
}

/**
 * The per-key difference between declared and live contents, or undefined
 * when they agree. Refresh reports it as the `drift` output, so the CLI's
 * refresh diff names drifted keys even where an index-wise list diff would
 * show every later entry as changed. Keyless maps (queue, stack) have none.
 */
export function contentsDrift(declared: ContentEntry[], live: ContentEntry[], limit = Infinity): ContentsDrift | undefined {
  const byKey = (entries: ContentEntry[]) => new Map(entries.filter((entry) => entry.key !== undefined).map((entry) => [JSON.stringify(entry.key), entry]));
  const want = byKey(declared);
  const have = byKey(live);
  const added = [...have.keys()].filter((key) => !want.has(key));
  const removed = [...want.keys()].filter((key) => !have.has(key));
  const changed = [...want.keys()].filter((key) => have.has(key) && JSON.stringify(want.get(key)) !== JSON.stringify(have.get(key)));
  if (added.length + removed.length + changed.length === 0) return undefined;
  // No undefined members: the engine's Struct encoding refuses them.
  const drift: ContentsDrift = {};
  const keys = (list: string[]) => list.slice(0, limit).map((key) => JSON.parse(key) as unknown);
  if (added.length > 0) drift.added = keys(added);
  if (changed.length > 0) drift.changed = keys(changed);
  if (removed.length > 0) drift.removed = keys(removed);
  return drift;
}

/** How many keys of each kind a difference has, when its lists name only some of them. */
export interface DriftCounts {
  added: number;
  changed: number;
  removed: number;
}

/**
 * One line describing a per-key difference, naming up to `limit` keys of
 * each kind, then how many more: `1 added (10.9.9.9), 1 changed
 * (203.0.113.10), 1 removed (10.0.0.7)`. `counts`, when the lists name only
 * some keys, gives the totals. Strings show as they are, other keys as JSON.
 * Returns "" when nothing differs.
 */
export function describeDrift(drift: ContentsDrift | undefined, limit = 10, counts?: DriftCounts): string {
  if (!drift) return "";
  const show = (key: unknown) => (typeof key === "string" ? key : JSON.stringify(key));
  const part = (keys: unknown[] | undefined, total: number | undefined, what: string) => {
    if (!keys || keys.length === 0) return undefined;
    const count = Math.max(total ?? 0, keys.length);
    const named = keys.slice(0, limit).map(show).join(", ");
    const shown = Math.min(limit, keys.length);
    const more = count > shown ? ` and ${count - shown} more` : "";
    return `${count} ${what} (${named}${more})`;
  };
  return [
    part(drift.added, counts?.added, "added"), part(drift.changed, counts?.changed, "changed"), part(drift.removed, counts?.removed, "removed"),
  ].filter(Boolean).join(", ");
}

/** The ContentsDrift output with at most `limit` keys of each kind. */
export function limitDrift(drift: ContentsDrift, limit: number): ContentsDrift {
  const out: ContentsDrift = {};
  if (drift.added) out.added = drift.added.slice(0, limit);
  if (drift.changed) out.changed = drift.changed.slice(0, limit);
  if (drift.removed) out.removed = drift.removed.slice(0, limit);
  return out;
}
