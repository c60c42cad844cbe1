// Key/value codecs: the notations users write map contents in, both ways.
//
// Every codec has a fixed byte size. encode() turns a declared value into
// exactly that many bytes or throws a CodecError naming the path and rule;
// decode() turns bytes back into the canonical notation, so that
// decode(encode(x)) is the canonical form of x and encode(decode(b)) equals b
// for every b of the right size. Bytes a notation cannot express (an lpm key
// with host bits set, a string without a NUL) decode to the raw form
// { hex: "…" }, which every codec accepts.
import { z } from "zod";
import { FailureList, InputError, clip, echo, type Failure, type InputErrorMaker } from "./failures";

/** The codec names that need no further description. */
export const SCALAR_CODECS = [
  "hex", "string",
  "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64",
  "u16be", "u32be", "u64be",
  "ipv4", "ipv6", "mac", "lpm_ipv4", "lpm_ipv6",
  "bpf_spin_lock",
] as const;

/** A scalar codec name. */
export type ScalarCodecName = (typeof SCALAR_CODECS)[number];

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One field of a struct codec declaration. */
export interface StructFieldDecl {
  name: string;
  type: CodecDecl;
  offset?: number;
  size?: number;
}

/** A codec declaration: a scalar codec name or `{ struct: [fields] }`. */
export type CodecDecl = ScalarCodecName | { struct: StructFieldDecl[] };

const ByteCount = z.number().int().min(0).max(0xffffffff);

/** How deep structs may nest in a declaration (a struct of structs is 2). */
export const MAX_CODEC_DEPTH = 32;
/** How many struct fields one declaration may have in all, nested ones included. */
export const MAX_CODEC_FIELDS = 1 << 20;

/** The zod schema of one struct field (shape only; layout is checked by makeCodec). */
export const StructFieldSchema: z.ZodType<StructFieldDecl> = z.lazy(() =>
  z.strictObject({
    name: z.string().regex(FIELD_NAME, { error: "a field name is a C identifier" })
      .refine((n) => n !== "hex", { error: "the field name hex is reserved for raw values ({ hex: \"…\" })" }),
    type: CodecSchema,
    offset: ByteCount.optional(),
    size: ByteCount.optional(),
  }),
);

/**
 * The zod schema of a codec declaration (keyType / valueType). It recurses
 * into nested structs: bound the nesting first (codecNestingIssue), as
 * checkSpec and makeCodec do, before parsing untrusted declarations.
 */
export const CodecSchema: z.ZodType<CodecDecl> = z.lazy(() =>
  z.union([
    z.enum(SCALAR_CODECS, { error: (issue) => notACodec(issue.input) }),
    z.strictObject({
      struct: z.array(StructFieldSchema, { error: "must be an array of fields { name, type, offset?, size? }" })
        .min(1, { error: "a struct has at least one field" })
        .refine((fs) => new Set(fs.map((f) => f.name)).size === fs.length, { error: "struct field names must be unique" }),
    }),
  ]),
);

/** The rule for a value that is no codec declaration, naming the value and the codecs there are. */
export function notACodec(value: unknown): string {
  return `${echo(value)} is not a codec; one of ${SCALAR_CODECS.join(", ")} or { struct: [...] }`;
}

/** One problem of a codec declaration: the path below it and the rule. */
export interface CodecIssue {
  path: (string | number)[];
  message: string;
}

