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
