// Key/value codecs: round trips, canonical forms, edge values, struct layout
// errors, per-CPU buffers. No kernel needed.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SpecError, checkSpec } from "../provider/core/spec.js";
import {
  CodecDecl, CodecError, CodecSchema, SCALAR_CODECS, decodePerCpu, encodePerCpu, fixedSize, formatIpv6, makeCodec, perCpuStride,
} from "../provider/core/codecs.js";

// Asserts encode gives `hex`, and decode(encode(x)) gives `canonical`.
function roundTrip(decl: CodecDecl, size: number, input: unknown, hex: string, canonical: unknown = input): void {
  const c = makeCodec(decl, size);
  const bytes = c.encode(input, "v");
  assert.equal(bytes.toString("hex"), hex, `encode ${JSON.stringify(input)}`);
  assert.deepEqual(c.decode(bytes), canonical, `decode ${hex}`);
  assert.equal(c.encode(c.decode(bytes), "v").toString("hex"), hex);
}

function refuses(decl: CodecDecl, size: number, input: unknown, rule: RegExp, path = "v"): void {
  const c = makeCodec(decl, size);
  assert.throws(() => c.encode(input, path), (e: unknown) => {
    assert.ok(e instanceof CodecError, String(e));
    assert.match(e.message, rule);
    assert.ok(e.failures.every((f) => f.path.startsWith(path)), e.message);
    return true;
  });
}

