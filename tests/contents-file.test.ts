// contentsFile: a map's entries from a JSON Lines file, with only the file's
// name and digest in the state. Through the real Pulumi CLI: the state stays
// small whatever the entry count, drift is still detected (exit 7, with the
// drifted keys named), up --refresh repairs it in place, and a refresh whose
// file is gone or broken fails naming it (the state is kept). In merge mode
// the state also records the file's keys (packed), so an update deletes the
// keys the file dropped while keys a BPF program wrote stay.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { canonicalContents, checkSpec as checkSpecOnHost, SpecError } from "../provider/core";
import { deleteU32, dumpU32, mapShow, updateU32 } from "./fixtures/bpftool";
import { usePulumiStack, REPO_ROOT } from "./fixtures/pulumi";

const E2E_PROJECT = path.join(REPO_ROOT, "tests", "fixtures", "e2e-project");

function writeEntries(file: string, count: number, valueOf: (key: number) => number): void {
  const lines: string[] = [];
  for (let key = 0; key < count; key++) lines.push(JSON.stringify({ key, value: valueOf(key) }));
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
}

function writeKeyed(file: string, keys: number[], valueOf: (key: number) => number): void {
  fs.writeFileSync(file, `${keys.map((key) => JSON.stringify({ key, value: valueOf(key) })).join("\n")}\n`);
}

/** `count` distinct pseudo-random u32 keys (a fixed sequence): the worst case for the state's key record. */
function spreadKeys(count: number): number[] {
  const keys = new Set<number>();
  let seed = 2026;
  while (keys.size < count) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    keys.add(seed);
  }
  return [...keys];
}

type StateResource = { type: string; outputs?: Record<string, unknown>; inputs?: Record<string, unknown> };

/** The PinnedMap resources of the stack's checkpoint. */
function pinnedMaps(exported: string): StateResource[] {
  const state = JSON.parse(exported) as { deployment: { resources?: StateResource[] } };
  return (state.deployment.resources ?? []).filter((resource) => resource.type.endsWith("ebpf:PinnedMap"));
}