// The value at `path` below `root` (own properties only).
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (typeof node !== "object" || node === null || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

// zod reports a union that failed as every branch's failures, nested at
// each level of a struct. Only the branch the value means applies: a string
// is a codec name, an object a struct; anything else is no codec at all.
function flattenIssues(issues: readonly z.core.$ZodIssue[], root: unknown, base: (string | number)[], out: CodecIssue[]): void {
  for (const issue of issues) {
    const path = [...base, ...(issue.path as (string | number)[])];
    if (issue.code !== "invalid_union") {
      out.push({ path, message: issue.message });
      continue;
    }
    const value = valueAt(root, path);
    const branch = typeof value === "string" ? 0 : typeof value === "object" && value !== null && !Array.isArray(value) ? 1 : undefined;
    const chosen = branch === undefined ? undefined : issue.errors[branch];
    if (chosen === undefined) out.push({ path, message: notACodec(value) });
    else flattenIssues(chosen, root, path, out);
  }
}

/**
 * Checks an untrusted codec declaration against CodecSchema (its nesting
 * first, see codecNestingIssue) and returns every problem with its path
 * below the declaration, each naming the value and the rule, e.g.
 * `struct[0].type: "bpf_spin_lock" is not a codec; one of hex, …`. Returns
 * the parsed declaration when there are none.
 */
export function parseCodec(decl: unknown): { decl: CodecDecl; issues?: undefined } | { decl?: undefined; issues: CodecIssue[] } {
  const nesting = codecNestingIssue(decl);
  if (nesting) return { issues: [{ path: nesting.path, message: nesting.rule }] };
  const parsed = CodecSchema.safeParse(decl);
  if (parsed.success) return { decl: parsed.data };
  const issues: CodecIssue[] = [];
  flattenIssues(parsed.error.issues, decl, [], issues);
  return { issues };
}

/**
 * Walks the struct arrays of an untrusted declaration without recursion (a
 * hostile one may nest thousands deep) and returns the first struct nested
 * deeper than MAX_CODEC_DEPTH, or where the fields in all exceed
 * MAX_CODEC_FIELDS, as a path below the declaration and a rule; undefined
 * when the declaration is within bounds (its shape is CodecSchema's to check).
 */
export function codecNestingIssue(decl: unknown): { path: (string | number)[]; rule: string } | undefined {
  const pending: { node: unknown; path: (string | number)[] }[] = [{ node: decl, path: [] }];
  let fields = 0;
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { node, path } = next;
    if (typeof node !== "object" || node === null || !Object.hasOwn(node, "struct")) continue;
    const struct = (node as { struct: unknown }).struct;
    if (!Array.isArray(struct)) continue;
    if (path.length / 3 + 1 > MAX_CODEC_DEPTH) return { path, rule: `structs nest deeper than ${MAX_CODEC_DEPTH} levels` };
    fields += struct.length;
    if (fields > MAX_CODEC_FIELDS) return { path, rule: `a declaration has at most ${MAX_CODEC_FIELDS} struct fields in all` };
    struct.forEach((field: unknown, index) => {
      if (typeof field === "object" && field !== null && Object.hasOwn(field, "type")) {
        pending.push({ node: (field as { type: unknown }).type, path: [...path, "struct", index, "type"] });
      }
    });
  }
  return undefined;
}

/** A value in canonical notation: what decode returns and reads back show. */
export type CanonicalValue = number | string | { [field: string]: CanonicalValue };

export type { Failure } from "./failures";

/** A value or declaration that a codec refuses; `failures` lists every problem found. */
export class CodecError extends InputError {
  constructor(failures: readonly Failure[], omitted = 0, omittedPath = "") {
    super(failures, omitted, omittedPath);
    this.name = "CodecError";
  }
}

const codecError: InputErrorMaker = (failures, omitted, omittedPath) => new CodecError(failures, omitted, omittedPath);

function fail(path: string, rule: string): never {
  throw new CodecError([{ path, rule }]);
}

/** Runs `encode`, moving a CodecError's failures into `failures`; returns undefined then. */
export function collecting<T>(failures: FailureList, encode: () => T): T | undefined {
  try {
    return encode();
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    failures.addAll(error);
    return undefined;
  }
}

/** A codec of a fixed byte size. */
export interface Codec {
  readonly size: number;
  /** C alignment of the type when used as a struct field. */
  readonly align: number;
  /** Encodes a declared value; throws CodecError naming `path` and the rule. */
  encode(value: unknown, path: string): Buffer;
  /** Decodes exactly `size` bytes to canonical notation; never throws for the right size. */
  decode(bytes: Buffer): CanonicalValue;
  /** Canonical order of encoded values (see each codec). */
  compare(a: Buffer, b: Buffer): number;
  /**
   * Integer codecs only: writes a JSON number at `offset` of `out` without
   * allocating (the hot path of large contents files). Returns false, having
   * written nothing, when the number is not one this codec takes as it is;
   * the caller then calls encode, which says why.
   */
  encodeNumberInto?(value: number, out: Buffer, offset: number): boolean;
  /** A bpf_spin_lock field: the kernel's lock word, never declared or shown (always zero in user space). */
  readonly lock?: true;
}

// The raw escape { hex: "…" }, accepted by every codec.
function rawBytes(value: unknown, size: number, path: string): Buffer | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== "hex") return undefined;
  return parseHex((value as { hex: unknown }).hex, size, `${path}.hex`);
}

function parseHex(value: unknown, size: number, path: string): Buffer {
  if (typeof value !== "string") fail(path, `${echo(value)} is not a hex string`);
  const digits = value.startsWith("0x") || value.startsWith("0X") ? value.slice(2) : value;
  // The length first: a wrong-sized value is refused without scanning it.
  if (digits.length !== size * 2) fail(path, `${echo(value)} has ${digits.length / 2} bytes, need exactly ${size}`);
  if (!/^[0-9a-fA-F]*$/.test(digits)) fail(path, `${echo(value)} is not a hex string`);
  return Buffer.from(digits, "hex");
}