describe("codecs", () => {
  describe("integers", () => {
    it("round-trip edge values in host (little endian) order", () => {
      roundTrip("u8", 1, 0, "00");
      roundTrip("u8", 1, 255, "ff");
      roundTrip("u16", 2, 65535, "ffff");
      roundTrip("u32", 4, 1, "01000000");
      roundTrip("u32", 4, 4294967295, "ffffffff");
      roundTrip("i8", 1, -128, "80");
      roundTrip("i16", 2, -2, "feff");
      roundTrip("i32", 4, -2147483648, "00000080");
      roundTrip("u32", 4, "0x10", "10000000", 16);
      roundTrip("u32", 4, "7", "07000000", 7);
    });
    it("carry 64-bit values as decimal strings, beyond 2^53 too", () => {
      roundTrip("u64", 8, 0, "0000000000000000", "0");
      roundTrip("u64", 8, "18446744073709551615", "ffffffffffffffff");
      roundTrip("u64", 8, "9007199254740993", "0100000000002000");
      roundTrip("i64", 8, "-9223372036854775808", "0000000000000080");
      roundTrip("i64", 8, -1, "ffffffffffffffff", "-1");
    });
    it("network order", () => {
      roundTrip("u16be", 2, 80, "0050");
      roundTrip("u32be", 4, 0x01020304, "01020304");
      roundTrip("u64be", 8, "1", "0000000000000001");
    });
    it("refuse what does not fit, naming the range", () => {
      refuses("u8", 1, 300, /^v: 300 does not fit u8 \(0\.\.255\)$/);
      refuses("i8", 1, -129, /does not fit i8 \(-128\.\.127\)/);
      refuses("u32", 4, -1, /does not fit u32/);
      refuses("u64", 8, "18446744073709551616", /does not fit u64/);
      refuses("u64", 8, 2 ** 60, /beyond 2\^53.*decimal string/);
      refuses("u32", 4, 1.5, /not an integer/);
      refuses("u32", 4, "01", /not an integer/);
      refuses("u32", 4, true, /not an integer/);
    });
    it("compare numerically (index 2 before 256, -1 before 0)", () => {
      const c = makeCodec("u32", 4);
      assert.ok(c.compare(c.encode(2, ""), c.encode(256, "")) < 0);
      const s = makeCodec("i64", 8);
      assert.ok(s.compare(s.encode(-1, ""), s.encode(0, "")) < 0);
      assert.equal(s.compare(s.encode("5", ""), s.encode(5, "")), 0);
    });
    it("need their own size", () => {
      assert.throws(() => makeCodec("u32", 8, "keyType"), /^CodecError: keyType: u32 needs a size of 4 bytes, not 8$/);
    });
  });

  describe("hex", () => {
    it("takes exactly size bytes, canonical lower case", () => {
      roundTrip("hex", 3, "0xABcdef", "abcdef", "abcdef");
      roundTrip("hex", 0, "", "", "");
      refuses("hex", 2, "abc", /not a hex string|bytes/);
      refuses("hex", 2, "abcdef", /has 3 bytes, need exactly 2/);
    });
  });

  describe("addresses", () => {
    it("ipv4 in network order, leading zeros decimal", () => {
      roundTrip("ipv4", 4, "10.0.0.1", "0a000001");
      roundTrip("ipv4", 4, "10.000.0.010", "0a00000a", "10.0.0.10");
      roundTrip("ipv4", 4, "255.255.255.255", "ffffffff");
      refuses("ipv4", 4, "256.0.0.1", /not an IPv4 address/);
      refuses("ipv4", 4, "1.2.3", /not an IPv4 address/);
    });
    it("ipv6 canonical RFC 5952", () => {
      roundTrip("ipv6", 16, "::1", "00000000000000000000000000000001");
      roundTrip("ipv6", 16, "::", "00000000000000000000000000000000");
      roundTrip("ipv6", 16, "::ffff:1.2.3.4", "00000000000000000000ffff01020304");
      roundTrip("ipv6", 16, "::FFFF:0102:0304", "00000000000000000000ffff01020304", "::ffff:1.2.3.4");
      roundTrip("ipv6", 16, "2001:DB8:0:0:1:0:0:1", "20010db8000000000001000000000001", "2001:db8::1:0:0:1");
      roundTrip("ipv6", 16, "2001:db8:0:1:1:1:1:1", "20010db8000000010001000100010001", "2001:db8:0:1:1:1:1:1");
      roundTrip("ipv6", 16, "fe80::", "fe800000000000000000000000000000");
      refuses("ipv6", 16, "1::2::3", /not an IPv6 address/);
      refuses("ipv6", 16, "fe80::1%eth0", /not an IPv6 address/);
      refuses("ipv6", 16, "1:2:3:4:5:6:7:8:9", /not an IPv6 address/);
      assert.equal(formatIpv6(Buffer.from("00010000000000000000000000000000", "hex")), "1::");
    });
    it("mac canonical lower case with colons", () => {
      roundTrip("mac", 6, "AA-BB-CC-DD-EE-0F", "aabbccddee0f", "aa:bb:cc:dd:ee:0f");
      refuses("mac", 6, "aa:bb:cc", /not a MAC address/);
    });
    it("compare in address order", () => {
      const c = makeCodec("ipv4", 4);
      assert.ok(c.compare(c.encode("9.255.255.255", ""), c.encode("10.0.0.0", "")) < 0);
    });
  });

  describe("lpm", () => {
    it("encodes prefix length in host order + address", () => {
      roundTrip("lpm_ipv4", 8, "10.0.0.0/8", "080000000a000000");
      roundTrip("lpm_ipv4", 8, "0.0.0.0/0", "0000000000000000");
      roundTrip("lpm_ipv4", 8, "192.168.1.1/32", "20000000c0a80101");
      roundTrip("lpm_ipv4", 8, "192.168.1.1", "20000000c0a80101", "192.168.1.1/32");
      roundTrip("lpm_ipv6", 20, "2001:db8::/32", "2000000020010db8000000000000000000000000");
      roundTrip("lpm_ipv6", 20, "::1/128", "8000000000000000000000000000000000000001");
      roundTrip("lpm_ipv6", 20, "::/0", "0000000000000000000000000000000000000000");
    });
    it("refuses host bits and long prefixes", () => {
      refuses("lpm_ipv4", 8, "10.0.0.1/8", /host bits set beyond the \/8 prefix/);
      refuses("lpm_ipv4", 8, "10.0.0.0/33", /prefix length 33 exceeds 32/);
      refuses("lpm_ipv6", 20, "::1/127", /host bits/);
      assert.throws(() => makeCodec("lpm_ipv4", 5), /lpm_ipv4 needs a size of 8 bytes \(u32 prefix length \+ 4 address bytes\)/);
    });
    it("reads back unrepresentable keys as { hex }", () => {
      const c = makeCodec("lpm_ipv4", 8);
      const b = Buffer.from("080000000a000001", "hex");
      assert.deepEqual(c.decode(b), { hex: "080000000a000001" });
      assert.equal(c.encode(c.decode(b), "").toString("hex"), "080000000a000001");
    });
    it("sorts by address, then prefix length", () => {
      const c = makeCodec("lpm_ipv4", 8);
      const sorted = ["10.1.0.0/16", "10.0.0.0/16", "10.0.0.0/8", "0.0.0.0/0"]
        .map((x) => c.encode(x, "")).sort(c.compare).map((b) => c.decode(b));
      assert.deepEqual(sorted, ["0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/16", "10.1.0.0/16"]);
    });
  });

  describe("string", () => {
    it("is NUL padded, at most size-1 bytes", () => {
      roundTrip("string", 8, "eth0", "6574683000000000");
      roundTrip("string", 4, "", "00000000");
      roundTrip("string", 4, "abc", "61626300");
      refuses("string", 4, "abcd", /is 4 bytes; at most 3 fit in 4/);
      refuses("string", 4, "a\0b", /NUL/);
      assert.throws(() => makeCodec("string", 0), /at least 1/);
    });
    it("reads back strings without NUL or with junk after it as { hex }", () => {
      const c = makeCodec("string", 4);
      assert.deepEqual(c.decode(Buffer.from("61626364", "hex")), { hex: "61626364" });
      assert.deepEqual(c.decode(Buffer.from("61006300", "hex")), { hex: "61006300" });
      assert.deepEqual(c.decode(Buffer.from("ff000000", "hex")), { hex: "ff000000" });
    });
  });

  describe("struct", () => {
    const decl: CodecDecl = {
      struct: [
        { name: "proto", type: "u8" },
        { name: "port", type: "u16be" },
        { name: "addr", type: "ipv4" },
        { name: "bytes", type: "u64" },
      ],
    };
    it("lays fields out with natural C alignment and zero padding", () => {
      // proto@0, pad, port@2, addr@4, bytes@8, size 16.
      roundTrip(decl, 16, { proto: 6, port: 443, addr: "10.0.0.1", bytes: "1" }, "060001bb0a0000010100000000000000",
        { proto: 6, port: 443, addr: "10.0.0.1", bytes: "1" });
    });
    it("zeroes missing fields (like a C designated initializer)", () => {
      roundTrip(decl, 16, { port: 80 }, "00000050000000000000000000000000",
        { proto: 0, port: 80, addr: "0.0.0.0", bytes: "0" });
    });
    it("reports every bad field with its path", () => {
      const c = makeCodec(decl, 16);
      assert.throws(() => c.encode({ proto: 300, port: -1, ttl: 1 }, "contents[3].value"), (e: unknown) => {
        assert.ok(e instanceof CodecError);
        assert.deepEqual(e.failures.map((f) => f.path).sort(),
          ["contents[3].value.port", "contents[3].value.proto", "contents[3].value.ttl"]);
        assert.match(e.message, /contents\[3\]\.value\.proto: 300 does not fit u8 \(0\.\.255\)/);
        return true;
      });
    });
    it("honours explicit offsets, sized hex/string and nested structs", () => {
      const d: CodecDecl = {
        struct: [
          { name: "a", type: "u8", offset: 3 },
          { name: "name", type: "string", size: 4 },
          { name: "inner", type: { struct: [{ name: "x", type: "u16" }] }, size: 2, offset: 10 },
          { name: "raw", type: "hex", size: 2 },
        ],
      };
      roundTrip(d, 14, { a: 1, name: "ab", inner: { x: 2 }, raw: "beef" }, "000000016162000000000200beef",
        { a: 1, name: "ab", inner: { x: 2 }, raw: "beef" });
    });
    it("refuses overlap, overflow and missing sizes", () => {
      assert.throws(() => makeCodec({ struct: [{ name: "a", type: "u32" }, { name: "b", type: "u16", offset: 2 }] }, 8, "valueType"),
        /valueType\.struct\[1\]: field b \(offset 2, 2 bytes\) overlaps field a \(offset 0, 4 bytes\)/);
      assert.throws(() => makeCodec({ struct: [{ name: "a", type: "u8" }, { name: "b", type: "u32" }] }, 6, "valueType"),
        /field b \(offset 4, 4 bytes\) overflows the 6-byte struct/);
      assert.throws(() => makeCodec({ struct: [{ name: "s", type: "string" }] }, 6, "valueType"),
        /valueType\.struct\[0\]\.size: a string field needs a size/);
      assert.throws(() => makeCodec({ struct: [{ name: "a", type: "u8", size: 2 }] }, 6), /"u8" is 1 bytes, not 2/);
    });
    it("reads back non-zero padding as { hex }", () => {
      const c = makeCodec(decl, 16);
      const b = Buffer.from("06ff01bb0a0000010100000000000000", "hex");
      assert.deepEqual(c.decode(b), { hex: b.toString("hex") });
      assert.ok(c.encode(c.decode(b), "").equals(b));
    });
    it("sorts field by field", () => {
      const c = makeCodec({ struct: [{ name: "a", type: "u16" }] }, 2);
      assert.ok(c.compare(c.encode({ a: 2 }, ""), c.encode({ a: 256 }, "")) < 0);
    });
    it("schema refuses bad declarations", () => {
      assert.equal(CodecSchema.safeParse("u128").success, false);
      assert.equal(CodecSchema.safeParse({ struct: [] }).success, false);
      assert.equal(CodecSchema.safeParse({ struct: [{ name: "a", type: "u8" }, { name: "a", type: "u8" }] }).success, false);
      assert.equal(CodecSchema.safeParse({ struct: [{ name: "hex", type: "u8" }] }).success, false);
      assert.equal(CodecSchema.safeParse({ struct: [{ name: "a", type: "u8", extra: 1 }] }).success, false);
      assert.equal(CodecSchema.safeParse({ struct: [{ name: "a", type: { struct: [{ name: "b", type: "mac" }] }, size: 6 }] }).success, true);
    });
  });

  it("encode(decode(b)) === b for random bytes, every codec", () => {
    // Fixed sizes come from the codec table; hex and string take any size.
    const cases: [CodecDecl, number][] = [
      ...SCALAR_CODECS.map((name): [CodecDecl, number] => [name, fixedSize(name) ?? (name === "hex" ? 7 : 6)]),
      [{ struct: [{ name: "a", type: "u8" }, { name: "b", type: "u32" }, { name: "c", type: "lpm_ipv4" }] }, 20],
    ];
    assert.deepEqual(cases.slice(0, 4).map(([, size]) => size), [7, 6, 1, 2]);
    for (const [decl, size] of cases) {
      const c = makeCodec(decl, size);
      for (let i = 0; i < 200; i++) {
        const b = randomBytes(size);
        if (i === 0) b.fill(0);
        if (i === 1) b.fill(0xff);
        // Small prefix lengths make representable lpm keys likely too.
        if (typeof decl === "string" && decl.startsWith("lpm_") && i % 2) b.writeUInt32LE(i % 129, 0);
        const back = c.encode(c.decode(b), "x");
        assert.ok(back.equals(b), `${JSON.stringify(decl)}: ${b.toString("hex")} -> ${JSON.stringify(c.decode(b))}`);
      }
    }
  });

  describe("per-CPU values", () => {
    const c = makeCodec("u32", 4);
    it("strides round_up(valueSize, 8)", () => {
      assert.equal(perCpuStride(4), 8);
      assert.equal(perCpuStride(8), 8);
      assert.equal(perCpuStride(9), 16);
    });
    it("broadcasts value and reads back { value } when all equal", () => {
      const b = encodePerCpu(c, { value: 7 }, 3, "contents[0]");
      assert.equal(b.toString("hex"), "070000000000000007000000000000000700000000000000");
      assert.deepEqual(decodePerCpu(c, b, 3), { value: 7 });
    });
    it("sets each CPU from perCpuValues and reads back { perCpuValues }", () => {
      const b = encodePerCpu(c, { perCpuValues: [1, 2] }, 2, "contents[0]");
      assert.deepEqual(decodePerCpu(c, b, 2), { perCpuValues: [1, 2] });
    });
    it("needs one value per possible CPU", () => {
      assert.throws(() => encodePerCpu(c, { perCpuValues: [1] }, 2, "contents[4]"),
        /contents\[4\]\.perCpuValues: has 1 values; this host has 2 possible CPUs/);
      assert.throws(() => encodePerCpu(c, { perCpuValues: [1, -1] }, 2, "contents[4]"), /contents\[4\]\.perCpuValues\[1\]: -1 does not fit u32/);
    });
  });
});

