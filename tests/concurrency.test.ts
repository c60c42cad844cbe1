// Concurrency through the real Pulumi CLI: two stacks that declare the same
// pin path (the second fails clearly, the first's map is untouched); a second
// process writing to a merge-mode map while `pulumi up` reconciles it in place
// (no write is lost); two `pulumi up` of the same stack at once (the local
// file backend's lock refuses one; the state is never corrupted).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { mountPrivateBpffs, type PrivateBpffs } from "./fixtures/bpffs";
import { dumpHexIfPinned as bpftoolDump, mapShowIfPinned as bpftoolShow } from "./fixtures/bpftool";
import { makeProject, type PulumiProject as TempProject } from "./fixtures/pulumi";

const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { PinnedMap } = require("pulumi-ebpf");
const c = new pulumi.Config();
const m = new PinnedMap("m", {
  pinPath: c.require("pin"),
  mapType: "hash",
  keyType: "u32",
  valueType: "u32",
  maxEntries: 65536,
  contentsPolicy: c.get("policy") ?? "exact",
  contents: JSON.parse(c.get("contents") ?? "[]"),
});
exports.mapId = m.mapId;
`;

const DIST = path.resolve(__dirname, "..");
const declared = (n: number, value: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ key: i, value })));

describe("concurrency", function () {
  this.timeout(180_000);
  let bpffs: PrivateBpffs;
  let project: TempProject;

  before(function () {
    bpffs = mountPrivateBpffs("pulumi-ebpf-conc-");
    project = makeProject("concurrency", PROGRAM);
  });
  after(function () {
    project?.cleanup();
    bpffs?.unmount();
  });

  it("two stacks declaring the same pin path: the second fails clearly, the first's map is untouched", function () {
    const pin = path.join(bpffs.root, "shared", "m");
    project.initStack("first", { pin, contents: declared(3, 1) });
    project.initStack("second", { pin, contents: declared(2, 2) });
    project.ok(["up", "--yes", "--skip-preview", "--stack", "first"]);
    const before = { show: bpftoolShow(pin), dump: bpftoolDump(pin) };
    const r = project.run(["up", "--yes", "--skip-preview", "--stack", "second"]);
    assert.notEqual(r.code, 0);
    assert.match(r.output, new RegExp(`pinPath ${pin} already holds map ${before.show!.id}; set ifExists to "adopt" to take it over or "replace" to swap in a new map`));
    assert.deepEqual({ show: bpftoolShow(pin), dump: bpftoolDump(pin) }, before, "the first stack's map is untouched");
    // Destroying the failed second stack does not touch the first's pin either.
    project.ok(["destroy", "--yes", "--skip-preview", "--stack", "second"]);
    assert.deepEqual(bpftoolDump(pin), before.dump);
    project.ok(["preview", "--refresh", "--expect-no-changes", "--stack", "first"]);
    project.ok(["destroy", "--yes", "--skip-preview", "--stack", "first"]);
  });

  it("two stacks creating the same pin path at once: exactly one create succeeds, the other fails with PinExists, the winner's map is intact", async function () {
    const pin = path.join(bpffs.root, "race", "m");
    project.initStack("race-a", { pin, contents: declared(3, 1) });
    project.initStack("race-b", { pin, contents: declared(2, 2) });
    const results = await Promise.all(["race-a", "race-b"].map((stack) => project.runAsync(["up", "--yes", "--skip-preview", "--stack", stack])));
    const winners = results.map((r, i) => (r.code === 0 ? i : -1)).filter((i) => i >= 0);
    // eslint-disable-next-line no-console
    console.log(`      two stacks at once: ${results.map((r) => (r.code === 0 ? "ok" : "failed")).join(", ")}`);
    assert.equal(winners.length, 1, `exactly one create succeeds:\n${results.map((r) => r.output).join("\n----\n")}`);
    const winner = winners[0]!;
    const loser = results[1 - winner]!;
    // The loser either saw the pin at its check ("already holds map N") or
    // lost the race at the final rename ("is already taken"): PinExists both.
    assert.match(loser.output, new RegExp(`pinPath ${pin} (already holds map \\d+|is already taken); set ifExists to "adopt"`), loser.output);
    const winnerStack = ["race-a", "race-b"][winner]!;
    const state = project.exportState(winnerStack).deployment.resources?.find((r) => String(r.type).endsWith("PinnedMap"));
    assert.equal(state?.outputs?.mapId, bpftoolShow(pin)!.id, "the pin holds the winner's map");
    const expected = winner === 0 ? 3 : 2;
    const value = winner === 0 ? 1 : 2;
    const dump = bpftoolDump(pin)!;
    assert.equal(dump.length, expected, "the winner's contents, complete");
    for (const entry of dump) assert.equal(Buffer.from(entry.value, "hex").readUInt32LE(0), value);
    assert.deepEqual(fs.readdirSync(path.dirname(pin)), ["m"], "no staging pin is left");
    project.ok(["destroy", "--yes", "--skip-preview", "--stack", ["race-a", "race-b"][1 - winner]!]);
    assert.equal(bpftoolShow(pin)!.id, state?.outputs?.mapId, "destroying the losing stack leaves the winner's map");
    project.ok(["destroy", "--yes", "--skip-preview", "--stack", winnerStack]);
  });

  it("a second process writing to a merge-mode map while pulumi up reconciles it in place loses no write", async function () {
    const pin = path.join(bpffs.root, "merge", "m");
    project.initStack("merge", { pin, policy: "merge", contents: declared(500, 1) });
    project.ok(["up", "--yes", "--skip-preview", "--stack", "merge"]);
    const mapId = bpftoolShow(pin)!.id;
    // The writer adds keys 100000, 100001, … one every ~200 µs until told to
    // stop, and reports the last key it wrote.
    const stopFile = path.join(project.dir, "stop-writer");
    const writer = spawn(process.execPath, ["-e", `
      const n = require(process.env.DIST + "/native");
      const fs = require("fs");
      const map = n.openPinnedMap(${JSON.stringify(pin)}, "rw", n.plainValueBytes);
      const k = Buffer.alloc(4), v = Buffer.alloc(4);
      const sleep = new Int32Array(new SharedArrayBuffer(4));
      let next = 100000;
      for (let i = 0; !(i % 50 === 0 && fs.existsSync(${JSON.stringify(stopFile)})); i++) {
        k.writeUInt32LE(next); v.writeUInt32LE(next); map.update(k, v); next++;
        if (i % 4 === 0) Atomics.wait(sleep, 0, 0, 1);
      }
      console.log(next - 1);
    `], { env: { ...process.env, DIST }, stdio: ["ignore", "pipe", "inherit"] });
    let last = "";
    writer.stdout!.on("data", (d) => (last += d));
    const exited = new Promise<number | null>((resolve) => writer.on("close", resolve));
    try {
      // Reconcile in place while the writer runs: every declared value changes, 100 declared keys go.
      project.setConfig("merge", "contents", declared(400, 2));
      const r = await project.runAsync(["up", "--yes", "--skip-preview", "--stack", "merge"]);
      assert.equal(r.code, 0, r.output);
    } finally {
      fs.writeFileSync(stopFile, "");
    }
    assert.equal(await exited, 0);
    const lastKey = Number(last.trim());
    // eslint-disable-next-line no-console
    console.log(`      the writer wrote ${lastKey - 100000 + 1} keys during the update`);
    assert.ok(lastKey > 100000 + 50, `the writer ran during the update (last key ${lastKey})`);
    assert.equal(bpftoolShow(pin)!.id, mapId, "reconciled in place");
    const dump = new Map(bpftoolDump(pin)!.map((e) => [Buffer.from(e.key, "hex").readUInt32LE(0), Buffer.from(e.value, "hex").readUInt32LE(0)]));
    for (let key = 100000; key <= lastKey; key++) assert.equal(dump.get(key), key, `the writer's key ${key} survived`);
    for (let key = 0; key < 400; key++) assert.equal(dump.get(key), 2);
    for (let key = 400; key < 500; key++) assert.equal(dump.has(key), false, `formerly declared key ${key} was removed`);
    assert.equal(dump.size, 400 + (lastKey - 100000 + 1));
    project.ok(["preview", "--refresh", "--expect-no-changes", "--stack", "merge"]);
    project.ok(["destroy", "--yes", "--skip-preview", "--stack", "merge"]);
  });

  it("two pulumi up of the same stack at once: the local backend's lock refuses one; the state stays consistent", async function () {
    const pin = path.join(bpffs.root, "twice", "m");
    project.initStack("twice", { pin, contents: declared(50, 1) });
    const [a, b] = await Promise.all([
      project.runAsync(["up", "--yes", "--skip-preview", "--stack", "twice"]),
      project.runAsync(["up", "--yes", "--skip-preview", "--stack", "twice"]),
    ]);
    const outcomes = [a, b].map((r) => (r.code === 0 ? "ok" : /currently locked/.test(r.output) ? "locked" : `failed: ${r.output}`)).sort();
    // eslint-disable-next-line no-console
    console.log(`      two concurrent ups: ${outcomes.join(", ")}`);
    // Either one is refused by the lock (the usual case), or the second
    // started after the first finished and found nothing to do.
    assert.ok(JSON.stringify(outcomes) === JSON.stringify(["locked", "ok"]) || JSON.stringify(outcomes) === JSON.stringify(["ok", "ok"]), JSON.stringify(outcomes));
    // Either way exactly one run created the map; a second success changed nothing.
    assert.equal([a, b].filter((r) => r.code === 0 && /\+ \d+ created/.test(r.output)).length, 1, [a.output, b.output].join("\n----\n"));
    const state = project.exportState("twice");
    const maps = (state.deployment.resources ?? []).filter((r) => String(r.type).endsWith("PinnedMap"));
    assert.equal(maps.length, 1);
    assert.equal(maps[0]!.outputs.mapId, bpftoolShow(pin)!.id);
    assert.deepEqual(state.deployment.pending_operations ?? [], []);
    project.ok(["preview", "--refresh", "--expect-no-changes", "--stack", "twice"]);
    project.ok(["destroy", "--yes", "--skip-preview", "--stack", "twice"]);
  });
});
