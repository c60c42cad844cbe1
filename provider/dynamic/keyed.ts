// Contents keyed by key: the canonical form of `contents` in checked inputs,
// state and read-back. The core takes and returns contents as an array of
// { key, value } entries; in state an array makes the CLI diff index by
// index (one early insertion shows every later entry as changed), so this
// adapter records an object whose property names are the keys' notation and
// whose properties are the values. The CLI's own diff then names each added,
// changed and removed key.
//
// Key notation: a key whose canonical notation is a string (ipv4, cidr, mac,
// hex, string codecs) is that string; any other key (numbers, structs) is its
// canonical notation as JSON (`7`, `{"ip":"10.0.0.1","port":80}`), fields in
// the codec's order. Values: the canonical value; on per-CPU maps whose CPUs
// disagree, `{ "perCpuValues": [...] }`. Keyless maps (queue, stack,
// bloom_filter) keep the array: their entries have no key, and their order is
// their push order.
import { checkSpec, MAP_TYPES, SpecError, type Codec, type ContentEntry, type MapTypeName } from "../core";

/** Contents in keyed form: key notation → value (see the module comment). */
export type KeyedContents = Record<string, unknown>;

/** Whether entries of a map type carry keys, so its contents are recorded keyed. */
export function isKeyedType(mapType: unknown): boolean {
  if (typeof mapType !== "string" || !Object.hasOwn(MAP_TYPES, mapType)) return false;
  return MAP_TYPES[mapType as MapTypeName].contents?.kind === "keyed";
}

/** Whether a map type's values span CPUs. */
function isPerCpuType(mapType: unknown): boolean {
  return typeof mapType === "string" && Object.hasOwn(MAP_TYPES, mapType) && MAP_TYPES[mapType as MapTypeName].perCpu === true;
}

/** The notation of a key as a property name: strings as they are, anything else as JSON. */
export function keyNotation(key: unknown): string {
  return typeof key === "string" ? key : JSON.stringify(key);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Contents in the form recorded for `mapType`: canonical array entries of a
 * keyed map become an object keyed by key notation (in the array's order);
 * anything else (keyless maps, a keyed form already, entries without keys
 * that check refuses anyway) is returned as it is.
 */
export function keyedForm(mapType: unknown, contents: unknown): unknown {
  if (!isKeyedType(mapType) || !Array.isArray(contents)) return contents;
  if (!contents.every((entry) => isPlainObject(entry) && entry.key !== undefined)) return contents;
  const keyed: KeyedContents = {};
  for (const entry of contents as ContentEntry[]) {
    // A duplicate key is check's failure to report; keep the first here.
    const name = keyNotation(entry.key);
    if (Object.hasOwn(keyed, name)) return contents;
    keyed[name] = entry.perCpuValues !== undefined ? { perCpuValues: entry.perCpuValues } : entry.value;
  }
  return keyed;
}

/**
 * The key codec of a property bag, from a check without contents; undefined
 * when that check fails (check then reports why).
 */
function keyCodecOf(props: Record<string, unknown>): Codec | undefined {
  try {
    return checkSpec({ ...props, contents: [], contentsFile: undefined }, { pinLocation: false }).codecs.key;
  } catch (error) {
    if (error instanceof SpecError) return undefined;
    throw error;
  }
}

// The key a property name stands for: the reading (the string itself, or the
// JSON it holds) the key codec reads back unchanged, else one it reads back
// to the same notation, else one it encodes, else the string (for check to
// refuse, naming the entry).
function keyOf(name: string, codec: Codec | undefined): unknown {
  const candidates: unknown[] = [name];
  try {
    candidates.push(JSON.parse(name));
  } catch {
    // Not JSON: only the string itself.
  }
  if (codec) {
    // The reading that is canonical already (u32 10, not "10"), then one whose canonical notation is the name.
    const canonical = (candidate: unknown) => codec.decode(codec.encode(candidate, "key"));
    for (const accept of [(c: unknown) => JSON.stringify(canonical(c)) === JSON.stringify(c), (c: unknown) => keyNotation(canonical(c)) === name]) {
      for (const candidate of candidates) {
        try {
          if (accept(candidate)) return candidate;
        } catch {
          // Not this reading of the name.
        }
      }
    }
    // Another accepted spelling (e.g. "0x0a000001" for an ipv4 key): the string, or the JSON value if it encodes.
    for (const candidate of candidates.slice().reverse()) {
      try {
        codec.encode(candidate, "key");
        return candidate;
      } catch {
        // Try the next reading.
      }
    }
  }
  return name;
}

/**
 * The array form of contents the core checks: keyed form turned back into
 * `{ key, value }` (or `{ key, perCpuValues }`) entries, the names read with
 * the map's key codec (so "10" is the u32 key 10 and the string key "10"
 * alike). `names` receives each entry's property name, for failure paths.
 * Arrays (and anything that is not an object) are returned as they are.
 */
export function arrayForm(props: Record<string, unknown>, names?: string[]): unknown {
  const contents = props.contents;
  if (!isPlainObject(contents)) return contents;
  const codec = keyCodecOf(props);
  const perCpu = isPerCpuType(props.mapType);
  return Object.entries(contents).map(([name, value]) => {
    names?.push(name);
    const key = keyOf(name, codec);
    if (perCpu && isPlainObject(value) && Object.keys(value).length === 1 && Array.isArray(value.perCpuValues)) {
      return { key, perCpuValues: value.perCpuValues };
    }
    return { key, value };
  });
}

/**
 * A failure path of the array form renamed for the keyed form the user
 * wrote: `contents[3].value` → `contents["10.0.0.7"].value`.
 */
export function keyedPath(path: string, names: readonly string[]): string {
  const match = /^contents\[(\d+)\](.*)$/.exec(path);
  if (!match) return path;
  const name = names[Number(match[1])];
  return name === undefined ? path : `contents[${JSON.stringify(name)}]${match[2]!.replace(/^\.key$/, "")}`;
}

/** Contents of two property bags in one comparable text: keyed form, property names sorted. */
export function comparableContents(props: Record<string, unknown>): string {
  const keyed = keyedForm(props.mapType, props.contents);
  if (!isPlainObject(keyed)) return JSON.stringify(keyed ?? null);
  return JSON.stringify(Object.keys(keyed).sort().map((name) => [name, keyed[name]]));
}
