// Faults: the dynamic provider is SIGKILLed (PULUMI_EBPF_FAULT in the
// environment of `pulumi up`, which reaches the provider plugin process) at
// each step of create, in-place update, new-map swap and delete. After every
// kill the pin path holds the complete old or the complete new map (checked
// with bpftool, an independent reader), and after a plain re-run of
// `pulumi up`/`destroy` no staging pin is left and the stack converges
// (`pulumi preview --refresh --expect-no-changes` exits 0).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { STAGING_INFIX } from "../provider/core/pins";
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
  name: "fault_map",
  keyType: "u32",
  valueType: "u32",
  maxEntries: Number(c.get("max") ?? 64),
  ifExists: c.get("ifExists") ?? "fail",
  contents: JSON.parse(c.get("contents") ?? "[]"),
});
exports.mapId = m.mapId;
`;

type Contents = Record<number, number>;
const A: Contents = { 1: 10, 2: 20, 3: 30 };
// In place from A: upsert 1 and 4, delete 2 and 3.
const B: Contents = { 1: 11, 4: 40 };
// A new map (maxEntries 64 → 128) from A.
const C: Contents = { 1: 12, 5: 50 };

const u32hex = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b.toString("hex");
};
const asDump = (c: Contents) =>
  Object.entries(c).map(([k, v]) => ({ key: u32hex(Number(k)), value: u32hex(v) })).sort((a, b) => a.key.localeCompare(b.key));
const asConfig = (c: Contents) => JSON.stringify(Object.entries(c).map(([k, v]) => ({ key: Number(k), value: v })));

describe("faults: provider killed at each step", function () {
  this.timeout(240_000);
  let bpffs: PrivateBpffs;
  let project: TempProject;
  let dir: string;
  let pin: string;
  const stack = "faults";

  before(function () {
    bpffs = mountPrivateBpffs("pulumi-ebpf-faults-");
    dir = path.join(bpffs.root, "app");
    pin = path.join(dir, "m");
    project = makeProject("faults", PROGRAM);
    project.initStack(stack, { pin, contents: asConfig(A) });
  });

  after(function () {
    project?.cleanup();
    bpffs?.unmount();
  });

  const up = (env: NodeJS.ProcessEnv = {}) => project.run(["up", "--yes", "--skip-preview", "--stack", stack], { env });
  const killedUp = (fault: string) => {
    const r = up({ PULUMI_EBPF_FAULT: fault });
    assert.notEqual(r.code, 0, `pulumi up with the fault ${fault} should fail:\n${r.output}`);
    assert.match(r.output, /error reading from server: EOF|transport is closing|connection/i, r.output);
    return r;
  };
  const set = (key: string, value: string) => project.setConfig(stack, key, value);
  const setAll = (values: Record<string, string>) =>
    project.ok(["config", "set-all", "--stack", stack, ...Object.entries(values).flatMap(([k, v]) => ["--plaintext", `${k}=${v}`])]);
  const staging = () => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.includes(STAGING_INFIX)) : []);
  const converged = () => {
    const r = project.run(["preview", "--refresh", "--expect-no-changes", "--stack", stack]);
    assert.equal(r.code, 0, `the stack should have converged:\n${r.output}`);
    assert.deepEqual(staging(), [], "no staging pin may remain");
    const state = project.exportState(stack);
    assert.deepEqual(state.deployment.pending_operations ?? [], [], "no pending operations in the checkpoint");
  };
  const stateMapId = () => project.exportState(stack).deployment.resources?.find((r) => r.type?.endsWith("PinnedMap"))?.outputs?.mapId;
  // Brings the stack to declared contents `c` with max entries `max`, cleanly.
  const reset = (c: Contents, max = 64) => {
    setAll({ contents: asConfig(c), max: String(max) });
    project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
    assert.deepEqual(bpftoolDump(pin), asDump(c));
  };
  const destroy = () => project.ok(["destroy", "--yes", "--skip-preview", "--stack", stack]);

  describe("create", function () {
    // (write:0 of a batched hash is the same moment as populate: before the one batch call.)
    for (const fault of ["populate", "before-rename"]) {
      it(`killed at ${fault}: nothing pinned, the re-run creates the complete map`, function () {
        destroy();
        setAll({ contents: asConfig(A), max: "64" });
        killedUp(fault);
        assert.equal(bpftoolDump(pin), undefined, "nothing may be pinned at the path");
        if (fault === "before-rename") assert.equal(staging().length, 1, "the dead provider's staging pin is there");
        project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
        assert.deepEqual(bpftoolDump(pin), asDump(A));
        converged();
      });
    }

    it("killed after the rename: the complete map is pinned; the re-run refuses the path clearly; ifExists adopt converges", function () {
      destroy();
      set("contents", asConfig(A));
      killedUp("after-rename");
      // The map is complete, but the engine never heard of it.
      assert.deepEqual(bpftoolDump(pin), asDump(A));
      const orphanId = bpftoolShow(pin)!.id;
      const again = up();
      assert.notEqual(again.code, 0);
      assert.match(again.output, new RegExp(`pinPath ${pin} already holds map ${orphanId}; set ifExists to "adopt"`));
      assert.deepEqual(bpftoolDump(pin), asDump(A), "the refused re-run leaves the map alone");
      // The documented recovery: adopt it once (ABI checked, contents reconciled).
      set("ifExists", "adopt");
      project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
      assert.equal(stateMapId(), orphanId, "the orphaned map was adopted, not rebuilt");
      converged();
      set("ifExists", "fail");
      project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
    });
  });

  describe("in-place update (A → B: upsert 1 and 4, delete 2 and 3)", function () {
    it("killed at write:0: the complete old map; the re-run applies the delta in place", function () {
      reset(A);
      const id = bpftoolShow(pin)!.id;
      set("contents", asConfig(B));
      killedUp("write:0");
      assert.deepEqual(bpftoolDump(pin), asDump(A));
      project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
      assert.deepEqual(bpftoolDump(pin), asDump(B));
      assert.equal(bpftoolShow(pin)!.id, id, "in place: same kernel map");
      converged();
    });

    it("killed between upserts and deletes: every declared entry already holds its new value, old keys not yet gone; the re-run finishes", function () {
      reset(A);
      set("contents", asConfig(B));
      killedUp("before-deletes");
      // A delta is never clear-and-refill: upserts land first, so a reader
      // never misses a declared key; the undeclared ones go on the re-run.
      assert.deepEqual(bpftoolDump(pin), asDump({ ...A, ...B }));
      project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
      assert.deepEqual(bpftoolDump(pin), asDump(B));
      converged();
    });
  });

  describe("new-map swap (A, 64 entries → C, 128 entries)", function () {
    for (const fault of ["populate", "before-rename"]) {
      it(`killed at ${fault}: the complete old map stays pinned; the re-run swaps the complete new one in`, function () {
        reset(A, 64);
        const oldId = bpftoolShow(pin)!.id;
        setAll({ contents: asConfig(C), max: "128" });
        killedUp(fault);
        assert.equal(bpftoolShow(pin)!.id, oldId);
        assert.equal(bpftoolShow(pin)!.max_entries, 64);
        assert.deepEqual(bpftoolDump(pin), asDump(A));
        project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
        assert.notEqual(bpftoolShow(pin)!.id, oldId);
        assert.equal(bpftoolShow(pin)!.max_entries, 128);
        assert.deepEqual(bpftoolDump(pin), asDump(C));
        converged();
      });
    }

    it("killed after the exchange: the complete new map is pinned; the re-run recognises it as this resource's and converges", function () {
      reset(A, 64);
      const oldId = bpftoolShow(pin)!.id;
      setAll({ contents: asConfig(C), max: "128" });
      killedUp("after-rename");
      assert.equal(bpftoolShow(pin)!.max_entries, 128);
      assert.deepEqual(bpftoolDump(pin), asDump(C));
      const newId = bpftoolShow(pin)!.id;
      // The old map waits at the dead provider's staging name: the trace that
      // says the swap was ours.
      assert.equal(staging().length, 1);
      // Without the trace this was a ForeignPin error forever. Now the re-run
      // takes the pinned map as its own (the update still rebuilds once, as
      // the old inputs say maxEntries changed: another complete swap).
      project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
      assert.notEqual(newId, oldId);
      assert.equal(bpftoolShow(pin)!.max_entries, 128);
      assert.deepEqual(bpftoolDump(pin), asDump(C));
      assert.equal(stateMapId(), bpftoolShow(pin)!.id);
      converged();
    });
  });

  describe("pinPath and maxEntries changed together (a new map at a new path)", function () {
    it("killed between pinning at the new path and unpinning the old one: no map lost; the re-run finishes the move and converges", function () {
      reset(A, 64);
      const oldId = bpftoolShow(pin)!.id;
      const newPin = path.join(dir, "moved");
      setAll({ pin: newPin, contents: asConfig(C), max: "128" });
      killedUp("after-pin-new-path");
      // Both maps complete and pinned; the old one also at a trace name that
      // names the new map, the proof the re-run needs.
      assert.equal(bpftoolShow(pin)!.id, oldId);
      assert.deepEqual(bpftoolDump(pin), asDump(A));
      const newId = bpftoolShow(newPin)!.id;
      assert.deepEqual(bpftoolDump(newPin), asDump(C));
      assert.equal(staging().length, 1, "the trace pin");
      project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
      assert.equal(fs.existsSync(pin), false, "the old pin is gone");
      assert.equal(bpftoolShow(newPin)!.id, newId, "the map the killed run pinned is kept, not rebuilt");
      assert.deepEqual(bpftoolDump(newPin), asDump(C));
      assert.equal(stateMapId(), newId);
      converged();
      set("pin", pin);
      project.ok(["up", "--yes", "--skip-preview", "--stack", stack]);
    });
  });

  describe("delete", function () {
    it("killed before the unpin: the complete map stays; destroy again removes it and leaves the stack empty", function () {
      reset(A);
      const r = project.run(["destroy", "--yes", "--skip-preview", "--stack", stack], { env: { PULUMI_EBPF_FAULT: "before-unpin" } });
      assert.notEqual(r.code, 0, r.output);
      assert.deepEqual(bpftoolDump(pin), asDump(A));
      destroy();
      assert.equal(fs.existsSync(pin), false);
      assert.deepEqual(staging(), []);
      assert.deepEqual(project.exportState(stack).deployment.resources ?? [], []);
    });
  });
});