const raw = (b: Buffer): CanonicalValue => ({ hex: b.toString("hex") });

function bytewise(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

function withRaw(size: number, align: number, c: Omit<Codec, "size" | "align">): Codec {
  return {
    size,
    align,
    encode(value, path) {
      return rawBytes(value, size, path) ?? c.encode(value, path);
    },
    decode: (b) => c.decode(b),
    compare: (a, b) => c.compare(a, b),
  };
}

// ---- integers

interface IntSpec {
  bytes: 1 | 2 | 4 | 8;
  signed: boolean;
  be: boolean;
}

/** What each scalar codec is: its implied byte size (none for hex and string) and, for integers, their layout. */
const SCALARS: { readonly [name in ScalarCodecName]: { readonly size?: number; readonly align?: number; readonly int?: IntSpec } } = {
  hex: {},
  string: {},
  u8: { size: 1, int: { bytes: 1, signed: false, be: false } },
  u16: { size: 2, int: { bytes: 2, signed: false, be: false } },
  u32: { size: 4, int: { bytes: 4, signed: false, be: false } },
  u64: { size: 8, int: { bytes: 8, signed: false, be: false } },
  i8: { size: 1, int: { bytes: 1, signed: true, be: false } },
  i16: { size: 2, int: { bytes: 2, signed: true, be: false } },
  i32: { size: 4, int: { bytes: 4, signed: true, be: false } },
  i64: { size: 8, int: { bytes: 8, signed: true, be: false } },
  u16be: { size: 2, int: { bytes: 2, signed: false, be: true } },
  u32be: { size: 4, int: { bytes: 4, signed: false, be: true } },
  u64be: { size: 8, int: { bytes: 8, signed: false, be: true } },
  // Alignment as C declares them: __be32, struct in6_addr (u32 words), u8[6], struct bpf_lpm_trie_key (u32 first).
  ipv4: { size: 4, align: 4 },
  ipv6: { size: 16, align: 4 },
  mac: { size: 6, align: 1 },
  lpm_ipv4: { size: 8, align: 4 },
  lpm_ipv6: { size: 20, align: 4 },
  // struct bpf_spin_lock { __u32 val; } (a struct field only; see btf.ts for its rules).
  bpf_spin_lock: { size: 4, align: 4 },
};

// Own properties only: "constructor" or "__proto__" is no codec name.
const isScalarName = (name: string): name is ScalarCodecName => Object.hasOwn(SCALARS, name);

// Decimal digits of the largest 64-bit value (18446744073709551615), and hex digits of 64 bits.
const MAX_DECIMAL_DIGITS = 20;
const MAX_HEX_DIGITS = 16;

// Parses integer notation to a number or bigint; undefined when it is none.
// Longer digit strings than any 64-bit value needs are "tooLong" (refused
// without a BigInt of a megabyte-long string, whose parsing is superlinear).
function parseInteger(value: unknown): number | bigint | "tooLong" | undefined {
  if (typeof value === "number") return value;
  if (typeof value !== "string") return undefined;
  if (/^-?(0|[1-9][0-9]*)$/.test(value)) {
    return value.replace("-", "").length > MAX_DECIMAL_DIGITS ? "tooLong" : BigInt(value);
  }
  if (/^0x[0-9a-fA-F]+$/.test(value)) {
    return value.slice(2).replace(/^0+/, "").length > MAX_HEX_DIGITS ? "tooLong" : BigInt(value);
  }
  return undefined;
}

// Reads the integer at the start of `b`: a number up to 32 bits, a bigint for
// 64 bits. Buffer's own readers, not a loop over bytes: this runs for every
// key and value of a dump.
function readInt(b: Buffer, s: IntSpec): number | bigint {
  if (s.bytes === 8) {
    if (s.be) return s.signed ? b.readBigInt64BE(0) : b.readBigUInt64BE(0);
    return s.signed ? b.readBigInt64LE(0) : b.readBigUInt64LE(0);
  }
  if (s.be) return s.signed ? b.readIntBE(0, s.bytes) : b.readUIntBE(0, s.bytes);
  return s.signed ? b.readIntLE(0, s.bytes) : b.readUIntLE(0, s.bytes);
}

function intCodec(name: string, s: IntSpec): Codec {
  const bits = BigInt(s.bytes * 8);
  const min = s.signed ? -(1n << (bits - 1n)) : 0n;
  const max = s.signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  const [minNumber, maxNumber] = [Number(min), Number(max)];
  const range = `${name} (${min}..${max})`;
  const codec = withRaw(s.bytes, s.bytes, {
    encode(value, path) {
      const v = parseInteger(value);
      if (v === undefined) fail(path, `${echo(value)} is not an integer (a number, or a decimal or 0x string)`);
      if (v === "tooLong") fail(path, `${echo(value)} does not fit ${range}`);
      if (typeof v === "number") {
        if (!Number.isInteger(v)) fail(path, `${echo(value)} is not an integer`);
        // Beyond 2^53 a double has already lost digits: insist on a string.
        if (!Number.isSafeInteger(v)) fail(path, `${echo(value)} is beyond 2^53 and has lost precision; give it as a decimal string`);
      }
      const out = Buffer.alloc(s.bytes);
      if (s.bytes === 8) {
        const big = BigInt(v);
        if (big < min || big > max) fail(path, `${echo(value)} does not fit ${range}`);
        const unsigned = BigInt.asUintN(64, big);
        if (s.be) out.writeBigUInt64BE(unsigned);
        else out.writeBigUInt64LE(unsigned);
        return out;
      }
      if (typeof v === "bigint" ? v < min || v > max : v < minNumber || v > maxNumber) {
        fail(path, `${echo(value)} does not fit ${range}`);
      }
      // Two's complement for negative values: write the unsigned equivalent.
      const n = Number(v);
      const unsigned = n < 0 ? n + 2 ** (s.bytes * 8) : n;
      if (s.be) out.writeUIntBE(unsigned, 0, s.bytes);
      else out.writeUIntLE(unsigned, 0, s.bytes);
      return out;
    },
    decode(b) {
      const v = readInt(b, s);
      // 64-bit values are always strings: JSON-based callers carry numbers as doubles.
      return typeof v === "bigint" ? v.toString() : v;
    },
    compare(a, b) {
      const x = readInt(a, s);
      const y = readInt(b, s);
      return x < y ? -1 : x > y ? 1 : 0;
    },
  });
  codec.encodeNumberInto = (value, out, offset) => {
    // Safe integers only: every one fits a 64-bit codec, and beyond 2^53 encode must refuse it.
    if (!Number.isSafeInteger(value)) return false;
    if (s.bytes === 8) {
      if (value < 0 && !s.signed) return false;
      const low = value >>> 0;
      // Floor division keeps the high word's sign for negative values (two's complement).
      const high = Math.floor(value / 0x100000000) >>> 0;
      if (s.be) {
        out.writeUInt32BE(high, offset);
        out.writeUInt32BE(low, offset + 4);
      } else {
        out.writeUInt32LE(low, offset);
        out.writeUInt32LE(high, offset + 4);
      }
      return true;
    }
    if (value < minNumber || value > maxNumber) return false;
    const unsigned = value < 0 ? value + 2 ** (s.bytes * 8) : value;
    if (s.be) out.writeUIntBE(unsigned, offset, s.bytes);
    else out.writeUIntLE(unsigned, offset, s.bytes);
    return true;
  };
  return codec;
}

// ---- addresses

function parseIpv4(text: string): Buffer | undefined {
  // Octets are decimal; leading zeros are accepted as decimal (never octal).
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return Buffer.from(octets);
}

const formatIpv4 = (b: Buffer): string => [...b].join(".");

function parseIpv6(text: string): Buffer | undefined {
  let head = text;
  let tail4: Buffer | undefined;
  const v4 = /^(.*:)([^:]*\.[^:]*)$/.exec(text);
  if (v4) {
    tail4 = parseIpv4(v4[2]!);
    if (!tail4) return undefined;
    head = `${v4[1]}0:0`;
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string): string[] | undefined => (s === "" ? [] : s.split(":"));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if (!left || !right) return undefined;
  const all = [...left, ...right];
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  if (halves.length === 1 ? all.length !== 8 : all.length > 7) return undefined;
  const words = halves.length === 1 ? all : [...left, ...Array<string>(8 - all.length).fill("0"), ...right];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(parseInt(w, 16), i * 2));
  if (tail4) tail4.copy(out, 12);
  return out;
}

