// Every project under examples/ deployed and destroyed through the real
// Pulumi CLI, with its pins in a private bpffs (stack config pinRoot) and
// bpftool reading back what it made. The drift example runs its own script.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

import { bpftool, dumpHex, mapShow } from "./fixtures/bpftool";
import { REPO_ROOT, runAsync, usePulumiStack } from "./fixtures/pulumi";

const example = (name: string) => path.join(REPO_ROOT, "examples", name);

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b.toString("hex");
};
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b.toString("hex");
};
const byKey = (entries: { key: string; value: string }[]) => Object.fromEntries(entries.map((e) => [e.key, e.value]));

/**
 * What is pinned at an example's default pin root under /sys/fs/bpf (sorted
 * names, or undefined when the directory does not exist). The tests set
 * pinRoot to a private bpffs; this must not change while they run.
 */
const defaultPins = (name: string): string[] | undefined => {
  const dir = path.join("/sys/fs/bpf", "pulumi-ebpf-examples", name);
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : undefined;
};

/** One example: deploy with pinRoot in a private bpffs, check, destroy, check the pins are gone. */
function exampleSuite(
  name: string,
  check: (pinRoot: string, outputs: Record<string, unknown>) => void | Promise<void>,
  pins: string[],
  setup?: (pinRoot: string) => void | Promise<void>,
): void {
  describe(`examples/${name}`, function () {
    this.timeout(120_000);
    const env = usePulumiStack(example(name));
    it("deploys, reads back as declared, and destroys cleanly", async () => {
      const pinRoot = path.join(env.bpffs().root, name);
      const outside = defaultPins(name);
      await setup?.(pinRoot);
      env.stack().setConfig({ pinRoot });
      await env.stack().ok(["up", "--yes", "--skip-preview"]);
      assert.deepEqual(defaultPins(name), outside, `the stack pinned under /sys/fs/bpf/pulumi-ebpf-examples/${name}`);
      await check(pinRoot, await env.stack().outputs());
      await env.stack().ok(["destroy", "--yes", "--skip-preview"]);
      for (const pin of pins) assert.equal(fs.existsSync(path.join(pinRoot, pin)), false, `${pin} is still pinned`);
    });
  });
}

exampleSuite("quickstart", (pinRoot, out) => {
  const pin = path.join(pinRoot, "rate_limits");
  assert.equal(out.mapId, mapShow(pin).id);
  assert.deepEqual(byKey(dumpHex(pin)), { "0a000001": u32(1000), "0a000002": u32(5000), c0a8010a: u32(250) });
}, ["rate_limits"]);

exampleSuite("frozen-config", (pinRoot, out) => {
  const pin = path.join(pinRoot, "features");
  const info = mapShow(pin);
  assert.equal(info.frozen, 1);
  assert.equal(out.frozen, true);
  assert.equal(out.mapId, info.id);
  const entries = byKey(dumpHex(pin));
  // struct { u8 enabled; u8 pad[3]; u32 rate_limit_pps; u64 burst; }
  assert.equal(entries[u32(0)], `01000000${u32(100000)}d007000000000000`);
  assert.equal(entries[u32(2)], `01000000${u32(5000)}00e40b5402000000`);
  // User space can no longer write it: the kernel refuses the update (EPERM), not bpftool's parser.
  assert.throws(() => bpftool("map", "update", "pinned", pin, "key", "0", "0", "0", "0", "value", ...Array(16).fill("0")),
    (error: Error & { status?: number; stderr?: string }) =>
      error.status !== 0 && /update failed: Operation not permitted/.test(String(error.stderr)));
}, ["features"]);

exampleSuite("lpm-routes", (pinRoot) => {
  const v4 = byKey(dumpHex(path.join(pinRoot, "routes_v4")));
  // struct bpf_lpm_trie_key: u32 prefix length (host order) + address.
  assert.deepEqual(v4, {
    [`${u32(0)}00000000`]: u32(1), [`${u32(8)}0a000000`]: u32(2), [`${u32(16)}0a010000`]: u32(3), [`${u32(24)}c0a80100`]: u32(4),
  });
  const v6 = byKey(dumpHex(path.join(pinRoot, "routes_v6")));
  assert.deepEqual(v6, { [`${u32(0)}${"00".repeat(16)}`]: u32(1), [`${u32(32)}20010db8${"00".repeat(12)}`]: u32(2) });
}, ["routes_v4", "routes_v6"]);

exampleSuite("map-of-maps", (pinRoot, out) => {
  const inner = out.inner as { red: number; blue: number };
  assert.equal(mapShow(path.join(pinRoot, "allow_red")).id, inner.red);
  // The outer map holds the inner maps' IDs.
  assert.deepEqual(byKey(dumpHex(path.join(pinRoot, "tenants"))), { [u32(1)]: u32(inner.red), [u32(2)]: u32(inner.blue) });
}, ["tenants", "allow_red", "allow_blue"]);

let madeOutside = 0;
exampleSuite("adopt-existing", (pinRoot, out) => {
  const pin = path.join(pinRoot, "blocked_ports");
  assert.equal(out.mapId, madeOutside, "adoption keeps the map setup.sh made");
  // Port 23 kept, 445 added, 21 (not declared) removed.
  assert.deepEqual(byKey(dumpHex(pin)), { [u16(23)]: "01", [u16(445)]: "01" });
}, ["blocked_ports"], async (pinRoot) => {
  const setup = await runAsync("bash", [path.join(example("adopt-existing"), "setup.sh"), pinRoot], { cwd: REPO_ROOT });
  assert.equal(setup.code, 0, setup.stderr);
  madeOutside = mapShow(path.join(pinRoot, "blocked_ports")).id;
});

describe("examples/drift", function () {
  this.timeout(180_000);
  const env = usePulumiStack(example("drift"));
  it("drift.sh shows the drift check exiting 7 with the drifted keys, then repairs it", async () => {
    const pinRoot = path.join(env.bpffs().root, "drift");
    const outside = defaultPins("drift");
    const stack = env.stack();
    stack.setConfig({ pinRoot });
    const result = await runAsync("bash", [path.join(example("drift"), "drift.sh"), stack.stack], {
      cwd: REPO_ROOT, env: { ...stack.env, PIN_ROOT: pinRoot },
    });
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.deepEqual(defaultPins("drift"), outside, "the stack pinned under /sys/fs/bpf/pulumi-ebpf-examples/drift");
    // Keyed contents: the drifted entry by its key, and the provider's one-line report.
    assert.match(result.stdout, /~ 2: 200 => 999/);
    assert.match(result.stdout, /drift: 1 added \(4\), 1 changed \(2\), 1 removed \(3\)/);
    assert.match(result.stdout, /\nexit 7\n/);
    assert.match(result.stdout, /exit 0: repaired/);
    const pin = path.join(pinRoot, "quotas");
    assert.deepEqual(byKey(dumpHex(pin)), { [u32(1)]: u32(100), [u32(2)]: u32(200), [u32(3)]: u32(300) });
    await stack.ok(["destroy", "--yes", "--skip-preview"]);
    assert.equal(fs.existsSync(pin), false);
  });
});
