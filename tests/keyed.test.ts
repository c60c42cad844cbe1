// Contents keyed by key, through the real Pulumi CLI and the real kernel: a
// 50-entry map where one key is added, one changed and one removed shows
// exactly three keyed changes in `preview --diff` (not 50 index-wise ones),
// drift and in-place updates are named in one line per map without --diff,
// a contentsFile map's preview names the keys its file changes, and a stack
// whose state holds contents in the earlier array form upgrades without a
// spurious change or a new map.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { deleteU32, dumpHex, mapShow, updateU32 } from "./fixtures/bpftool";
import { REPO_ROOT, usePulumiStack, type RunResult } from "./fixtures/pulumi";

const E2E_PROJECT = path.join(REPO_ROOT, "tests", "fixtures", "e2e-project");

/** Both streams of a run: the CLI prints diagnostics on stdout, errors on stderr. */
const all = (result: RunResult) => `${result.stdout}\n${result.stderr}`;

/** An IPv4 address as the u32 (host order) bpftool's u32 helpers write: its four bytes in order. */
const ipU32 = (ip: string) => Buffer.from(ip.split(".").map(Number)).readUInt32LE(0);

/** The live entries of an ipv4 → u32 map, by address. */
function dumpIpv4(pin: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { key, value } of dumpHex(pin)) out[[...Buffer.from(key, "hex")].join(".")] = Buffer.from(value, "hex").readUInt32LE(0);
  return out;
}

/** 50 addresses: 10.0.0.1 … 10.0.0.49 and 203.0.113.10, each → 1. */
function fiftyEntries(): Record<string, number> {
  const entries: Record<string, number> = {};
  for (let host = 1; host <= 49; host++) entries[`10.0.0.${host}`] = 1;
  entries["203.0.113.10"] = 1;
  return entries;
}

/**
 * The distinct keyed entry changes a CLI diff shows (`+ 10.0.0.1: 1`,
 * `~ …: 1 => 2`, `- …`), whitespace collapsed: the program also exports
 * `contents`, so the stack outputs repeat the resource's lines.
 */
const keyedChangeLines = (stdout: string) => [...new Set(stdout.split("\n")
  .filter((line) => /^\s*[-+~] "?\d+\.\d+\.\d+\.\d+"?\s*:/.test(line))
  .map((line) => line.trim().replace(/\s+/g, " ")))];

/** Prints a CLI run for the report (the integrator quotes these). */
function show(title: string, result: RunResult): void {
  console.log(`----- ${title} (exit ${result.code})\n${all(result).trim()}\n-----`);
}

