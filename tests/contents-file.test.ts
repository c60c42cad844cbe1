// contentsFile: a map's entries from a JSON Lines file, with only the file's
// name and digest in the state. Through the real Pulumi CLI: the state stays
// small whatever the entry count, drift is still detected (exit 7, with the
// drifted keys named), and up --refresh repairs it in place.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { checkSpec, SpecError } from "../provider/core/spec";
import { deleteU32, dumpU32, updateU32 } from "./fixtures/bpftool";
import { usePulumiStack, REPO_ROOT } from "./fixtures/pulumi";

const E2E_PROJECT = path.join(REPO_ROOT, "tests", "fixtures", "e2e-project");

function writeEntries(file: string, count: number, valueOf: (key: number) => number): void {
  const lines: string[] = [];
  for (let key = 0; key < count; key++) lines.push(JSON.stringify({ key, value: valueOf(key) }));
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
}

describe("contentsFile", function () {
  let tmp = "";
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-contents-file-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe("check", () => {
    const base = { pinPath: "/sys/fs/bpf/x/m", mapType: "hash", keyType: "u32", valueType: "u8", maxEntries: 8 };

    it("reads the entries of a JSON Lines file, skipping blank lines", () => {
      const file = path.join(tmp, "ok.jsonl");
      fs.writeFileSync(file, `{"key":1,"value":2}\n\n{"key":3,"value":4}\n`);
      const spec = checkSpec({ ...base, contentsFile: file });
      assert.deepEqual(spec.contents, [{ key: 1, value: 2 }, { key: 3, value: 4 }]);
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
      assert.match(result.stdout, /contentsFileDigest/);
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
  });
});
