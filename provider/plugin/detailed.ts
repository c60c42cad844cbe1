// The per-property difference the plugin gives the engine with its diff
// (DiffResponse.detailedDiff): which inputs change, and for keyed contents
// which entries, so `pulumi preview --diff` names exactly those. No entry is
// ever a replace kind: a new kernel map is built inside the update (the pin
// path cannot hold two maps, so Pulumi's create-before-delete replace would
// collide), and a replace kind would make the engine plan one.
import { declarationOf } from "../dynamic/properties";
import { keyedForm } from "../dynamic/keyed";

/** How one property (or contents entry) changes. */
export type PropertyChange = "add" | "delete" | "update";

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The property path of a contents entry in the engine's notation
 * (`contents["10.0.0.1"]`); undefined for a name the notation cannot carry
 * unambiguously (one with a backslash).
 */
export function entryPath(name: string): string | undefined {
  return name.includes("\\") ? undefined : `contents["${name.replace(/"/g, '\\"')}"]`;
}

const changeOf = (before: Record<string, unknown>, after: Record<string, unknown>, name: string): PropertyChange =>
  !Object.hasOwn(before, name) ? "add" : !Object.hasOwn(after, name) ? "delete" : "update";

/**
 * The changes from recorded state `olds` to checked inputs `news`, by
 * property path: declared properties by name, keyed contents by entry (the
 * whole `contents` when the form is an array or an entry name cannot be a
 * path). Empty when the declarations are equal.
 */
export function detailedDiffOf(olds: Record<string, unknown>, news: Record<string, unknown>): Record<string, PropertyChange> {
  const before = declarationOf(olds);
  const after = declarationOf(news);
  const changes: Record<string, PropertyChange> = {};
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[name]) === JSON.stringify(after[name])) continue;
    if (name === "contents") Object.assign(changes, contentsChanges(olds, news));
    else changes[name] = changeOf(before, after, name);
  }
  return changes;
}

/** The contents entries that differ, by path; `{ contents: … }` when they cannot be named one by one. */
function contentsChanges(olds: Record<string, unknown>, news: Record<string, unknown>): Record<string, PropertyChange> {
  const was = keyedForm(olds.mapType, olds.contents ?? {});
  const now = keyedForm(news.mapType, news.contents ?? {});
  const whole = { contents: olds.contents === undefined ? "add" : news.contents === undefined ? "delete" : "update" } as const;
  if (!isPlainObject(was) || !isPlainObject(now)) return whole;
  const changes: Record<string, PropertyChange> = {};
  for (const name of new Set([...Object.keys(was), ...Object.keys(now)])) {
    if (JSON.stringify(was[name]) === JSON.stringify(now[name])) continue;
    const path = entryPath(name);
    if (path === undefined) return whole;
    changes[path] = changeOf(was, now, name);
  }
  return changes;
}
