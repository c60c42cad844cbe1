// BTF (BPF Type Format) for map keys and values, both ways: the wire format
// of a blob (header, type section, string section) encoded from codec
// declarations, and decoded from a live map's BTF into types, shapes and
// derived codec declarations. The layout rules follow include/uapi/linux/btf.h.
import { fixedSize, type CodecDecl, type ScalarCodecName, type StructFieldDecl } from "./codecs";

/** BTF kinds (BTF_KIND_*) this module writes or reads. */
export const BTF_KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

const BTF_MAGIC = 0xeb9f;
/** The most members a BTF STRUCT can have (its vlen is 16 bits). */
export const BTF_MAX_MEMBERS = 0xffff;
const HEADER_BYTES = 24;
const INT_SIGNED = 1;

// ---- encoding

/** One member of a STRUCT as encoded. */
interface MemberDesc {
  name: string;
  typeId: number;
  /** Offset in bits. */
  bitOffset: number;
}

/** Builds a BTF blob type by type; IDs start at 1 (0 is void). */
export class BtfBuilder {
  readonly #types: Buffer[] = [];
  readonly #strings: Buffer[] = [Buffer.from([0])];
  #stringBytes = 1;
  readonly #stringIds = new Map<string, number>();
  readonly #named = new Map<string, number>();
  /** The declaration path each type ID was made for (to name the field a kernel refusal is about). */
  readonly paths = new Map<number, string>();