describe("keyed contents through the Pulumi CLI", function () {
  this.timeout(180_000);
  const env = usePulumiStack(E2E_PROJECT);
  let dir = "";
  let tmp = "";
  let inline: Record<string, number> = {};
  let fileEntries: Record<string, number> = {};
  const pin = (name: string) => path.join(dir, name);
  const contentsFile = () => path.join(tmp, "blocked.jsonl");
  const writeFile = () => fs.writeFileSync(contentsFile(), Object.entries(fileEntries).map(([key, value]) => `${JSON.stringify({ key, value })}\n`).join(""));
  const declare = () => env.stack().setConfig({
    maps: {
      allowed: { pinPath: pin("allowed"), mapType: "hash", keyType: "ipv4", valueType: "u32", maxEntries: 128, contents: inline },
      blocked: { pinPath: pin("blocked"), mapType: "hash", keyType: "ipv4", valueType: "u32", maxEntries: 128, contentsFile: contentsFile() },
    },
  });
  const mapIds = async () => {
    const maps = (await env.stack().outputs()).maps as Record<string, { mapId: number }>;
    return { allowed: maps.allowed!.mapId, blocked: maps.blocked!.mapId };
  };
  let ids = { allowed: 0, blocked: 0 };

  before(() => {
    dir = env.bpffs().dir("keyed");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-keyed-"));
    inline = fiftyEntries();
    fileEntries = fiftyEntries();
    writeFile();
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("up deploys both 50-entry maps; the state records contents keyed by address", async () => {
    declare();
    await env.stack().ok(["up", "--yes", "--skip-preview"]);
    ids = await mapIds();
    assert.deepEqual(dumpIpv4(pin("allowed")), inline);
    assert.deepEqual(dumpIpv4(pin("blocked")), fileEntries);
    const state = JSON.parse((await env.stack().ok(["stack", "export"])).stdout);
    const allowed = state.deployment.resources.find((resource: { urn: string }) => resource.urn.endsWith("::allowed"));
    assert.deepEqual(allowed.outputs.contents, inline);
    assert.deepEqual(allowed.inputs.contents, inline);
    assert.equal(Object.keys(allowed.outputs.contents)[0], "10.0.0.1", "canonical (address) order");
  });

  it("a declaration that adds a key sorting first, changes one and removes one: preview --diff shows exactly three keyed changes; up says +1 ~1 -1 in place", async () => {
    delete inline["10.0.0.7"];
    inline["9.0.0.1"] = 1;
    inline["203.0.113.10"] = 2;
    declare();
    const preview = await env.stack().ok(["preview", "--diff"]);
    show("pulumi preview --diff (inline: +9.0.0.1 ~203.0.113.10 -10.0.0.7)", preview);
    assert.deepEqual(keyedChangeLines(preview.stdout).sort(), ["+ 9.0.0.1 : 1", "- 10.0.0.7 : 1", "~ 203.0.113.10: 1 => 2"], preview.stdout);
    assert.match(preview.stdout, /\+ "?9\.0\.0\.1"?\s*: 1\b/);
    assert.match(preview.stdout, /~ "?203\.0\.113\.10"?\s*: 1 => 2\b/);
    assert.match(preview.stdout, /- "?10\.0\.0\.7"?\s*: 1\b/);
    const up = await env.stack().ok(["up", "--yes", "--skip-preview"]);
    show("pulumi up (inline)", up);
    assert.match(all(up), /allowed: applied in place: \+1 ~1 -1/);
    assert.equal((await mapIds()).allowed, ids.allowed, "same map: a delta");
    assert.deepEqual(dumpIpv4(pin("allowed")), inline);
  });

  it("drift behind Pulumi's back: a drift check without --diff exits 7 and names the added, changed and removed keys", async () => {
    updateU32(pin("allowed"), ipU32("10.9.9.9"), 1);
    updateU32(pin("allowed"), ipU32("203.0.113.10"), 3);
    deleteU32(pin("allowed"), ipU32("10.0.0.8"));
    const check = await env.stack().run(["preview", "--refresh", "--expect-no-changes"]);
    show("pulumi preview --refresh --expect-no-changes (inline drift)", check);
    assert.equal(check.code, 7, all(check));
    assert.match(all(check), /allowed: drift: 1 added \(10\.9\.9\.9\), 1 changed \(203\.0\.113\.10\), 1 removed \(10\.0\.0\.8\)/);
    const withDiff = await env.stack().run(["preview", "--refresh", "--expect-no-changes", "--diff"]);
    assert.equal(withDiff.code, 7);
    // Refresh (declared → live) and update (live → declared): three keyed changes each.
    assert.equal(keyedChangeLines(withDiff.stdout).length, 6, withDiff.stdout);
    const repair = await env.stack().ok(["up", "--refresh", "--yes", "--skip-preview"]);
    show("pulumi up --refresh (inline repair)", repair);
    assert.match(all(repair), /allowed: applied in place: \+1 ~1 -1/);
    assert.deepEqual(dumpIpv4(pin("allowed")), inline);
    assert.equal((await env.stack().run(["preview", "--refresh", "--expect-no-changes"])).code, 0);
  });

  it("a contentsFile map: preview names the keys a changed file changes, up applies +1 ~1 -1 in place, and drift is named without --diff", async () => {
    delete fileEntries["10.0.0.7"];
    fileEntries["9.0.0.1"] = 1;
    fileEntries["203.0.113.10"] = 2;
    writeFile();
    const preview = await env.stack().ok(["preview"]);
    show("pulumi preview (contentsFile changed)", preview);
    assert.match(all(preview), /blocked: contentsFile \S+blocked\.jsonl: 3 entries change: 1 added \(9\.0\.0\.1\), 1 changed \(203\.0\.113\.10\), 1 removed \(10\.0\.0\.7\)/);
    const up = await env.stack().ok(["up", "--yes", "--skip-preview"]);
    show("pulumi up (contentsFile)", up);
    assert.match(all(up), /blocked: applied in place: \+1 ~1 -1/);
    assert.equal((await mapIds()).blocked, ids.blocked);
    assert.deepEqual(dumpIpv4(pin("blocked")), fileEntries);

    updateU32(pin("blocked"), ipU32("10.9.9.9"), 1);
    updateU32(pin("blocked"), ipU32("203.0.113.10"), 3);
    deleteU32(pin("blocked"), ipU32("10.0.0.8"));
    const check = await env.stack().run(["preview", "--refresh", "--expect-no-changes"]);
    show("pulumi preview --refresh --expect-no-changes (contentsFile drift)", check);
    assert.equal(check.code, 7, all(check));
    assert.match(all(check), /blocked: drift: 1 added \(10\.9\.9\.9\), 1 changed \(203\.0\.113\.10\), 1 removed \(10\.0\.0\.8\)/);
    await env.stack().ok(["up", "--refresh", "--yes", "--skip-preview"]);
    assert.deepEqual(dumpIpv4(pin("blocked")), fileEntries);
  });

  it("an ABI change says which field builds a new kernel map", async () => {
    const maps = { allowed: { pinPath: pin("allowed"), mapType: "hash", keyType: "ipv4", valueType: "u32", maxEntries: 256, contents: inline } };
    env.stack().setConfig({ maps: { ...maps, blocked: { pinPath: pin("blocked"), mapType: "hash", keyType: "ipv4", valueType: "u32", maxEntries: 128, contentsFile: contentsFile() } } });
    const up = await env.stack().ok(["up", "--yes", "--skip-preview"]);
    show("pulumi up (maxEntries 128 → 256)", up);
    assert.match(all(up), /allowed: new kernel map: maxEntries 128 → 256/);
    assert.notEqual((await mapIds()).allowed, ids.allowed);
    ids.allowed = mapShow(pin("allowed")).id;
    declare(); // back to 128, for the upgrade step
    await env.stack().ok(["up", "--yes", "--skip-preview"]);
    ids.allowed = mapShow(pin("allowed")).id;
  });

  it("state recorded in the earlier array form upgrades: no change before or after a refresh, and up keeps the map", async () => {
    const state = JSON.parse((await env.stack().ok(["stack", "export"])).stdout);
    const allowed = state.deployment.resources.find((resource: { urn: string }) => resource.urn.endsWith("::allowed"));
    // The shape the provider recorded before contents were keyed: canonical entries in canonical order.
    const asArray = (keyed: Record<string, number>) => Object.entries(keyed).map(([key, value]) => ({ key, value }));
    allowed.inputs.contents = asArray(allowed.inputs.contents);
    allowed.outputs.contents = asArray(allowed.outputs.contents);
    const file = path.join(tmp, "old-state.json");
    fs.writeFileSync(file, JSON.stringify(state));
    await env.stack().ok(["stack", "import", "--file", file]);
    const imported = JSON.parse((await env.stack().ok(["stack", "export"])).stdout);
    assert.ok(Array.isArray(imported.deployment.resources.find((resource: { urn: string }) => resource.urn.endsWith("::allowed")).outputs.contents));

    const before = await env.stack().run(["preview", "--expect-no-changes", "--diff"]);
    assert.equal(before.code, 0, all(before));
    await env.stack().ok(["refresh", "--yes", "--skip-preview"]);
    const after = await env.stack().run(["preview", "--expect-no-changes"]);
    show("pulumi preview --expect-no-changes (after refresh of array-form state)", after);
    assert.equal(after.code, 0, all(after));
    const refreshed = JSON.parse((await env.stack().ok(["stack", "export"])).stdout);
    assert.deepEqual(refreshed.deployment.resources.find((resource: { urn: string }) => resource.urn.endsWith("::allowed")).outputs.contents, inline);
    await env.stack().ok(["up", "--yes", "--skip-preview"]);
    assert.equal(mapShow(pin("allowed")).id, ids.allowed, "the map ID is unchanged");
    assert.equal((await mapIds()).allowed, ids.allowed);
  });
});