describe("contentsFile", function () {
  let tmp = "";
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-contents-file-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe("check", () => {
    // The file rules, without the host: the pin path is never touched here.
    const base = { pinPath: "/sys/fs/bpf/x/m", mapType: "hash", keyType: "u32", valueType: "u8", maxEntries: 8 };
    const checkSpec = (input: Record<string, unknown>) => checkSpecOnHost(input, { pinLocation: false });

    it("reads the entries of a JSON Lines file, skipping blank lines", () => {
      const file = path.join(tmp, "ok.jsonl");
      fs.writeFileSync(file, `{"key":1,"value":2}\n\n{"key":3,"value":4}\n`);
      const spec = checkSpec({ ...base, contentsFile: file });
      // The file's entries travel packed (spec.table); contents stays as declared (none inline).
      assert.deepEqual(canonicalContents(spec), [{ key: 1, value: 2 }, { key: 3, value: 4 }]);
      assert.deepEqual(spec.contents, []);
      assert.equal(spec.table?.count, 2);
      assert.equal(spec.contentsFile, file);
    });

    it("names the file and line of a bad entry, a line that is not JSON, and a missing file", () => {
      const file = path.join(tmp, "bad.jsonl");
      fs.writeFileSync(file, `{"key":1,"value":2}\nnot json\n{"key":2,"value":300}\n`);
      assert.throws(() => checkSpec({ ...base, contentsFile: file }), (error: unknown) => {
        assert.ok(error instanceof SpecError);
        assert.match(error.message, new RegExp(`contentsFile ${file} line 2: is not JSON`));
        assert.match(error.message, new RegExp(`contentsFile ${file} line 3\\.value: 300 does not fit u8`));
        return true;
      });
      assert.throws(() => checkSpec({ ...base, contentsFile: path.join(tmp, "missing.jsonl") }), /contentsFile: cannot read .*ENOENT/);
    });

    it("refuses contents and contentsFile together", () => {
      const file = path.join(tmp, "ok.jsonl");
      assert.throws(() => checkSpec({ ...base, contentsFile: file, contents: [] }), /contentsFile: give contents or contentsFile, not both/);
    });
  });

  describe("through the Pulumi CLI", function () {
    this.timeout(180_000);
    const env = usePulumiStack(E2E_PROJECT);
    const count = 20_000;
    let pin = "";
    let file = "";
    const declare = () => env.stack().setConfig({
      maps: { big: { pinPath: pin, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: count * 2, contentsFile: file } },
    });

    it("deploys the file's entries, and the state holds the digest, not the entries", async () => {
      pin = path.join(env.bpffs().dir("file"), "big");
      file = path.join(tmp, "big.jsonl");
      writeEntries(file, count, (key) => key * 3);
      declare();
      await env.stack().ok(["up", "--yes", "--skip-preview"]);
      const live = dumpU32(pin);
      assert.equal(Object.keys(live).length, count);
      assert.equal(live[1234], 1234 * 3);
      const state = (await env.stack().ok(["stack", "export"])).stdout;
      // 20k entries inline would be over a megabyte; the state keeps a digest.
      assert.ok(state.length < 64 * 1024, `state is ${state.length} bytes`);
      assert.match(state, /"contentsFileDigest": "sha256:[0-9a-f]{64}"/);
    });

    it("a clean drift check exits 0; a change behind Pulumi's back exits 7 and names the keys", async () => {
      assert.equal((await env.stack().run(["preview", "--refresh", "--expect-no-changes"])).code, 0);
      updateU32(pin, 7, 999);
      deleteU32(pin, 8);
      const result = await env.stack().run(["preview", "--refresh", "--expect-no-changes", "--diff"]);
      assert.equal(result.code, 7, result.stdout + result.stderr);
      // The recorded digest changes from the file's to the live one (not merely mentioned).
      assert.match(result.stdout, /~ contentsFileDigest\s*:\s*"sha256:[0-9a-f]{64}" => "sha256:[0-9a-f]{64}"/);
      assert.match(result.stdout, /changed: \[\s*\+\s*\[0\]: 7/);
      assert.match(result.stdout, /removed: \[\s*\+\s*\[0\]: 8/);
    });

    it("up --refresh repairs it in place, and a changed file is applied as a delta", async () => {
      const before = (await env.stack().outputs()).maps as Record<string, { mapId: number }>;
      await env.stack().ok(["up", "--refresh", "--yes", "--skip-preview"]);
      assert.equal(dumpU32(pin)[7], 21);
      assert.equal(dumpU32(pin)[8], 24);
      writeEntries(file, count, (key) => (key === 5 ? 55 : key * 3));
      await env.stack().ok(["up", "--yes", "--skip-preview"]);
      const after = (await env.stack().outputs()).maps as Record<string, { mapId: number }>;
      assert.equal(after.big.mapId, before.big.mapId, "same map: an in-place delta");
      assert.equal(dumpU32(pin)[5], 55);
      assert.equal((await env.stack().run(["preview", "--refresh", "--expect-no-changes"])).code, 0);
    });

    it("a refresh whose file is gone or broken fails naming the file and the problem, and the state keeps the file mode", async () => {
      const before = pinnedMaps((await env.stack().ok(["stack", "export"])).stdout);
      assert.equal(before.length, 1);
      const digest = before[0]!.outputs!.contentsFileDigest;
      assert.match(String(digest), /^sha256:/);
      const saved = `${file}.saved`;
      fs.renameSync(file, saved);
      try {
        const gone = await env.stack().run(["refresh", "--yes", "--skip-preview"]);
        assert.notEqual(gone.code, 0, gone.stdout + gone.stderr);
        assert.match(gone.stdout + gone.stderr, new RegExp(`contentsFile ${file}[\\s\\S]*ENOENT`));
        fs.writeFileSync(file, `{"key":1,"value":3}\n{"key":2,\n`);
        const broken = await env.stack().run(["refresh", "--yes", "--skip-preview"]);
        assert.notEqual(broken.code, 0, broken.stdout + broken.stderr);
        assert.match(broken.stdout + broken.stderr, new RegExp(`contentsFile ${file} line 2: is not JSON`));
        // A drift check is an error too (not 0, not 7: nothing was compared).
        const check = await env.stack().run(["preview", "--refresh", "--expect-no-changes"]);
        assert.ok(check.code !== 0 && check.code !== 7, `drift check exited ${check.code}`);
      } finally {
        fs.renameSync(saved, file);
      }
      const after = pinnedMaps((await env.stack().ok(["stack", "export"])).stdout);
      for (const props of [after[0]!.outputs!, after[0]!.inputs!]) {
        assert.equal(props.contentsFile, file);
        assert.equal(props.contentsFileDigest, digest);
        assert.equal(props.contents, undefined, "the state did not turn into inline contents");
      }
      assert.equal((await env.stack().run(["preview", "--refresh", "--expect-no-changes"])).code, 0);
    });
  });

  describe("merge mode through the Pulumi CLI, 100k entries", function () {
    this.timeout(300_000);
    const env = usePulumiStack(E2E_PROJECT);
    const count = 100_000;
    const keys = spreadKeys(count + 1);
    const writerKey = keys.pop()!; // in no file: a BPF program's entry
    const dropped = keys.slice(0, 1000);
    let pin = "";
    let file = "";
    let mapId = 0;
    const declare = () => env.stack().setConfig({
      maps: {
        merged: {
          pinPath: pin, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: count + 1024, flags: ["no_prealloc"],
          contentsPolicy: "merge", contentsFile: file,
        },
      },
    });

    it("deploys the file; the state records its keys packed, not its entries (size logged)", async () => {
      pin = path.join(env.bpffs().dir("merge"), "merged");
      file = path.join(tmp, "merged.jsonl");
      writeKeyed(file, keys, (key) => key % 1000);
      declare();
      await env.stack().ok(["up", "--yes", "--skip-preview"]);
      mapId = mapShow(pin).id;
      assert.equal(Object.keys(dumpU32(pin)).length, count);
      const exported = (await env.stack().ok(["stack", "export"])).stdout;
      const [map] = pinnedMaps(exported);
      assert.match(String(map!.outputs!.contentsFileKeys), /^keys1:4:/);
      assert.equal(map!.outputs!.contents, undefined);
      console.log(`      state with ${count} pseudo-random keys in merge mode: ${exported.length} B (contentsFileKeys ${String(map!.outputs!.contentsFileKeys).length} B)`);
      // The entries inline would be about 6 MB.
      assert.ok(exported.length < 512 * 1024, `state is ${exported.length} bytes`);
    });

    it("an update deletes the keys the new file dropped, and only those: a writer's key stays", async () => {
      updateU32(pin, writerKey, 4242);
      const kept = keys.slice(dropped.length);
      writeKeyed(file, kept, (key) => (key === kept[0] ? 7 : key % 1000));
      await env.stack().ok(["up", "--yes", "--skip-preview"]);
      const live = dumpU32(pin);
      assert.equal(live[writerKey], 4242, "the writer's key survived");
      for (const key of dropped) assert.equal(live[key], undefined, `dropped key ${key} is still there`);
      assert.equal(live[kept[0]!], 7);
      assert.equal(live[kept[1]!], kept[1]! % 1000);
      assert.equal(Object.keys(live).length, kept.length + 1);
      assert.equal(mapShow(pin).id, mapId, "in place: the same map");
      // The writer's key is not drift in merge mode.
      assert.equal((await env.stack().run(["preview", "--refresh", "--expect-no-changes"])).code, 0);
    });
  });
});