/** Formats 16 bytes as RFC 5952 text; IPv4-mapped addresses as ::ffff:a.b.c.d. */
export function formatIpv6(b: Buffer): string {
  const w = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return `::ffff:${formatIpv4(b.subarray(12))}`;
  // Longest run of two or more zero groups becomes "::" (the first on a tie).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

function addrCodec(kind: "ipv4" | "ipv6"): Codec {
  const size = kind === "ipv4" ? 4 : 16;
  const parse = kind === "ipv4" ? parseIpv4 : parseIpv6;
  const format = kind === "ipv4" ? formatIpv4 : formatIpv6;
  // Network byte order, so bytewise order is address order.
  return withRaw(size, 4, {
    encode(value, path) {
      const b = typeof value === "string" ? parse(value) : undefined;
      if (!b) fail(path, `${echo(value)} is not an ${kind === "ipv4" ? "IPv4" : "IPv6"} address`);
      return b;
    },
    decode: format,
    compare: bytewise,
  });
}

const macCodec: Codec = withRaw(6, 1, {
  encode(value, path) {
    if (typeof value !== "string" || !/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(value)) {
      fail(path, `${echo(value)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
    }
    return Buffer.from(value.replace(/[:-]/g, ""), "hex");
  },
  decode: (b) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":"),
  compare: bytewise,
});

// struct bpf_lpm_trie_key: u32 prefixlen (host order) + address bytes.
function lpmCodec(kind: "ipv4" | "ipv6"): Codec {
  const addrLen = kind === "ipv4" ? 4 : 16;
  const maxPrefix = addrLen * 8;
  const parse = kind === "ipv4" ? parseIpv4 : parseIpv6;
  const format = kind === "ipv4" ? formatIpv4 : formatIpv6;
  const hostBitsClear = (addr: Buffer, prefix: number): boolean => {
    for (let bit = prefix; bit < maxPrefix; bit++) if (addr[bit >> 3]! & (0x80 >> (bit & 7))) return false;
    return true;
  };
  return withRaw(4 + addrLen, 4, {
    encode(value, path) {
      const what = `${kind === "ipv4" ? "an IPv4" : "an IPv6"} CIDR (address/prefix)`;
      if (typeof value !== "string") fail(path, `${echo(value)} is not ${what}`);
      const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(value);
      const addr = m ? parse(m[1]!) : undefined;
      if (!m || !addr) fail(path, `${echo(value)} is not ${what}`);
      // A bare address is a full-length prefix.
      const prefix = m[2] === undefined ? maxPrefix : Number(m[2]);
      if (prefix > maxPrefix) fail(path, `${echo(value)}: prefix length ${prefix} exceeds ${maxPrefix}`);
      if (!hostBitsClear(addr, prefix)) fail(path, `${echo(value)} has host bits set beyond the /${prefix} prefix`);
      const out = Buffer.alloc(4 + addrLen);
      out.writeUInt32LE(prefix, 0);
      addr.copy(out, 4);
      return out;
    },
    decode(b) {
      const prefix = b.readUInt32LE(0);
      const addr = b.subarray(4);
      if (prefix > maxPrefix || !hostBitsClear(addr, prefix)) return raw(b);
      return `${format(addr)}/${prefix}`;
    },
    // Address first, then prefix length: 10.0.0.0/8 < 10.0.0.0/16 < 10.1.0.0/16.
    compare(a, b) {
      return Buffer.compare(a.subarray(4), b.subarray(4)) || Math.sign(a.readUInt32LE(0) - b.readUInt32LE(0));
    },
  });
}

// ---- bytes and strings

function hexCodec(size: number): Codec {
  return {
    size,
    align: 1,
    encode(value, path) {
      return rawBytes(value, size, path) ?? parseHex(value, size, path);
    },
    decode: (b) => b.toString("hex"),
    compare: bytewise,
  };
}

// C-string rule: at most size-1 bytes, so the kernel side always finds a NUL
// terminator (bpf_strncmp and friends expect one), and every accepted string
// has exactly one encoding.
function stringCodec(size: number): Codec {
  return withRaw(size, 1, {
    encode(value, path) {
      if (typeof value !== "string") fail(path, `${echo(value)} is not a string`);
      if (value.includes("\0")) fail(path, `${echo(value)} contains a NUL character`);
      // Measured before it is copied: a 200 MB string for a 16-byte value costs no 200 MB buffer.
      const length = Buffer.byteLength(value, "utf8");
      if (length > size - 1) fail(path, `${echo(value)} is ${length} bytes; at most ${size - 1} fit in ${size} with the NUL terminator`);
      const bytes = Buffer.from(value, "utf8");
      const out = Buffer.alloc(size);
      bytes.copy(out);
      return out;
    },
    decode(b) {
      const end = b.indexOf(0);
      if (end < 0 || b.subarray(end).some((x) => x !== 0)) return raw(b);
      const text = b.subarray(0, end).toString("utf8");
      // Invalid UTF-8 would not survive the round trip.
      return Buffer.from(text, "utf8").equals(b.subarray(0, end)) ? text : raw(b);
    },
    compare: bytewise,
  });
}

// ---- spin locks

// The lock word of a value with a bpf_spin_lock: the kernel keeps it out of
// every user-space read and write (they read it as zero), so struct values
// leave it out and read-back does not show it. Alone it reads as {} (zero).
const spinLockCodec: Codec = {
  ...withRaw(4, 4, {
    encode(value, path) {
      const empty = typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
      if (!empty) fail(path, `${echo(value)}: a bpf_spin_lock field is the kernel's lock word; leave it out of the value`);
      return Buffer.alloc(4);
    },
    decode: (b) => (b.readUInt32LE(0) === 0 ? {} : raw(b)),
    compare: bytewise,
  }),
  lock: true,
};

// ---- structs

/** A struct field placed in the struct: its byte offset and codec. */
interface Field {
  name: string;
  offset: number;
  codec: Codec;
  /** The field's index in the declaration, and its path there (for failures). */
  index: number;
  path: string;
}

const alignUp = (offset: number, align: number): number => Math.ceil(offset / align) * align;

// A field's byte size: implied by a fixed-size type (a declared size must
// agree), else declared. Undefined (with a failure) when neither.
function fieldSize(field: StructFieldDecl, fieldPath: string, failures: FailureList): number | undefined {
  // A nested struct's declared size overrides its layout's (trailing room); its fields must fit.
  if (typeof field.type !== "string" && field.size !== undefined) return field.size;
  const implied = fixedSize(field.type);
  if (implied === undefined) {
    if (field.size === undefined) failures.add(`${fieldPath}.size`, `a ${typeof field.type === "string" ? field.type : "struct"} field needs a size`);
    return field.size;
  }
  if (field.size !== undefined && field.size !== implied) failures.add(`${fieldPath}.size`, `${echo(field.type)} is ${implied} bytes, not ${field.size}`);
  return implied;
}

// Places the fields in declaration order: each at its declared offset, else
// at the next offset its alignment allows after the previous field.
function layOut(fields: readonly StructFieldDecl[], size: number, path: string, depth: number, failures: FailureList): Field[] {
  const laid: Field[] = [];
  let end = 0;
  fields.forEach((field, index) => {
    const fieldPath = `${path}.struct[${index}]`;
    const bytes = fieldSize(field, fieldPath, failures);
    if (bytes === undefined) return;
    const codec = collecting(failures, () => buildCodec(field.type, bytes, `${fieldPath}.type`, depth + 1));
    if (!codec) return;
    const offset = field.offset ?? alignUp(end, codec.align);
    if (offset + bytes > size) failures.add(fieldPath, `field ${field.name} (offset ${offset}, ${bytes} bytes) overflows the ${size}-byte struct`);
    laid.push({ name: field.name, offset, codec, index, path: fieldPath });
    end = offset + bytes;
  });
  return laid;
}

const describeField = (field: Field): string => `field ${field.name} (offset ${field.offset}, ${field.codec.size} bytes)`;

function overlap(a: Field, b: Field): boolean {
  return a.offset < b.offset + b.codec.size && b.offset < a.offset + a.codec.size;
}

// Reports each field that overlaps a field declared before it, once. One
// sweep in offset order (n log n): `reach` is the field reaching furthest so
// far, the one a later field overlaps if it overlaps any.
function reportOverlaps(laid: readonly Field[], failures: FailureList): void {
  const byOffset = [...laid].sort((a, b) => a.offset - b.offset || a.index - b.index);
  const found: [later: Field, earlier: Field][] = [];
  let reach: Field | undefined;
  for (const field of byOffset) {
    if (reach && overlap(field, reach)) found.push(field.index > reach.index ? [field, reach] : [reach, field]);
    if (!reach || field.offset + field.codec.size > reach.offset + reach.codec.size) reach = field;
  }
  found.sort(([a], [b]) => a.index - b.index);
  for (const [later, earlier] of found) failures.add(later.path, `${describeField(later)} overlaps ${describeField(earlier)}`);
}

// Reads a user's field value: own properties only, so a field named
// "constructor" or "valueOf" is not found on Object.prototype.
function fieldValue(value: object, name: string): unknown {
  return Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
}

// Sets a decoded field as an own property ("__proto__" included: assignment
// would set the prototype instead).
function setField(out: Record<string, CanonicalValue>, name: string, value: CanonicalValue): void {
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
}

// The byte ranges no field covers, as [start, end) pairs.
function paddingRanges(laid: readonly Field[], size: number): [number, number][] {
  const ranges: [number, number][] = [];
  let covered = 0;
  for (const field of [...laid].sort((a, b) => a.offset - b.offset)) {
    if (field.offset > covered) ranges.push([covered, field.offset]);
    covered = Math.max(covered, field.offset + field.codec.size);
  }
  if (covered < size) ranges.push([covered, size]);
  return ranges;
}

// The codec of laid-out fields: encode fills each given field (missing ones
// are zero), decode shows each field unless padding is non-zero.
function fieldsCodec(laid: readonly Field[], size: number): Codec {
  const names = new Set(laid.map((field) => field.name));
  const fieldList = () => clip(laid.map((field) => field.name).join(", "), 200);
  const padding = paddingRanges(laid, size);
  const hasPadding = (bytes: Buffer): boolean => {
    for (const [start, end] of padding) for (let i = start; i < end; i++) if (bytes[i] !== 0) return true;
    return false;
  };
  const slice = (bytes: Buffer, field: Field) => bytes.subarray(field.offset, field.offset + field.codec.size);
  return withRaw(size, Math.max(1, ...laid.map((field) => field.codec.align)), {
    encode(value, path) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail(path, `${echo(value)} is not an object with fields ${fieldList()}`);
      }
      const failures = new FailureList();
      for (const name of Object.keys(value)) {
        if (!names.has(name)) failures.add(`${path}.${name}`, `unknown field (fields: ${fieldList()})`);
      }
      const out = Buffer.alloc(size);
      // Missing fields are zero, like a C designated initializer.
      for (const field of laid) {
        const given = fieldValue(value, field.name);
        if (given === undefined) continue;
        collecting(failures, () => field.codec.encode(given, `${path}.${field.name}`).copy(out, field.offset));
      }
      failures.throwIfAny(codecError);
      return out;
    },
    decode(bytes) {
      // Non-zero padding has no field to show it in: use the raw form.
      if (hasPadding(bytes)) return raw(bytes);
      const out: Record<string, CanonicalValue> = {};
      for (const field of laid) if (!field.codec.lock) setField(out, field.name, field.codec.decode(slice(bytes, field)));
      return out;
    },
    // Field by field in declaration order, then bytewise (padding) as tie-break.
    compare(a, b) {
      for (const field of laid) {
        const order = field.codec.compare(slice(a, field), slice(b, field));
        if (order) return order;
      }
      return Buffer.compare(a, b);
    },
  });
}

