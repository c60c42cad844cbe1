// The Python example (examples/python-allowlist) through the real Pulumi CLI,
// the Python language host, a virtualenv with pulumi==3.248.0 and the Python
// SDK generated from schema.json by pulumi/pkg's own code generator, against
// the real kernel, checked with bpftool: deploy, refresh clean, an in-place
// change and a new map, destroy.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { dumpHex, mapShow } from "./fixtures/bpftool";
import { generatePythonSdk, installPythonSdk, pythonVenvBin } from "./fixtures/plugin-python";
import { REPO_ROOT, usePulumiStack, type PulumiRunOptions } from "./fixtures/pulumi";

const PYTHON_EXAMPLE = path.join(REPO_ROOT, "examples", "python-allowlist");

/** The live entries of an ipv4 → u8 map, by address. */
function dumpIpv4(pin: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { key, value } of dumpHex(pin)) out[[...Buffer.from(key, "hex")].join(".")] = parseInt(value, 16);
  return out;
}

describe("provider plugin: the Python example through the CLI", function () {
  this.timeout(240_000);
  const env = usePulumiStack(PYTHON_EXAMPLE);
  let pinRoot = "";
  let python: PulumiRunOptions = {};
  const pin = () => path.join(pinRoot, "allow_v4");

  before(function () {
    this.timeout(600_000);
    pinRoot = path.join(env.bpffs().root, "python-allowlist");
    env.stack().setConfig({ pinRoot });
    // The venv first on PATH (the v3.68 host does not take the engine's
    // virtualenv), the generated SDK on PYTHONPATH; both outside the example.
    const scratch = path.dirname(env.stack().configFile);
    const sdk = generatePythonSdk(path.join(scratch, "sdk-source"));
    const site = installPythonSdk(sdk, path.join(scratch, "site"));
    python = { env: { PATH: `${pythonVenvBin()}${path.delimiter}${env.stack().env.PATH}`, PYTHONPATH: site } };
  });

  it("deploys through the generated SDK the map bpftool confirms, and refreshes clean", async function () {
    const up = await env.stack().ok(["up", "--yes"], python);
    assert.match(up.stdout, /\+ 2 created/);
    const info = mapShow(pin());
    assert.equal(info.name, "py_allow_v4");
    assert.equal(info.max_entries, 1024);
    assert.deepEqual(dumpIpv4(pin()), { "10.0.0.1": 1, "192.168.1.10": 2 });
    const outputs = (await env.stack().ok(["stack", "output", "--json"], python)).stdout;
    assert.equal(JSON.parse(outputs).mapId, info.id);
    await env.stack().ok(["preview", "--refresh", "--expect-no-changes"], python);
  });

  it("changes a value in place and maxEntries with a new map", async function () {
    const before = mapShow(pin()).id;
    env.stack().setConfig({ pinRoot, gatewayValue: 7 });
    const preview = await env.stack().ok(["preview", "--diff"], python);
    assert.match(preview.stdout, /~ 192\.168\.1\.10: 2 => 7/);
    await env.stack().ok(["up", "--yes"], python);
    assert.equal(mapShow(pin()).id, before);
    assert.deepEqual(dumpIpv4(pin()), { "10.0.0.1": 1, "192.168.1.10": 7 });
    env.stack().setConfig({ pinRoot, gatewayValue: 7, maxEntries: 2048 });
    const up = await env.stack().ok(["up", "--yes"], python);
    assert.match(up.stdout, /new kernel map: maxEntries 1024 → 2048/);
    assert.notEqual(mapShow(pin()).id, before);
    assert.equal(mapShow(pin()).max_entries, 2048);
    await env.stack().ok(["preview", "--refresh", "--expect-no-changes"], python);
  });

  it("destroys: the pin is gone", async function () {
    await env.stack().ok(["destroy", "--yes"], python);
    assert.equal(fs.existsSync(pin()), false);
  });
});