  #string(text: string): number {
    if (text === "") return 0;
    const known = this.#stringIds.get(text);
    if (known !== undefined) return known;
    const offset = this.#stringBytes;
    const bytes = Buffer.from(`${text}\0`, "utf8");
    this.#strings.push(bytes);
    this.#stringBytes += bytes.length;
    this.#stringIds.set(text, offset);
    return offset;
  }

  #add(name: string, kind: number, vlen: number, sizeOrType: number, extra: Buffer, path?: string): number {
    const head = Buffer.alloc(12);
    head.writeUInt32LE(this.#string(name), 0);
    head.writeUInt32LE(((kind & 0x1f) << 24) | (vlen & 0xffff), 4);
    head.writeUInt32LE(sizeOrType >>> 0, 8);
    this.#types.push(Buffer.concat([head, extra]));
    const id = this.#types.length;
    if (path !== undefined) this.paths.set(id, path);
    return id;
  }

  // A named type made once per blob (ints, typedefs, bpf_spin_lock).
  #once(key: string, make: () => number): number {
    let id = this.#named.get(key);
    if (id === undefined) {
      id = make();
      this.#named.set(key, id);
    }
    return id;
  }

  /** An INT named `name` of `bytes` bytes. */
  int(name: string, bytes: number, signed: boolean): number {
    return this.#once(`int:${name}`, () => {
      const encoding = Buffer.alloc(4);
      encoding.writeUInt32LE(((signed ? INT_SIGNED : 0) << 24) | (bytes * 8));
      return this.#add(name, BTF_KIND.INT, 0, bytes, encoding);
    });
  }

  /** A TYPEDEF `name` of `typeId`. */
  typedef(name: string, typeId: number): number {
    return this.#once(`typedef:${name}`, () => this.#add(name, BTF_KIND.TYPEDEF, 0, typeId, Buffer.alloc(0)));
  }

  /** An ARRAY of `count` elements of `elemId`. */
  array(elemId: number, count: number, path?: string): number {
    const index = this.int("__ARRAY_SIZE_TYPE__", 4, false);
    const extra = Buffer.alloc(12);
    extra.writeUInt32LE(elemId, 0);
    extra.writeUInt32LE(index, 4);
    extra.writeUInt32LE(count, 8);
    return this.#add("", BTF_KIND.ARRAY, 0, 0, extra, path);
  }

  /** A STRUCT of `size` bytes with `members` (offsets in bits). */
  struct(name: string, size: number, members: readonly MemberDesc[], path?: string): number {
    const extra = Buffer.alloc(12 * members.length);
    members.forEach((member, i) => {
      extra.writeUInt32LE(this.#string(member.name), i * 12);
      extra.writeUInt32LE(member.typeId, i * 12 + 4);
      extra.writeUInt32LE(member.bitOffset, i * 12 + 8);
    });
    return this.#add(name, BTF_KIND.STRUCT, members.length, size, extra, path);
  }

  /** The blob: header, type section, string section. */
  build(): Buffer {
    const types = Buffer.concat(this.#types);
    const strings = Buffer.concat(this.#strings);
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt16LE(BTF_MAGIC, 0);
    header.writeUInt8(1, 2); // version
    header.writeUInt8(0, 3); // flags
    header.writeUInt32LE(HEADER_BYTES, 4);
    header.writeUInt32LE(0, 8); // type_off
    header.writeUInt32LE(types.length, 12);
    header.writeUInt32LE(types.length, 16); // str_off
    header.writeUInt32LE(strings.length, 20);
    return Buffer.concat([header, types, strings]);
  }
}

// The C names of the integer codecs: the int, and the typedef a BPF program's headers use.
const INT_NAMES: Partial<Record<ScalarCodecName, { typedef: string; int: string; bytes: number; signed: boolean; base?: ScalarCodecName }>> = {
  u8: { typedef: "__u8", int: "unsigned char", bytes: 1, signed: false },
  u16: { typedef: "__u16", int: "unsigned short", bytes: 2, signed: false },
  u32: { typedef: "__u32", int: "unsigned int", bytes: 4, signed: false },
  u64: { typedef: "__u64", int: "unsigned long long", bytes: 8, signed: false },
  i8: { typedef: "__s8", int: "signed char", bytes: 1, signed: true },
  i16: { typedef: "__s16", int: "short", bytes: 2, signed: true },
  i32: { typedef: "__s32", int: "int", bytes: 4, signed: true },
  i64: { typedef: "__s64", int: "long long", bytes: 8, signed: true },
  // Network byte order: typedefs of the unsigned types, as linux/types.h has them.
  u16be: { typedef: "__be16", int: "", bytes: 2, signed: false, base: "u16" },
  u32be: { typedef: "__be32", int: "", bytes: 4, signed: false, base: "u32" },
  u64be: { typedef: "__be64", int: "", bytes: 8, signed: false, base: "u64" },
  ipv4: { typedef: "__be32", int: "", bytes: 4, signed: false, base: "u32" },
};

/** A codec with no BTF form: where it is, and why. */
export interface BtfIssue {
  path: string;
  rule: string;
}

// C alignment of a declaration, as codecs.ts lays structs out.
const SCALAR_ALIGN: Partial<Record<ScalarCodecName, number>> = {
  u8: 1, u16: 2, u32: 4, u64: 8, i8: 1, i16: 2, i32: 4, i64: 8, u16be: 2, u32be: 4, u64be: 8,
  ipv4: 4, ipv6: 4, mac: 1, lpm_ipv4: 4, lpm_ipv6: 4, bpf_spin_lock: 4,
};
function alignOf(decl: CodecDecl): number {
  if (typeof decl === "string") return SCALAR_ALIGN[decl] ?? 1;
  return Math.max(1, ...decl.struct.map((field) => alignOf(field.type)));
}
const alignUp = (offset: number, align: number): number => Math.ceil(offset / align) * align;

/** A struct field placed: offset and byte size, as codecs.ts places it. */
export interface PlacedField {
  field: StructFieldDecl;
  index: number;
  offset: number;
  size: number;
}

/** Places the fields of a checked struct declaration (declared offsets, else natural alignment). */
export function placeFields(fields: readonly StructFieldDecl[]): PlacedField[] {
  let end = 0;
  return fields.map((field, index) => {
    const size = typeof field.type !== "string" && field.size !== undefined ? field.size : fixedSize(field.type) ?? field.size ?? 0;
    const offset = field.offset ?? alignUp(end, alignOf(field.type));
    end = offset + size;
    return { field, index, offset, size };
  });
}

/**
 * Adds the BTF type of a checked declaration of `size` bytes to `builder`
 * and returns its ID; `topLevel` is the key or value itself (where hex has
 * no BTF form). Throws BtfFormError naming the path of a codec that has none.
 */
export function addCodecType(builder: BtfBuilder, decl: CodecDecl, size: number, path: string, topLevel = true): number {
  if (typeof decl !== "string") {
    if (decl.struct.length > BTF_MAX_MEMBERS) throw new BtfFormError(path, `a struct of ${decl.struct.length} fields has no BTF form (BTF has at most ${BTF_MAX_MEMBERS} per struct)`);
    const members = placeFields(decl.struct).map((placed) => ({
      name: placed.field.name,
      typeId: addCodecType(builder, placed.field.type, placed.size, `${path}.struct[${placed.index}].type`, false),
      bitOffset: placed.offset * 8,
    }));
    return builder.struct("", size, members, path);
  }
  const int = INT_NAMES[decl];
  if (int !== undefined) {
    if (int.base !== undefined) return builder.typedef(int.typedef, addCodecType(builder, int.base, int.bytes, path, false));
    return builder.typedef(int.typedef, builder.int(int.int, int.bytes, int.signed));
  }
  const u8 = () => builder.typedef("__u8", builder.int("unsigned char", 1, false));
  switch (decl) {
    case "hex":
      if (topLevel) throw new BtfFormError(path, "hex has no BTF form (declare a typed codec, or set btf: false)");
      return builder.array(u8(), size, path);
    case "string":
      return builder.array(builder.int("char", 1, true), size, path);
    case "ipv6":
      return builder.array(u8(), 16, path);
    case "mac":
      return builder.array(u8(), 6, path);
    case "lpm_ipv4":
    case "lpm_ipv6": {
      // struct bpf_lpm_trie_key with its data sized: { __u32 prefixlen; __u8 data[N]; }
      const bytes = decl === "lpm_ipv4" ? 4 : 16;
      const prefixlen = addCodecType(builder, "u32", 4, path, false);
      const data = builder.array(u8(), bytes, path);
      return builder.struct(`bpf_lpm_trie_key_${decl.slice(4)}`, 4 + bytes, [
        { name: "prefixlen", typeId: prefixlen, bitOffset: 0 },
        { name: "data", typeId: data, bitOffset: 32 },
      ], path);
    }
    case "bpf_spin_lock": {
      // The kernel finds a lock by this struct name: struct bpf_spin_lock { __u32 val; }.
      const val = addCodecType(builder, "u32", 4, path, false);
      return builder.struct("bpf_spin_lock", 4, [{ name: "val", typeId: val, bitOffset: 0 }], path);
    }
  }
  throw new BtfFormError(path, `${decl} has no BTF form`);
}

/** A codec without a BTF form, at `path`. */
export class BtfFormError extends Error {
  constructor(readonly path: string, readonly rule: string) {
    super(`${path}: ${rule}`);
    this.name = "BtfFormError";
  }
}

/** A map's key and value types as one BTF blob. */
export interface MapBtf {
  /** The raw blob for BPF_BTF_LOAD. */
  data: Buffer;
  /** The key's type ID; 0 for maps without keys. */
  keyTypeId: number;
  valueTypeId: number;
  /** The declaration path of each type ID (for the kernel's refusals). */
  paths: ReadonlyMap<number, string>;
}

/**
 * Encodes the BTF of a map's key and value declarations (key null: the map
 * has no keys). Throws BtfFormError naming the codec with no BTF form.
 */
export function encodeMapBtf(key: { decl: CodecDecl; size: number } | null, value: { decl: CodecDecl; size: number }): MapBtf {
  const builder = new BtfBuilder();
  const keyTypeId = key === null ? 0 : addCodecType(builder, key.decl, key.size, "keyType");
  const valueTypeId = addCodecType(builder, value.decl, value.size, "valueType");
  return { data: builder.build(), keyTypeId, valueTypeId, paths: builder.paths };
}

/** The declaration path a BTF verifier log is about: its last "[id]" mention, looked up in `paths`. */
export function pathInBtfLog(log: string, paths: ReadonlyMap<number, string>): string | undefined {
  const ids = [...log.matchAll(/\[(\d+)\]/g)].map((match) => Number(match[1]));
  for (const id of ids.reverse()) {
    const path = paths.get(id);
    if (path !== undefined) return path;
  }
  return undefined;
}

// ---- decoding

/** One BTF type as read from a blob. */
export interface BtfType {
  kind: number;
  name: string;
  /** size for INT/STRUCT/UNION/ENUM/ENUM64/FLOAT/DATASEC, else a type ID. */
  sizeOrType: number;
  kindFlag: boolean;
  /** INT: encoding and bits. */
  intEncoding?: number;
  intBits?: number;
  /** ARRAY: element type and count. */
  array?: { elemId: number; count: number };
  /** STRUCT/UNION members. */
  members?: { name: string; typeId: number; bitOffset: number; bitfieldSize: number }[];
}

/** A parsed BTF blob: types by ID (index 0 is void). */
export class BtfTypes {
  readonly types: (BtfType | undefined)[];

  /** Parses a raw blob; throws on a malformed one. */
  constructor(data: Buffer) {
    if (data.length < HEADER_BYTES || data.readUInt16LE(0) !== BTF_MAGIC) throw new Error("not a BTF blob (bad magic)");
    const headerLength = data.readUInt32LE(4);
    const typeStart = headerLength + data.readUInt32LE(8);
    const typeEnd = typeStart + data.readUInt32LE(12);
    const stringStart = headerLength + data.readUInt32LE(16);
    const stringEnd = stringStart + data.readUInt32LE(20);
    if (typeEnd > data.length || stringEnd > data.length) throw new Error("BTF sections run past the blob");
    const text = (offset: number): string => {
      const start = stringStart + offset;
      const end = data.indexOf(0, start);
      return data.toString("utf8", start, end < 0 || end > stringEnd ? stringEnd : end);
    };
    this.types = [undefined];
    for (let at = typeStart; at < typeEnd;) {
      const info = data.readUInt32LE(at + 4);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const type: BtfType = { kind, name: text(data.readUInt32LE(at)), sizeOrType: data.readUInt32LE(at + 8), kindFlag: (info >>> 31) === 1 };
      at += 12;
      switch (kind) {
        case BTF_KIND.INT: {
          const encoding = data.readUInt32LE(at);
          type.intEncoding = (encoding >>> 24) & 0x0f;
          type.intBits = encoding & 0xff;
          at += 4;
          break;
        }
        case BTF_KIND.ARRAY:
          type.array = { elemId: data.readUInt32LE(at), count: data.readUInt32LE(at + 8) };
          at += 12;
          break;
        case BTF_KIND.STRUCT:
        case BTF_KIND.UNION:
          type.members = [];
          for (let i = 0; i < vlen; i++, at += 12) {
            const offset = data.readUInt32LE(at + 8);
            type.members.push({
              name: text(data.readUInt32LE(at)),
              typeId: data.readUInt32LE(at + 4),
              bitOffset: type.kindFlag ? offset & 0xffffff : offset,
              bitfieldSize: type.kindFlag ? offset >>> 24 : 0,
            });
          }
          break;
        case BTF_KIND.ENUM: at += 8 * vlen; break;
        case BTF_KIND.ENUM64: at += 12 * vlen; break;
        case BTF_KIND.FUNC_PROTO: at += 8 * vlen; break;
        case BTF_KIND.VAR: at += 4; break;
        case BTF_KIND.DATASEC: at += 12 * vlen; break;
        case BTF_KIND.DECL_TAG: at += 4; break;
        default: break;
      }
      this.types.push(type);
    }
  }

  /** The type with ID `id`; throws when there is none. */
  get(id: number): BtfType {
    const type = this.types[id];
    if (type === undefined) throw new Error(`BTF has no type ${id}`);
    return type;
  }

  /** Follows typedefs and qualifiers to the type they name; returns it and the outermost typedef's name. */
  resolve(id: number): { type: BtfType | undefined; typedef?: string } {
    let typedef: string | undefined;
    for (let hops = 0; hops < 64; hops++) {
      if (id === 0) return { type: undefined, typedef };
      const type = this.get(id);
      if (type.kind === BTF_KIND.TYPEDEF) typedef ??= type.name;
      if (![BTF_KIND.TYPEDEF, BTF_KIND.CONST, BTF_KIND.VOLATILE, BTF_KIND.RESTRICT, BTF_KIND.TYPE_TAG].includes(type.kind as 8)) {
        return { type, typedef };
      }
      id = type.sizeOrType;
    }
    throw new Error("BTF typedef chain too long");
  }

  /** The byte size of type `id` (0 for void). */
  sizeOf(id: number): number {
    const { type } = this.resolve(id);
    if (type === undefined) return 0;
    if (type.kind === BTF_KIND.ARRAY) return type.array!.count * this.sizeOf(type.array!.elemId);
    if (type.kind === BTF_KIND.PTR) return 8;
    return type.sizeOrType;
  }

  /** Whether type `id` is, or holds (in a struct), a struct bpf_spin_lock. */
  hasSpinLock(id: number): boolean {
    const { type } = this.resolve(id);
    if (type?.kind !== BTF_KIND.STRUCT) return false;
    if (type.name === "bpf_spin_lock") return true;
    return type.members!.some((member) => this.hasSpinLock(member.typeId));
  }
}

// ---- derived codecs

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BE_TYPEDEFS: Record<string, ScalarCodecName> = { __be16: "u16be", __be32: "u32be", __be64: "u64be" };

/**
 * The codec declaration that expresses BTF type `id` (`size` bytes): ints as
 * u8…i64 (__be16/32/64 as u16be…, enums as their int), structs with their
 * member names and offsets, a bpf_spin_lock as bpf_spin_lock, char arrays as
 * string, and everything else (other arrays, unions, pointers, floats,
 * bitfields, anonymous members) as hex. Inside a struct, a field whose
 * codec implies no size (hex, string) or another size gets its own `size`.
 * Never throws for a type of the blob; throws for an ID it does not have.
 */
export function deriveCodec(btf: BtfTypes, id: number): CodecDecl {
  const { type, typedef } = btf.resolve(id);
  if (type === undefined) return "hex";
  if (typedef !== undefined && BE_TYPEDEFS[typedef] && type.kind === BTF_KIND.INT) return BE_TYPEDEFS[typedef]!;
  const ints: Record<number, [ScalarCodecName, ScalarCodecName]> = { 1: ["u8", "i8"], 2: ["u16", "i16"], 4: ["u32", "i32"], 8: ["u64", "i64"] };
  if (type.kind === BTF_KIND.INT && ints[type.sizeOrType] && type.intBits === type.sizeOrType * 8) {
    return ints[type.sizeOrType]![(type.intEncoding! & INT_SIGNED) !== 0 ? 1 : 0];
  }
  if ((type.kind === BTF_KIND.ENUM || type.kind === BTF_KIND.ENUM64) && ints[type.sizeOrType]) {
    return ints[type.sizeOrType]![type.kindFlag ? 1 : 0];
  }
  if (type.kind === BTF_KIND.ARRAY) {
    const elem = btf.resolve(type.array!.elemId).type;
    const isChar = elem?.kind === BTF_KIND.INT && elem.sizeOrType === 1 && (elem.name === "char" || (elem.intEncoding! & 2) !== 0);
    return isChar && type.array!.count > 0 ? "string" : "hex";
  }
  if (type.kind === BTF_KIND.STRUCT) {
    if (type.name === "bpf_spin_lock") return "bpf_spin_lock";
    const members = type.members!;
    const names = new Set(members.map((member) => member.name));
    const expressible = members.length > 0 && names.size === members.length && members.every((member) =>
      member.bitfieldSize === 0 && member.bitOffset % 8 === 0 && FIELD_NAME.test(member.name) && member.name !== "hex");
    if (!expressible) return "hex";
    const fields: StructFieldDecl[] = [];
    let end = 0;
    for (const member of members) {
      const type = deriveCodec(btf, member.typeId);
      const size = btf.sizeOf(member.typeId);
      const offset = member.bitOffset / 8;
      const field: StructFieldDecl = { name: member.name, type };
      const implied = fixedSize(type);
      if (implied === undefined || (typeof type !== "string" && implied !== size)) field.size = size;
      // An offset only where the natural layout would put the field elsewhere.
      if (offset !== alignUp(end, alignOf(type))) field.offset = offset;
      end = offset + size;
      fields.push(field);
    }
    return { struct: fields };
  }
  return "hex";
}

// ---- shapes (the ABI compare)

/** What the ABI compare sees of a type: structs by member, everything else by size (and spin locks). */
export type BtfShape =
  | { kind: "bytes"; size: number }
  | { kind: "lock" }
  | { kind: "struct"; size: number; members: { name: string; offset: number; shape: BtfShape }[] };

/** The shape of BTF type `id`. */
export function shapeOf(btf: BtfTypes, id: number): BtfShape {
  const { type } = btf.resolve(id);
  if (type?.kind === BTF_KIND.STRUCT && type.name === "bpf_spin_lock") return { kind: "lock" };
  if (type?.kind === BTF_KIND.STRUCT) {
    return {
      kind: "struct",
      size: type.sizeOrType,
      members: type.members!.map((member) => ({ name: member.name, offset: member.bitOffset / 8, shape: shapeOf(btf, member.typeId) })),
    };
  }
  return { kind: "bytes", size: btf.sizeOf(id) };
}

function describeShape(shape: BtfShape): string {
  if (shape.kind === "lock") return "a bpf_spin_lock";
  if (shape.kind === "bytes") return `${shape.size} bytes`;
  return `a struct of ${shape.size} bytes { ${shape.members.map((member) => member.name || "(anonymous)").join(", ")} }`;
}

/**
 * The first place where two shapes differ, as `path: declared …, live …`
 * (struct members by position), or undefined when they agree.
 */
export function shapeDifference(declared: BtfShape, live: BtfShape, path: string): string | undefined {
  const differ = () => `${path}: declared ${describeShape(declared)}, live ${describeShape(live)}`;
  if (declared.kind !== live.kind) return differ();
  if (declared.kind === "lock" || live.kind === "lock") return undefined;
  if (declared.kind === "bytes" || live.kind === "bytes") return declared.size === live.size ? undefined : differ();
  if (declared.size !== live.size || declared.members.length !== live.members.length) return differ();
  for (let i = 0; i < declared.members.length; i++) {
    const [mine, theirs] = [declared.members[i]!, live.members[i]!];
    const at = `${path}.struct[${i}]`;
    if (mine.name !== theirs.name || mine.offset !== theirs.offset) {
      return `${at}: declared field ${mine.name} (offset ${mine.offset}), live field ${theirs.name || "(anonymous)"} (offset ${theirs.offset})`;
    }
    const inner = shapeDifference(mine.shape, theirs.shape, `${at}.type`);
    if (inner !== undefined) return inner;
  }
  return undefined;
}