function structCodec(fields: readonly StructFieldDecl[], size: number, path: string, depth: number): Codec {
  const failures = new FailureList();
  const laid = layOut(fields, size, path, depth, failures);
  reportOverlaps(laid, failures);
  failures.throwIfAny(codecError);
  return fieldsCodec(laid, size);
}

// A declaration's C alignment: an integer's own size, a struct's largest member's, 1 for bytes.
function alignOf(decl: CodecDecl): number {
  if (typeof decl === "string") return isScalarName(decl) ? SCALARS[decl].align ?? SCALARS[decl].int?.bytes ?? 1 : 1;
  return Math.max(1, ...decl.struct.map((field) => alignOf(field.type)));
}

/**
 * Returns the size a codec implies (u32: 4, mac: 6, lpm_ipv4: 8, …), or
 * undefined for hex and string. A struct implies its C layout's size: each
 * field at its declared offset or the next offset its alignment allows,
 * the whole padded to its largest member's alignment (`{ u8, u32 }` is 8);
 * undefined when a field's size is not implied (hex or string without a
 * declared size). Expects a declaration that passed CodecSchema.
 */
export function fixedSize(decl: CodecDecl): number | undefined {
  if (typeof decl === "string") return isScalarName(decl) ? SCALARS[decl].size : undefined;
  let end = 0;
  let extent = 0;
  for (const field of decl.struct) {
    const bytes = typeof field.type === "string" || field.size === undefined ? fixedSize(field.type) ?? field.size : field.size;
    if (bytes === undefined) return undefined;
    const offset = field.offset ?? alignUp(end, alignOf(field.type));
    end = offset + bytes;
    extent = Math.max(extent, end);
  }
  return alignUp(extent, alignOf(decl));
}

