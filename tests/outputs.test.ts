// Every documented output has a value after `pulumi up`, also where the
// input was left out (sizes implied by codecs, defaults): a real CLI run of
// tests/fixtures/outputs-project exports each one.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { usePulumiStack, REPO_ROOT } from "./fixtures/pulumi";

const PROJECT = path.join(REPO_ROOT, "tests", "fixtures", "outputs-project");

describe("outputs: every documented output has a value after up", function () {
  this.timeout(300_000);
  const env = usePulumiStack(PROJECT);

  it("exports keySize, valueSize, contentsPolicy, freeze, ifExists, contentsFileDigest and the rest, none undefined", async () => {
    const dir = env.bpffs().dir("outputs");
    const file = path.join(env.stack().configFile, "..", "entries.jsonl");
    fs.writeFileSync(file, `{"key":0,"value":"5"}\n{"key":2,"value":7}\n`);
    env.stack().setConfig({ dir, file });
    const up = await env.stack().ok(["up", "--yes", "--skip-preview"]);
    assert.doesNotMatch(up.output, /Undefined value will not show/);
    const outputs = await env.stack().outputs() as Record<string, Record<string, unknown>>;
    const inline = outputs.inline!;
    const fromFile = outputs.fromFile!;
    for (const [name, map] of Object.entries({ inline, fromFile })) {
      for (const [key, value] of Object.entries(map)) assert.notEqual(value, undefined, `${name}.${key}`);
    }
    assert.deepEqual(
      { keySize: inline.keySize, valueSize: inline.valueSize, contentsPolicy: inline.contentsPolicy, freeze: inline.freeze, ifExists: inline.ifExists, flags: inline.flags },
      { keySize: 4, valueSize: 8, contentsPolicy: "exact", freeze: false, ifExists: "fail", flags: [] },
    );
    assert.deepEqual(inline.contents, { 1: { enabled: 1, rateLimitPps: 100 } });
    assert.deepEqual((inline.abi as { valueSize: number }).valueSize, 8);
    assert.equal(typeof inline.mapId, "number");
    assert.equal(inline.frozen, false);
    assert.equal(inline.entryCount, 1);
    assert.match(String(inline.contentsDigest), /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(
      { keySize: fromFile.keySize, valueSize: fromFile.valueSize, keyType: fromFile.keyType, contentsPolicy: fromFile.contentsPolicy, freeze: fromFile.freeze, ifExists: fromFile.ifExists },
      { keySize: 4, valueSize: 8, keyType: "u32", contentsPolicy: "exact", freeze: false, ifExists: "fail" },
    );
    assert.match(String(fromFile.contentsFileDigest), /^sha256:[0-9a-f]{64}$/);
    assert.equal(fromFile.entryCount, 2);
  });
});
