// Real BPF programs and BTF-typed maps, both ways. Programs compiled with clang
// from tests/bpf/ read (and, under bpf_spin_lock, write) maps we made with
// BTF; bpftool loads them in place of the object's own maps and runs them
// with BPF_PROG_TEST_RUN. The reverse: a map libbpf made with BTF (bpftool
// prog loadall … pinmaps) is read and adopted with codecs derived from it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { checkSpec, createPinnedMap, isEbpfError, observePinnedMap, specOfLiveMap, updatePinnedMap, type CodecDecl } from "../provider/core";
import { usePrivateBpffs } from "./fixtures/bpffs";
import { bpftool, bpftoolJson } from "./fixtures/bpftool";

const sources = path.resolve(__dirname, "..", "..", "tests", "bpf");
const FEATURE: CodecDecl = { struct: [{ name: "enabled", type: "u8" }, { name: "rateLimitPps", type: "u32" }] };
const COUNTER: CodecDecl = { struct: [{ name: "lock", type: "bpf_spin_lock" }, { name: "hits", type: "u64" }] };

describe("BPF programs and BTF-typed maps", function () {
  this.timeout(120_000);
  const bpffs = usePrivateBpffs();
  let bin = "";
  let packet = "";

  before(() => {
    bin = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-btf-"));
    // clang 14 and libbpf-dev (Debian packages), as the libbpf-reuse suite.
    for (const name of ["btf-consumer", "btf-owned"]) {
      execFileSync("clang", ["-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", path.join(sources, `${name}.bpf.c`), "-o", path.join(bin, `${name}.o`)], { stdio: "pipe" });
    }
    // A minimal Ethernet frame for the tc programs' test runs.
    packet = path.join(bin, "packet");
    fs.writeFileSync(packet, Buffer.alloc(64));
  });
  after(() => fs.rmSync(bin, { recursive: true, force: true }));

  // BPF_PROG_TEST_RUN of a pinned program once; its return value.
  const run = (program: string): number =>
    bpftoolJson<{ retval: number }>("prog", "run", "pinned", program, "data_in", packet, "repeat", "1").retval;

  it("a program reads the declared field of our BTF map, and counts under the spin lock of our locked map", () => {
    const dir = bpffs().dir("consumer");
    const features = path.join(dir, "features");
    const counters = path.join(dir, "counters");
    const featureSpec = (pps: number) => checkSpec({ pinPath: features, mapType: "array", keyType: "u32", valueType: FEATURE, maxEntries: 4,
      contents: [{ key: 1, value: { enabled: 1, rateLimitPps: pps } }] });
    const counterSpec = (hits: number) => checkSpec({ pinPath: counters, mapType: "hash", keyType: "u32", valueType: COUNTER, maxEntries: 16,
      contents: [{ key: 7, value: { hits } }] });
    const featureMap = createPinnedMap(featureSpec(12345));
    const counterMap = createPinnedMap(counterSpec(41));
    // The verifier accepts bpf_spin_lock only on a map whose BTF has the lock: ours.
    bpftool("prog", "loadall", path.join(bin, "btf-consumer.o"), path.join(dir, "progs"),
      "map", "name", "features", "pinned", features, "map", "name", "counters", "pinned", counters);
    const programs = bpftoolJson<{ map_ids?: number[]; name: string }[]>("prog", "show", "pinned", path.join(dir, "progs", "read_feature"));
    const shown = Array.isArray(programs) ? programs[0]! : programs as unknown as { map_ids?: number[] };
    assert.deepEqual(shown.map_ids, [featureMap.mapId], "the program uses our map, not one of its own");

    assert.equal(run(path.join(dir, "progs", "read_feature")), 12345);
    assert.equal(run(path.join(dir, "progs", "bump_counter")), 42);
    assert.equal(run(path.join(dir, "progs", "bump_counter")), 43);

    // The program's writes read back through the lock (BPF_F_LOCK), lock word hidden.
    const observed = observePinnedMap(counterSpec(41));
    assert.equal(observed.status, "ok");
    assert.deepEqual(observed.status === "ok" && observed.observation.contents, [{ key: 7, value: { hits: "43" } }]);

    // An update in place (same map ID) is what the program sees next.
    const updated = updatePinnedMap(featureSpec(12345), featureSpec(777), featureMap.mapId);
    assert.equal(updated.mapId, featureMap.mapId);
    assert.equal(run(path.join(dir, "progs", "read_feature")), 777);
    const reset = updatePinnedMap(counterSpec(41), counterSpec(0), counterMap.mapId);
    assert.equal(reset.mapId, counterMap.mapId);
    assert.equal(run(path.join(dir, "progs", "bump_counter")), 1);
  });

  it("the verifier refuses the spin-lock program on a map without BTF (the check above is real)", () => {
    const dir = bpffs().dir("nobtf");
    const counters = path.join(dir, "counters");
    const features = path.join(dir, "features");
    createPinnedMap(checkSpec({ pinPath: features, mapType: "array", keyType: "u32", valueType: FEATURE, maxEntries: 4 }));
    createPinnedMap(checkSpec({ pinPath: counters, mapType: "hash", keyType: "u32", valueType: { struct: [{ name: "lock", type: "u32" }, { name: "hits", type: "u64" }] }, maxEntries: 16, btf: false }));
    assert.throws(() => bpftool("prog", "loadall", path.join(bin, "btf-consumer.o"), path.join(dir, "progs"),
      "map", "name", "features", "pinned", features, "map", "name", "counters", "pinned", counters),
    (error: unknown) => /map 'counters' has to have BTF in order to use bpf_spin_lock/.test(String((error as { stderr?: string }).stderr)));
  });

  describe("a map libbpf made with BTF", () => {
    const FLOW: CodecDecl = { struct: [
      { name: "packets", type: "u64" }, { name: "bytes", type: "u64" }, { name: "ifname", type: "string", size: 16 }, { name: "port", type: "u16" },
    ] };
    let flows = "";

    beforeEach(() => {
      const dir = bpffs().dir(`owned-${Math.random().toString(36).slice(2)}`);
      bpftool("prog", "loadall", path.join(bin, "btf-owned.o"), path.join(dir, "progs"), "pinmaps", path.join(dir, "maps"));
      flows = path.join(dir, "maps", "flows");
      // One entry written by bpftool: packets 5, bytes 100, ifname "eth0", port 80.
      const value = Buffer.alloc(40);
      value.writeBigUInt64LE(5n, 0);
      value.writeBigUInt64LE(100n, 8);
      value.write("eth0", 16);
      value.writeUInt16LE(80, 32);
      bpftool("map", "update", "pinned", flows, "key", "1", "0", "0", "0", "value", ...[...value].map(String));
    });

    it("PinnedMap.get's read (specOfLiveMap) expresses it with derived codecs: field names, not hex", () => {
      const live = specOfLiveMap(flows)!;
      assert.equal(live.spec!.keyType, "u32");
      assert.deepEqual(live.spec!.valueType, FLOW);
      const observed = observePinnedMap(live.spec!);
      assert.deepEqual(observed.status === "ok" && observed.observation.contents,
        [{ key: 1, value: { packets: "5", bytes: "100", ifname: "eth0", port: 80 } }]);
    });

    it("ifExists adopt without codecs takes the derived ones; declared codecs that disagree fail naming the field", () => {
      const base = { pinPath: flows, mapType: "hash", maxEntries: 64, ifExists: "adopt", contentsPolicy: "merge" };
      const spec = checkSpec({ ...base, contents: [{ key: 2, value: { packets: 1, ifname: "lo", port: 53 } }] });
      assert.deepEqual(spec.valueType, FLOW);
      const before = specOfLiveMap(flows)!.mapId;
      const adopted = createPinnedMap(spec);
      assert.equal(adopted.mapId, before, "adopted, not rebuilt");
      assert.deepEqual(adopted.contents, [{ key: 2, value: { packets: "1", bytes: "0", ifname: "lo", port: 53 } }]);
      // The libbpf-written entry is untouched (merge), and readable with field names.
      const all = observePinnedMap(specOfLiveMap(flows)!.spec!);
      assert.equal(all.status === "ok" && all.observation.contents.length, 2);

      const wrong: CodecDecl = { struct: [{ name: "packets", type: "u64" }, { name: "octets", type: "u64" }, { name: "ifname", type: "string", size: 16 }, { name: "port", type: "u16" }] };
      assert.throws(() => createPinnedMap(checkSpec({ ...base, keyType: "u32", valueType: wrong })), (error: unknown) => {
        assert.ok(isEbpfError(error, "Incompatible"));
        assert.match(error.message, /valueType\.struct\[1\]: declared field octets \(offset 8\), live field bytes \(offset 8\)/);
        return true;
      });
    });
  });
});