/**
 * Builds the codec for a declaration and a byte size (the map's key or value
 * size). Throws CodecError (paths under `path`) when the declaration does not
 * fit the size: a u32 for a 2-byte key, a struct field beyond the end, two
 * fields overlapping, a string of size 0, structs nested deeper than
 * MAX_CODEC_DEPTH.
 */
export function makeCodec(decl: CodecDecl, size: number, path = ""): Codec {
  if (typeof decl !== "string") {
    // Callers normally pass a declaration checked by CodecSchema; check it
    // anyway (once, here: nested structs are then built without re-parsing),
    // its nesting first, so that the recursive schema never overflows the stack.
    const { issues } = parseCodec(decl);
    if (issues) {
      const failures = new FailureList();
      for (const issue of issues) failures.add(joinPath(path, issue.path) || "codec", issue.message);
      failures.throwIfAny(codecError);
    }
  }
  return buildCodec(decl, size, path, 1);
}

function joinPath(base: string, keys: readonly PropertyKey[]): string {
  let out = base;
  for (const key of keys) out += typeof key === "number" ? `[${key}]` : `.${String(key)}`;
  return out;
}

// makeCodec without the schema check; `depth` counts struct levels.
function buildCodec(decl: CodecDecl, size: number, path: string, depth: number): Codec {
  if (!Number.isInteger(size) || size < 0) fail(path, `size ${echo(size)} is not a byte count`);
  if (typeof decl !== "string") return structCodec(decl.struct, size, path, depth);
  if (!isScalarName(decl)) fail(path, `unknown codec ${echo(decl)}`);
  const { size: implied, int } = SCALARS[decl];
  if (implied !== undefined && implied !== size) {
    const why = decl.startsWith("lpm_") ? ` (u32 prefix length + ${implied - 4} address bytes)` : "";
    fail(path, `${decl} needs a size of ${implied} bytes${why}, not ${size}`);
  }
  if (int) return intCodec(decl, int);
  switch (decl) {
    case "hex":
      return hexCodec(size);
    case "string":
      if (size < 1) fail(path, "string needs a size of at least 1 (room for the NUL)");
      return stringCodec(size);
    case "ipv4":
    case "ipv6":
      return addrCodec(decl);
    case "mac":
      return macCodec;
    case "lpm_ipv4":
      return lpmCodec("ipv4");
    case "lpm_ipv6":
      return lpmCodec("ipv6");
    case "bpf_spin_lock":
      return spinLockCodec;
  }
  return fail(path, `unknown codec ${echo(decl)}`);
}

