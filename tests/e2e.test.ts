// End to end through the real Pulumi CLI v3.248.0 and the real kernel: one
// stack of tests/fixtures/e2e-project (whose PinnedMaps come from stack
// config) is walked through the whole lifecycle of docs/design.md, step by step,
// with bpftool as the independent reader and as the writer "behind Pulumi's
// back". Later steps build on earlier ones: after a failure the rest of the
// chain is skipped. A private bpffs and a private file backend per suite;
// both are removed afterwards whatever happened.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import * as auto from "@pulumi/pulumi/automation";

import { PinnedMap } from "../sdk/index";

import { mountPrivateBpffs, type PrivateBpffs } from "./fixtures/bpffs";
import { bpftool, deleteU32, dumpU32, mapShow, updateU32 } from "./fixtures/bpftool";
import { watchPin } from "./fixtures/pin-watcher";
import { pulumiEnv, usePulumiStack, pulumiToolchainDir, REPO_ROOT, type RunResult as PulumiResult } from "./fixtures/pulumi";

const E2E_PROJECT = path.join(REPO_ROOT, "tests", "fixtures", "e2e-project");

type Args = Record<string, unknown>;
type MapOutputs = { pinPath: string; mapId: number; frozen: boolean; entryCount: number; abi: { maxEntries: number } };

const u32Contents = (entries: Record<number, number>) =>
  Object.entries(entries).map(([key, value]) => ({ key: Number(key), value }));

const u32Hash = (pinPath: string, entries: Record<number, number>, extra: Args = {}): Args => ({
  pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 64, contents: u32Contents(entries), ...extra,
});

/** Both streams of a run: the CLI prints diagnostics on stdout, errors on stderr. */
const all = (result: PulumiResult) => `${result.stdout}\n${result.stderr}`;

/** Registers hooks that skip the remaining steps of a chain once one failed. */
function chainSteps(): void {
  let broken = false;
  beforeEach(function () {
    if (broken) this.skip();
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed") broken = true;
  });
}

