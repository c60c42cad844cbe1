// A compact, exact record of a set of map keys: what an adapter keeps so that
// a later update knows which keys an earlier declaration managed (merge mode
// deletes those the new declaration drops) without keeping the entries.
//
// Keys are sorted by their bytes, read as big-endian integers, and each is
// stored as its difference from the previous one (LEB128), then deflated and
// base64-encoded. Regular key sets (sequential indices, addresses of a subnet)
// shrink to almost nothing; 100k random u32 keys take about 310 KB of text
// (235 KB before base64; any exact encoding of such a set needs ~210 KB).
import { deflateRawSync, inflateRawSync } from "node:zlib";

// The record's format tag: a record of another format is refused, not misread.
const FORMAT = "keys1";

// A record larger than this when inflated is refused (a corrupt or hostile
// state must not make the provider allocate without bound): 64 MiB.
const MAX_INFLATED = 64 << 20;

/** The big-endian integer value of a key's bytes. */
function valueOf(key: Buffer): bigint {
  return key.length === 0 ? 0n : BigInt(`0x${key.toString("hex")}`);
}

/**
 * Packs `keys` (each `keySize` bytes; order and duplicates do not matter) as
 * `keys1:<keySize>:<base64>`. Throws RangeError when a key is not `keySize`
 * bytes long.
 */
export function packKeys(keys: readonly Buffer[], keySize: number): string {
  for (const key of keys) {
    if (key.length !== keySize) throw new RangeError(`packKeys: a key of ${key.length} bytes in a set of ${keySize}-byte keys`);
  }
  const bytes: number[] = [];
  // The first key is stored as its value + 1, so that every stored number is ≥ 1.
  if (keySize <= 6) {
    // Keys that fit a double exactly: sorted as numbers, without BigInt (several times faster).
    const values = Float64Array.from(keys, (key) => (keySize === 0 ? 0 : key.readUIntBE(0, keySize))).sort();
    let previous = -1;
    for (const value of values) {
      if (value === previous) continue;
      let delta = value - previous;
      previous = value;
      while (delta >= 0x80) {
        bytes.push((delta % 0x80) | 0x80);
        delta = Math.floor(delta / 0x80);
      }
      bytes.push(delta);
    }
  } else {
    let previous = -1n;
    for (const key of [...keys].sort(Buffer.compare)) {
      const value = valueOf(key);
      if (value === previous) continue;
      let delta = value - previous;
      previous = value;
      do {
        const low = Number(delta & 0x7fn);
        delta >>= 7n;
        bytes.push(delta === 0n ? low : low | 0x80);
      } while (delta !== 0n);
    }
  }
  return `${FORMAT}:${keySize}:${deflateRawSync(Buffer.from(bytes), { level: 9 }).toString("base64")}`;
}

/**
 * The keys a `packKeys` record holds, in ascending byte order. Throws Error
 * naming the problem when `packed` is not such a record of `keySize`-byte keys.
 */
export function unpackKeys(packed: string, keySize: number): Buffer[] {
  const match = /^keys1:(\d+):([A-Za-z0-9+/]*={0,2})$/.exec(packed);
  if (!match) throw new Error(`not a key set record (expected ${FORMAT}:<keySize>:<base64>)`);
  if (Number(match[1]) !== keySize) throw new Error(`the key set record holds ${match[1]}-byte keys, not ${keySize}-byte keys`);
  let bytes: Buffer;
  try {
    bytes = inflateRawSync(Buffer.from(match[2]!, "base64"), { maxOutputLength: MAX_INFLATED });
  } catch (error) {
    throw new Error(`the key set record does not inflate: ${(error as Error).message}`);
  }
  const keys: Buffer[] = [];
  if (keySize <= 6) {
    // As packKeys: keys that fit a double exactly are summed without BigInt.
    const limit = 2 ** (8 * keySize);
    let previous = -1;
    let delta = 0;
    let scale = 1;
    for (let index = 0; index < bytes.length; index++) {
      const byte = bytes[index]!;
      delta += (byte & 0x7f) * scale;
      scale *= 0x80;
      if (byte & 0x80) continue;
      previous += delta;
      if (delta === 0 || previous >= limit) throw new Error(`the key set record is corrupt at byte ${index}`);
      const key = Buffer.alloc(keySize);
      if (keySize > 0) key.writeUIntBE(previous, 0, keySize);
      keys.push(key);
      delta = 0;
      scale = 1;
    }
    if (scale !== 1) throw new Error("the key set record is truncated");
    return keys;
  }
  const limit = 1n << BigInt(8 * keySize);
  let previous = -1n;
  let delta = 0n;
  let shift = 0n;
  for (let index = 0; index < bytes.length; index++) {
    const byte = bytes[index]!;
    delta |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if (byte & 0x80) continue;
    previous += delta;
    if (delta === 0n || previous >= limit) throw new Error(`the key set record is corrupt at byte ${index}`);
    keys.push(Buffer.from(previous.toString(16).padStart(2 * keySize, "0"), "hex"));
    delta = 0n;
    shift = 0n;
  }
  if (shift !== 0n) throw new Error("the key set record is truncated");
  return keys;
}