describe("struct codecs: implied size (C layout) and declaration errors", () => {
  const S = (...fields: [string, CodecDecl, { offset?: number; size?: number }?][]): CodecDecl => ({
    struct: fields.map(([name, type, extra]) => ({ name, type, ...extra })),
  });
  // Each layout beside the C struct that has it; gcc measures sizeof and offsetof.
  const layouts: { c: string; decl: CodecDecl; lastOffset: string }[] = [
    { c: "struct { __u8 a; __u32 b; }", decl: S(["a", "u8"], ["b", "u32"]), lastOffset: "b" },
    { c: "struct { __u32 a; __u8 b; }", decl: S(["a", "u32"], ["b", "u8"]), lastOffset: "b" },
    { c: "struct { __u8 a; __u8 b; }", decl: S(["a", "u8"], ["b", "u8"]), lastOffset: "b" },
    { c: "struct { __u64 a; __u8 b; }", decl: S(["a", "u64"], ["b", "u8"]), lastOffset: "b" },
    { c: "struct { __u8 a; __u64 b; __u16 c; }", decl: S(["a", "u8"], ["b", "u64"], ["c", "u16"]), lastOffset: "c" },
    { c: "struct { __u16 a; __u8 b[6]; }", decl: S(["a", "u16"], ["b", "mac"]), lastOffset: "b" },
    { c: "struct { __u8 a; struct in6_addr b; }", decl: S(["a", "u8"], ["b", "ipv6"]), lastOffset: "b" },
    { c: "struct { __u8 a; __be32 b; }", decl: S(["a", "u8"], ["b", "ipv4"]), lastOffset: "b" },
    { c: "struct { __u8 a; struct { __u32 x; __u8 y; } b; __u8 c; }", decl: S(["a", "u8"], ["b", S(["x", "u32"], ["y", "u8"])], ["c", "u8"]), lastOffset: "c" },
    { c: "struct { __u8 a; char b[3]; __u16 c; }", decl: S(["a", "u8"], ["b", "string", { size: 3 }], ["c", "u16"]), lastOffset: "c" },
    { c: "struct { __s8 a; __s64 b; }", decl: S(["a", "i8"], ["b", "i64"]), lastOffset: "b" },
  ];

  it("a struct implies the size C gives it (natural alignment, trailing padding to the largest member), as gcc measures", function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-layout-"));
    try {
      const source = [
        "#include <stdio.h>", "#include <stddef.h>", "#include <linux/types.h>", "#include <netinet/in.h>",
        ...layouts.map((layout, i) => `typedef ${layout.c} s${i};`),
        "int main(void) {",
        ...layouts.map((layout, i) => `  printf("%zu %zu\\n", sizeof(s${i}), offsetof(s${i}, ${layout.lastOffset}));`),
        "  return 0;", "}",
      ].join("\n");
      fs.writeFileSync(path.join(dir, "layout.c"), source);
      execFileSync("gcc", ["-o", path.join(dir, "layout"), path.join(dir, "layout.c")]);
      const measured = execFileSync(path.join(dir, "layout"), { encoding: "utf8" }).trim().split("\n").map((line) => line.split(" ").map(Number));
      layouts.forEach((layout, i) => {
        const [size, lastOffset] = measured[i]!;
        assert.equal(fixedSize(layout.decl), size, `sizeof(${layout.c})`);
        // The codec built at that size places the last field where C does.
        const codec = makeCodec(layout.decl, size!);
        const struct = (layout.decl as { struct: { name: string; type: CodecDecl }[] }).struct;
        const last = struct[struct.length - 1]!;
        const probe = last.type === "u8" || last.type === "u16" || last.type === "i64" ? 1 : undefined;
        if (probe !== undefined) {
          const bytes = codec.encode({ [last.name]: probe }, "v");
          assert.equal(bytes.indexOf(1), lastOffset, `offsetof(${layout.c}, ${last.name})`);
        }
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("declared offsets and sizes count; hex or string without a size imply nothing", () => {
    assert.equal(fixedSize(S(["a", "u8", { offset: 4 }])), 5);
    assert.equal(fixedSize(S(["a", "u32"], ["b", "u8", { offset: 12 }])), 16);
    assert.equal(fixedSize(S(["a", "hex", { size: 3 }])), 3);
    assert.equal(fixedSize(S(["a", "u8"], ["b", "hex"])), undefined);
    // A nested struct given a larger size keeps it (trailing room).
    assert.equal(fixedSize(S(["a", S(["x", "u8"]), { size: 4 }], ["b", "u8"])), 5);
  });

  it("checkSpec fills in valueSize from a struct, and an explicit valueSize overrides it", () => {
    const base = { pinPath: "/sys/fs/bpf/t/m", mapType: "array", keyType: "u32", maxEntries: 2 };
    const valueType = S(["enabled", "u8"], ["rateLimitPps", "u32"]);
    assert.equal(checkSpec({ ...base, valueType }, { pinLocation: false }).valueSize, 8);
    assert.equal(checkSpec({ ...base, valueType, valueSize: 16 }, { pinLocation: false }).valueSize, 16);
    assert.throws(() => checkSpec({ ...base, valueType, valueSize: 4 }, { pinLocation: false }), /valueType\.struct\[1\]: field rateLimitPps \(offset 4, 4 bytes\) overflows the 4-byte struct/);
  });

  it("an unknown field type names the field and the codecs there are, and nothing follows from the failed codec", () => {
    const input = {
      pinPath: "/sys/fs/bpf/t/m", mapType: "hash", keyType: "u32", maxEntries: 4,
      valueType: { struct: [{ name: "lock", type: "bpf_timer" }, { name: "hits", type: "u64" }] },
      contents: [{ key: 1, value: { hits: 5 } }, { key: "x", value: "nothex" }],
    };
    assert.throws(() => checkSpec(input, { pinLocation: false }), (error: unknown) => {
      assert.ok(error instanceof SpecError);
      assert.deepEqual(error.failures.map((failure) => `${failure.path}: ${failure.rule}`), [
        `valueType.struct[0].type: "bpf_timer" is not a codec; one of ${SCALAR_CODECS.join(", ")} or { struct: [...] }`,
        // The key codec is fine, so the keys are still checked.
        `contents[1].key: "x" is not an integer (a number, or a decimal or 0x string)`,
      ]);
      return true;
    });
    // Not an object or a string: the value named, no "Invalid input".
    assert.throws(() => checkSpec({ ...input, valueType: 5, contents: [] }, { pinLocation: false }), /^SpecError: valueType: 5 is not a codec; one of hex/);
    assert.throws(() => makeCodec({ struct: [{ name: "a", type: { struct: [{ name: "b", type: "u33" }] } }] } as unknown as CodecDecl, 4, "valueType"),
      /^CodecError: valueType\.struct\[0\]\.type\.struct\[0\]\.type: "u33" is not a codec; one of/);
  });
});