describe("e2e: a project stack through the Pulumi CLI", function () {
  this.timeout(120_000);
  const env = usePulumiStack(E2E_PROJECT);
  chainSteps();

  let dir = "";
  let maps: Record<string, Args> = {};
  const pin = (name: string) => path.join(dir, name);
  const outputs = async () => (await env.stack().outputs()).maps as Record<string, MapOutputs>;
  const declare = () => env.stack().setConfig({ maps });
  const up = async (...extra: string[]) => {
    declare();
    return env.stack().ok(["up", "--yes", "--skip-preview", ...extra]);
  };
  const driftCheck = (...extra: string[]) => env.stack().run(["preview", "--refresh", "--expect-no-changes", ...extra]);

  before(() => {
    dir = env.bpffs().dir("chain");
    maps = {
      quotas: u32Hash(pin("quotas"), { 1: 100, 2: 200, 3: 300 }, { name: "quotas" }),
      flags: {
        pinPath: pin("flags"), mapType: "array", keyType: "u32", valueType: "u32", maxEntries: 4, freeze: false,
        contents: u32Contents({ 0: 1, 1: 0 }),
      },
      counters: u32Hash(pin("counters"), { 1: 10 }, { contentsPolicy: "merge" }),
      victim: u32Hash(pin("victim"), { 1: 1 }),
    };
  });

  let ids: Record<string, number> = {};

  it("up creates and pins every map, and bpftool reads back the declared entries", async () => {
    await up();
    const out = await outputs();
    ids = Object.fromEntries(Object.entries(out).map(([name, map]) => [name, map.mapId]));
    assert.deepEqual(dumpU32(pin("quotas")), { 1: 100, 2: 200, 3: 300 });
    assert.deepEqual(dumpU32(pin("flags")), { 0: 1, 1: 0, 2: 0, 3: 0 });
    assert.deepEqual(dumpU32(pin("counters")), { 1: 10 });
    const info = mapShow(pin("quotas"));
    assert.equal(info.id, out.quotas!.mapId);
    assert.deepEqual([info.type, info.name, info.bytes_key, info.bytes_value, info.max_entries, info.frozen], ["hash", "quotas", 4, 4, 64, 0]);
    assert.equal(out.quotas!.entryCount, 3);
    assert.equal(out.quotas!.pinPath, pin("quotas"));
  });

  it("preview --refresh --expect-no-changes is clean (exit 0); entries a BPF-side writer adds in merge mode are not drift", async () => {
    updateU32(pin("counters"), 7, 70); // what the BPF program would write
    const result = await driftCheck();
    assert.equal(result.code, 0, all(result));
  });

  it("an extra key, a changed value and a deleted key are drift: exit 7, and --diff names them", async () => {
    updateU32(pin("quotas"), 4, 400);
    updateU32(pin("quotas"), 2, 999);
    deleteU32(pin("quotas"), 3);
    updateU32(pin("counters"), 1, 12); // a declared key of a merge map is managed
    const result = await driftCheck("--diff");
    assert.equal(result.code, 7, all(result));
    // The refresh part shows declared → live, the update part live → declared, by key (contents are keyed).
    assert.match(result.stdout, /~ 2: 200 => 999/);
    assert.match(result.stdout, /- 3: 300/);
    assert.match(result.stdout, /\+ 4: 400/);
    assert.match(result.stdout, /~ 1: 10 => 12/);
    assert.doesNotMatch(result.stdout, /\b7: 70\b/); // the undeclared merge entry is not shown
    // And one line per drifted map, without --diff too.
    assert.match(all(result), /quotas: drift: 1 added \(4\), 1 changed \(2\), 1 removed \(3\)/);
    assert.match(result.stderr, /no changes were expected for preview but changes were proposed/);
  });

  it("up --refresh repairs the drift in place (same map IDs); merge keeps the writer's entry", async () => {
    await up("--refresh");
    assert.deepEqual(dumpU32(pin("quotas")), { 1: 100, 2: 200, 3: 300 });
    assert.deepEqual(dumpU32(pin("counters")), { 1: 10, 7: 70 });
    const out = await outputs();
    assert.equal(out.quotas!.mapId, ids.quotas);
    assert.equal(out.counters!.mapId, ids.counters);
  });

  it("an unpinned map is drift (exit 7), up --refresh pins a new one, and then the stack is clean", async () => {
    fs.unlinkSync(pin("victim"));
    const result = await driftCheck("--diff");
    assert.equal(result.code, 7, all(result));
    assert.match(result.stdout, /\+ pulumi-nodejs:dynamic\/ebpf:PinnedMap: \(create\)[\s\S]*::victim\]/);
    await up("--refresh");
    const victim = mapShow(pin("victim"));
    assert.notEqual(victim.id, ids.victim);
    assert.equal((await outputs()).victim!.mapId, victim.id);
    assert.deepEqual(dumpU32(pin("victim")), { 1: 1 });
    ids.victim = victim.id;
    const clean = await driftCheck();
    assert.equal(clean.code, 0, all(clean));
  });

  it("in place: a contents update (delta; merge keeps undeclared entries) and freeze false → true keep their map IDs", async () => {
    maps.quotas = u32Hash(pin("quotas"), { 1: 100, 2: 250, 5: 500 }, { name: "quotas" });
    maps.counters = u32Hash(pin("counters"), { 1: 11, 2: 20 }, { contentsPolicy: "merge" });
    maps.flags = { ...maps.flags, freeze: true };
    await up();
    assert.deepEqual(dumpU32(pin("quotas")), { 1: 100, 2: 250, 5: 500 });
    assert.deepEqual(dumpU32(pin("counters")), { 1: 11, 2: 20, 7: 70 });
    const out = await outputs();
    assert.equal(out.quotas!.mapId, ids.quotas);
    assert.equal(mapShow(pin("quotas")).id, ids.quotas);
    assert.equal(out.counters!.mapId, ids.counters);
    assert.equal(out.flags!.mapId, ids.flags);
    assert.equal(out.flags!.frozen, true);
    assert.equal(mapShow(pin("flags")).frozen, 1);
  });

  it("new map IDs: an ABI change (maxEntries) while the pin path never goes missing, and new contents of a frozen map", async () => {
    maps.quotas = u32Hash(pin("quotas"), { 1: 100, 2: 250, 5: 500 }, { name: "quotas", maxEntries: 128 });
    maps.flags = { ...maps.flags, contents: u32Contents({ 0: 2, 1: 0 }) };
    const watcher = await watchPin(pin("quotas"), REPO_ROOT);
    let seen;
    try {
      await up();
    } finally {
      seen = await watcher.stop();
    }
    assert.equal(seen.enoent, 0, `the pin went missing ${seen.enoent} times during the swap`);
    assert.deepEqual(seen.otherErrors, []);
    assert.ok(seen.opens > 0);
    const out = await outputs();
    assert.notEqual(out.quotas!.mapId, ids.quotas);
    assert.equal(out.quotas!.abi.maxEntries, 128);
    const info = mapShow(pin("quotas"));
    assert.equal(info.id, out.quotas!.mapId);
    assert.equal(info.max_entries, 128);
    assert.deepEqual(dumpU32(pin("quotas")), { 1: 100, 2: 250, 5: 500 });
    // The watcher opened the old map and then the new one through the same path.
    assert.deepEqual(seen.mapIds, [ids.quotas, out.quotas!.mapId]);
    ids.quotas = out.quotas!.mapId;

    assert.notEqual(out.flags!.mapId, ids.flags);
    assert.equal(out.flags!.frozen, true);
    assert.equal(mapShow(pin("flags")).frozen, 1);
    assert.deepEqual(dumpU32(pin("flags")), { 0: 2, 1: 0, 2: 0, 3: 0 });
    ids.flags = out.flags!.mapId;
  });

  it("freeze true → false builds a new, unfrozen map", async () => {
    maps.flags = { ...maps.flags, freeze: false };
    await up();
    const out = await outputs();
    assert.notEqual(out.flags!.mapId, ids.flags);
    assert.equal(out.flags!.frozen, false);
    const info = mapShow(pin("flags"));
    assert.equal(info.frozen, 0);
    assert.equal(info.id, out.flags!.mapId);
    assert.deepEqual(dumpU32(pin("flags")), { 0: 2, 1: 0, 2: 0, 3: 0 });
  });

  it("destroy removes our pins and keeps a pin that now holds a foreign map, saying so", async () => {
    // Someone pins another map at the victim's path.
    bpftool("map", "create", pin("foreign"), "type", "array", "key", "4", "value", "4", "entries", "1", "name", "foreign");
    const foreignId = mapShow(pin("foreign")).id;
    fs.renameSync(pin("foreign"), pin("victim"));
    const result = await env.stack().ok(["destroy", "--yes", "--skip-preview"]);
    assert.ok(all(result).includes(`left ${pin("victim")} in place`), all(result));
    for (const name of ["quotas", "flags", "counters"]) assert.equal(fs.existsSync(pin(name)), false, `${name} is still pinned`);
    assert.equal(mapShow(pin("victim")).id, foreignId);
    fs.unlinkSync(pin("victim"));
  });

  it("PinnedMap.get reads a map made outside Pulumi without managing it; destroy leaves it pinned", async () => {
    const outside = pin("outside");
    bpftool("map", "create", outside, "type", "hash", "key", "4", "value", "4", "entries", "8", "name", "outside");
    updateU32(outside, 1, 11);
    maps = {};
    env.stack().setConfig({ maps, gets: { seen: outside } });
    await env.stack().ok(["up", "--yes", "--skip-preview"]);
    const seen = (await outputs()).seen as unknown as Record<string, unknown>;
    assert.equal(seen.mapId, mapShow(outside).id);
    assert.equal(seen.pinPath, outside);
    assert.equal(seen.entryCount, 1);
    assert.deepEqual(seen.abi, { mapType: "hash", keySize: 4, valueSize: 4, maxEntries: 8, flags: [], mapExtra: "0" });
    assert.deepEqual(seen.contents, { "01000000": "0b000000" });
    await env.stack().ok(["destroy", "--yes", "--skip-preview"]);
    assert.deepEqual(dumpU32(outside), { 1: 11 });
    fs.unlinkSync(outside);
  });

  it("a bad input fails preview and up naming contents[1].value and the rule, and up pins nothing", async () => {
    maps = {
      bad: {
        pinPath: pin("bad"), mapType: "hash", keyType: "u32", valueType: "u8", maxEntries: 8,
        contents: [{ key: 1, value: 1 }, { key: 2, value: 300 }],
      },
    };
    declare();
    const result = await env.stack().run(["preview"]);
    assert.notEqual(result.code, 0, all(result));
    assert.match(all(result), /contents\[1\]\.value: .*(255|u8)/);
    // Preview never pins; up is what could have, and must not.
    const up = await env.stack().run(["up", "--yes", "--skip-preview"]);
    assert.notEqual(up.code, 0, all(up));
    assert.match(all(up), /contents\[1\]\.value: .*(255|u8)/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("destroy removes the directories up created for a pin (once empty) and keeps the ones that were there before", async () => {
    // `dir` existed before; `made/deeper` is created by up for the first map;
    // `made/kept` is created by up too, but someone else pins there as well.
    maps = {
      deep: u32Hash(path.join(dir, "made", "deeper", "m"), { 1: 1 }),
      shared: u32Hash(path.join(dir, "made", "kept", "m"), { 2: 2 }),
    };
    await up();
    assert.ok(fs.existsSync(path.join(dir, "made", "deeper", "m")));
    bpftool("map", "create", path.join(dir, "made", "kept", "other"), "type", "array", "key", "4", "value", "4", "entries", "1", "name", "other");
    await env.stack().ok(["destroy", "--yes", "--skip-preview"]);
    assert.equal(fs.existsSync(path.join(dir, "made", "deeper")), false, "an empty directory up created is left behind");
    assert.deepEqual(fs.readdirSync(path.join(dir, "made", "kept")), ["other"], "a directory that still holds a pin is removed or emptied");
    assert.ok(fs.existsSync(dir), "a directory that existed before up is removed");
    fs.unlinkSync(path.join(dir, "made", "kept", "other"));
    fs.rmdirSync(path.join(dir, "made", "kept"));
    fs.rmdirSync(path.join(dir, "made"));
    maps = {};
  });

  it("a misspelled property (contentPolicy) fails preview and up naming it, instead of running the map in exact mode", async () => {
    maps = { typo: u32Hash(pin("typo"), { 1: 1 }, { contentPolicy: "merge" }) };
    declare();
    const result = await env.stack().run(["preview"]);
    assert.notEqual(result.code, 0, all(result));
    assert.match(all(result), /contentPolicy: .*(unknown property|did you mean)/i);
    const up = await env.stack().run(["up", "--yes", "--skip-preview"]);
    assert.notEqual(up.code, 0, all(up));
    assert.match(all(up), /contentPolicy: .*(unknown property|did you mean)/i);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

describe("e2e: an Automation API inline program", function () {
  this.timeout(120_000);
  let bpffs: PrivateBpffs | undefined;
  let tmp = "";
  let workDir = "";
  let stack: auto.Stack | undefined;
  before(() => {
    bpffs = mountPrivateBpffs();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-inline-"));
    // The engine starts the dynamic provider in the workspace's workDir (not
    // the host process's cwd), and it resolves @pulumi/pulumi and pulumi-ebpf
    // from there: so workDir is a directory inside this package, as it would
    // be a user's project directory. (LocalWorkspace's default, a fresh
    // directory under /tmp, cannot resolve them.)
    fs.mkdirSync(path.join(REPO_ROOT, "dist", ".stacks"), { recursive: true });
    workDir = fs.mkdtempSync(path.join(REPO_ROOT, "dist", ".stacks", "inline-"));
  });
  after(async () => {
    try {
      if (stack) {
        await stack.destroy().catch((error: Error) => console.warn(`inline cleanup: destroy: ${error.message}`));
        await stack.workspace.removeStack(stack.name).catch((error: Error) => console.warn(`inline cleanup: stack rm: ${error.message}`));
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
      bpffs?.unmount();
    }
  });

  it("creates, drift-checks and destroys a PinnedMap declared in the host process", async () => {
    const pinPath = path.join(bpffs!.dir("inline"), "inline_map");
    const program = async () => {
      const map = new PinnedMap("inline", {
        pinPath, mapType: "array", keyType: "u32", valueType: "u64", maxEntries: 2, contents: [{ key: 1, value: "18446744073709551615" }],
      });
      return { mapId: map.mapId, contents: map.contents };
    };
    const env = pulumiEnv(tmp);
    const pulumiCommand = await auto.PulumiCommand.get({ root: path.dirname(pulumiToolchainDir()), skipVersionCheck: true });
    stack = await auto.LocalWorkspace.createOrSelectStack(
      { stackName: "inline", projectName: "pulumi-ebpf-inline", program },
      {
        pulumiCommand,
        envVars: env,
        workDir,
        projectSettings: { name: "pulumi-ebpf-inline", runtime: "nodejs", backend: { url: env.PULUMI_BACKEND_URL } },
      },
    );
    const up = await stack.up();
    assert.equal(up.summary.result, "succeeded");
    assert.equal(up.outputs.mapId!.value, mapShow(pinPath).id);
    // u64 values travel as decimal strings.
    assert.deepEqual(up.outputs.contents!.value, { 1: "18446744073709551615" });
    const preview = await stack.preview({ refresh: true, expectNoChanges: true });
    assert.equal(preview.changeSummary.update ?? 0, 0);
    const destroyed = await stack.destroy();
    assert.equal(destroyed.summary.result, "succeeded");
    assert.equal(fs.existsSync(pinPath), false);
  });
});