// ---- per-CPU values

/** Bytes per CPU in a per-CPU value buffer: round_up(valueSize, 8), as the kernel lays it out. */
export function perCpuStride(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/** A per-CPU value as declared: one value for every CPU, or one per CPU. */
export type PerCpuInput = { value: unknown; perCpuValues?: undefined } | { value?: undefined; perCpuValues: readonly unknown[] };

/** A per-CPU value in canonical notation: `{ value }` when all CPUs agree, else `{ perCpuValues }`. */
export type PerCpuCanonical = { value: CanonicalValue } | { perCpuValues: CanonicalValue[] };

/**
 * Encodes a per-CPU value to the kernel's buffer of cpus × perCpuStride bytes
 * (padding zero). `value` is written to every CPU; `perCpuValues` must have
 * exactly `cpus` items. Throws CodecError naming `path` (…value or
 * …perCpuValues[i]).
 */
export function encodePerCpu(codec: Codec, input: PerCpuInput, cpus: number, path: string): Buffer {
  const stride = perCpuStride(codec.size);
  const out = Buffer.alloc(stride * cpus);
  if (input.perCpuValues !== undefined) {
    if (input.perCpuValues.length !== cpus) {
      fail(`${path}.perCpuValues`, `has ${input.perCpuValues.length} values; this host has ${cpus} possible CPUs`);
    }
    const failures = new FailureList();
    input.perCpuValues.forEach((value, cpu) => {
      collecting(failures, () => codec.encode(value, `${path}.perCpuValues[${cpu}]`).copy(out, cpu * stride));
    });
    failures.throwIfAny(codecError);
    return out;
  }
  const one = codec.encode(input.value, `${path}.value`);
  for (let i = 0; i < cpus; i++) one.copy(out, i * stride);
  return out;
}

/**
 * Decodes the kernel's per-CPU buffer (cpus × perCpuStride bytes; the padding
 * of each slot is ignored). Returns `{ value }` when every CPU holds the same
 * bytes, else `{ perCpuValues }`. Throws if the buffer has the wrong length.
 */
export function decodePerCpu(codec: Codec, bytes: Buffer, cpus: number): PerCpuCanonical {
  const stride = perCpuStride(codec.size);
  if (bytes.length !== stride * cpus) throw new Error(`per-CPU buffer of ${bytes.length} bytes, expected ${stride * cpus}`);
  const slots = Array.from({ length: cpus }, (_, i) => bytes.subarray(i * stride, i * stride + codec.size));
  if (slots.every((s) => s.equals(slots[0]!))) return { value: codec.decode(slots[0]!) };
  return { perCpuValues: slots.map((s) => codec.decode(s)) };
}
