// The package as users get it: `npm pack` of this checkout installed into a
// fresh Pulumi project with install scripts disabled (npm 11 runs a
// dependency's scripts only when the user approves them), then stacks run
// from it through the real Pulumi CLI against a private bpffs:
//  - the tarball's contents (compiled JS + .d.ts, prebuilt addon, no tests);
//  - the installed package loads prebuilds/linux-x64, not a source build;
//  - a one-map stack goes up and is destroyed;
//  - upgrade: a stack deployed with one build of the package is refreshed,
//    updated and destroyed by a changed implementation, while the serialized
//    provider stub stored in the state stays byte-identical (and equal to the
//    golden copy tests/fixtures/stub.golden.js, which `npm run
//    gen:stub-golden` writes; this test only reads it).
// The stacks pin only into the suite's private bpffs (PIN_PATH).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";

import { usePrivateBpffs } from "./fixtures/bpffs";
import { mapShowIfPinned } from "./fixtures/bpftool";
import { REPO_ROOT, makeProject, runOk, type PulumiProject } from "./fixtures/pulumi";

const GOLDEN_STUB = path.join(REPO_ROOT, "tests", "fixtures", "stub.golden.js");

/** The result of `npm pack` of this checkout. */
interface PackResult {
  tarball: string;
  size: number;
  unpackedSize: number;
  files: string[];
  ms: number;
}

/**
 * `npm pack` of this checkout into dest, which runs prepack (the library
 * build and the prebuilt addon). Without dest: `npm pack --dry-run
 * --ignore-scripts` (the file list of what the last prepack built).
 */
function npmPack(dest?: string): PackResult {
  const args = ["pack", "--json", ...(dest ? ["--pack-destination", dest] : ["--dry-run", "--ignore-scripts"])];
  const r = runOk("npm", args, { cwd: REPO_ROOT });
  // prepack's own output goes to stderr; stdout is the JSON report.
  const report = (JSON.parse(r.stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[])[0]!;
  return {
    tarball: dest ? path.join(dest, report.filename) : report.filename,
    size: report.size,
    unpackedSize: report.unpackedSize,
    files: report.files.map((f) => f.path).sort(),
    ms: r.ms,
  };
}

/** The one-resource program the packed-package tests deploy: its inputs come from the environment. */
const PROGRAM = `"use strict";
const { PinnedMap } = require("pulumi-ebpf");
const allow = new PinnedMap("allow", {
  pinPath: process.env.PIN_PATH,
  mapType: "hash",
  keyType: "ipv4",
  valueType: "u32",
  maxEntries: 16,
  contents: JSON.parse(process.env.CONTENTS || '[{"key":"10.0.0.1","value":1}]'),
});
exports.pinPath = allow.pinPath;
exports.mapId = allow.mapId;
exports.entryCount = allow.entryCount;
`;

/** The serialized dynamic provider of every PinnedMap in a deployment (all must be the same text). */
function storedStub(project: PulumiProject, stack: string): string {
  const resources = (project.exportState(stack).deployment.resources ?? []).filter((r) => r.inputs?.__provider !== undefined);
  assert.ok(resources.length > 0, `stack ${stack} has no dynamic resources`);
  const stubs = new Set(resources.map((r) => r.inputs?.__provider));
  assert.equal(stubs.size, 1, "every PinnedMap stores the same serialized provider");
  const stub = [...stubs][0];
  assert.equal(typeof stub, "string", "inputs.__provider is the serialized provider text");
  return stub as string;
}

describe("npm package (npm pack → fresh project → pulumi up/destroy)", function () {
  this.timeout(300_000);
  let packDir: string;
  let packed: PackResult;
  let project: PulumiProject | undefined;
  let packageDir: string;

  before(function () {
    this.timeout(300_000);
    packDir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-pack-"));
    packed = npmPack(packDir);
    // Outside this checkout, so `pulumi-ebpf` resolves to the installed tarball.
    const started = Date.now();
    project = makeProject("packed", PROGRAM, {
      parent: os.tmpdir(), dependencies: { "@pulumi/pulumi": "3.248.0", "pulumi-ebpf": `file:${packed.tarball}` },
    });
    const installMs = Date.now() - started;
    packageDir = path.join(project.dir, "node_modules", "pulumi-ebpf");
    console.log(`      npm pack: ${(packed.size / 1024).toFixed(1)} kB packed, ${(packed.unpackedSize / 1024).toFixed(1)} kB unpacked, ${packed.files.length} files, ${(packed.ms / 1000).toFixed(1)} s; npm install of the tarball: ${(installMs / 1000).toFixed(1)} s`);
  });

  after(function () {
    this.timeout(300_000);
    // Destroys what a failed test left deployed (its maps are in the private
    // bpffs, unmounted by its own hook after this), then removes the project.
    const problems = project?.cleanup() ?? [];
    if (problems.length > 0) console.warn(`cleanup of the packed project: ${problems.join("; ")}`);
    if (packDir) fs.rmSync(packDir, { recursive: true, force: true });
  });
  // Registered after the hook above, so its unmount runs after the cleanup's destroys.
  const bpffs = usePrivateBpffs();

  it("`npm pack --dry-run --json` lists compiled JS + .d.ts, the prebuilt addon, docs and schema, and no tests", function () {
    // The before hook's real `npm pack` ran prepack; this lists what it built.
    const { files } = npmPack();
    assert.deepEqual(files, packed.files, "the dry run lists what the real pack packed");
    const has = (f: string) => files.includes(f);
    for (const f of ["package.json", "README.md", "schema.json", "binding.gyp", "native/src/bpf.cc",
      "dist/sdk/index.js", "dist/sdk/index.d.ts", "dist/sdk/stub.js", "dist/provider/dynamic/index.js", "dist/provider/dynamic/index.d.ts",
      "dist/native/index.js", "dist/native/index.d.ts"]) {
      assert.ok(has(f), `the package lacks ${f}\nit has:\n${files.join("\n")}`);
    }
    assert.ok(files.some((f) => /^docs\/.+/.test(f)), "the package carries docs/");
    assert.ok(files.some((f) => /^prebuilds\/linux-x64\/[^/]+\.node$/.test(f)), `no prebuilds/linux-x64/*.node in\n${files.join("\n")}`);
    const tests = files.filter((f) => /(^|\/)tests?\//.test(f) || /\.test\.[jt]s$/.test(f));
    assert.deepEqual(tests, [], "no tests in the package");
    const sources = files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
    assert.deepEqual(sources, [], "no TypeScript sources (only .d.ts)");
    assert.deepEqual(files.filter((f) => f.endsWith(".map")), [], "no source maps (their sources are not shipped)");
    assert.deepEqual(files.filter((f) => f.startsWith("build/")), [], "no development build/");
    // Every compiled module comes from a current source: no stale output of a deleted .ts.
    const stale = files.filter((f) => /^dist\/.*\.js$/.test(f))
      .filter((f) => !fs.existsSync(path.join(REPO_ROOT, f.replace(/^dist\//, "").replace(/\.js$/, ".ts"))));
    assert.deepEqual(stale, [], "compiled files without a source (stale dist/)");
    for (const f of files.filter((f) => /^dist\/.*\.js$/.test(f))) {
      assert.ok(has(f.replace(/\.js$/, ".d.ts")), `${f} has no .d.ts beside it`);
    }
  });

  it("the installed package loads its addon from prebuilds/ (install scripts were not run, no source build)", function () {
    const p = project!;
    assert.ok(!fs.existsSync(path.join(packageDir, "build")), "node_modules/pulumi-ebpf/build exists: something built from source");
    const probe = runOk("node", ["-e", `
      const path = require("node:path");
      const { createRequire } = require("node:module");
      const pkgDir = path.dirname(require.resolve("pulumi-ebpf/package.json"));
      const pkgRequire = createRequire(path.join(pkgDir, "package.json"));
      const resolved = pkgRequire("node-gyp-build").path(pkgDir);
      const native = require("pulumi-ebpf/native");
      const loaded = Object.keys(require.cache).filter((k) => k.endsWith(".node"));
      console.log(JSON.stringify({ pkgDir, resolved, loaded, cpus: native.possibleCpus ? native.possibleCpus() : null }));
    `], { cwd: p.dir });
    const { pkgDir, resolved, loaded } = JSON.parse(probe.stdout) as { pkgDir: string; resolved: string; loaded: string[] };
    assert.equal(fs.realpathSync(pkgDir), fs.realpathSync(packageDir));
    const expected = path.join(fs.realpathSync(packageDir), "prebuilds", `${process.platform}-${process.arch}`, "pulumi-ebpf.node");
    assert.equal(fs.realpathSync(resolved), expected, "node-gyp-build resolves the prebuilt addon");
    assert.deepEqual(loaded.map((f) => fs.realpathSync(f)), [expected], "pulumi-ebpf/native loaded exactly the prebuilt addon");
  });

  it("deploys a one-map stack from the installed package and destroys it", function () {
    this.timeout(120_000);
    const p = project!;
    const pinPath = path.join(bpffs().dir("packed"), "allow");
    const env = { PIN_PATH: pinPath };
    p.initStack("packed");
    p.ok(["up", "--yes", "--skip-preview", "--stack", "packed"], { env });
    const shown = mapShowIfPinned(pinPath);
    assert.ok(shown, `bpftool finds no map pinned at ${pinPath}`);
    assert.equal(shown.type, "hash");
    assert.equal(shown.bytes_key, 4);
    assert.equal(shown.bytes_value, 4);
    assert.equal(shown.max_entries, 16);
    const outputs = JSON.parse(p.ok(["stack", "output", "--json", "--stack", "packed"]).stdout) as Record<string, unknown>;
    assert.equal(outputs.pinPath, pinPath);
    assert.equal(outputs.mapId, shown.id, "the mapId output is the pinned map's kernel ID");
    assert.equal(outputs.entryCount, 1);
    p.ok(["destroy", "--yes", "--skip-preview", "--stack", "packed"], { env });
    assert.equal(mapShowIfPinned(pinPath), undefined, "destroy unpinned the map");
    p.ok(["stack", "rm", "--yes", "--stack", "packed"]);
  });

  it("upgrade: refresh, update and destroy of an existing stack run the newly installed implementation; the stored stub is unchanged", function () {
    this.timeout(180_000);
    const p = project!;
    const pinPath = path.join(bpffs().dir("upgrade"), "allow");
    const env = { PIN_PATH: pinPath };
    p.initStack("upgrade");
    p.ok(["up", "--yes", "--skip-preview", "--stack", "upgrade"], { env });
    const firstId = mapShowIfPinned(pinPath)?.id;
    assert.ok(firstId, "the map is pinned");
    const stubBefore = storedStub(p, "upgrade");

    // The stub text is a compatibility contract: old states hold it and run it.
    // The golden copy is only read here (`npm run gen:stub-golden` writes it).
    const golden = fs.readFileSync(GOLDEN_STUB, "utf8");
    if (stubBefore !== golden) {
      assert.fail([
        "The serialized provider stub (resources[].inputs.__provider in the state) differs from tests/fixtures/stub.golden.js.",
        "The stub text must not change between releases: every existing stack stores it and runs it for refresh and destroy.",
        "If sdk/stub.ts (or the TypeScript output of it) changed on purpose, that needs a migration plan; then regenerate the",
        "golden copy with `npm run gen:stub-golden` and commit it.",
        "--- golden", golden, "--- stored", stubBefore,
      ].join("\n"));
    }

    // "Upgrade" the installed package: the implementation behind the stub now
    // records every call and adds a marker output.
    const markerFile = path.join(p.dir, "implementation-calls.log");
    // What the stub loads: pulumi-ebpf/dynamic as the project resolves it.
    const dynamicJs = createRequire(path.join(p.dir, "index.js")).resolve("pulumi-ebpf/dynamic");
    assert.equal(fs.realpathSync(dynamicJs), fs.realpathSync(path.join(packageDir, "dist", "provider", "dynamic", "index.js")));
    fs.appendFileSync(dynamicJs, `
// --- upgraded implementation (tests/package.test.ts)
{
  const original = exports.provider;
  const upgraded = {};
  for (const method of Object.keys(original)) {
    upgraded[method] = async (...args) => {
      require("node:fs").appendFileSync(${JSON.stringify(markerFile)}, method + "\\n");
      const result = await original[method](...args);
      if (result && result.outs) result.outs.upgradeMarker = "v2";
      if (method === "read" && result && result.props && result.id) result.props.upgradeMarker = "v2";
      return result;
    };
  }
  exports.provider = upgraded;
}
`);
    const calls = () => (fs.existsSync(markerFile) ? fs.readFileSync(markerFile, "utf8").trim().split("\n") : []);

    p.ok(["refresh", "--yes", "--skip-preview", "--stack", "upgrade"], { env });
    assert.ok(calls().includes("read"), `refresh did not run the upgraded read (calls: ${calls().join(", ")})`);
    assert.equal(storedStub(p, "upgrade"), stubBefore, "refresh kept the stored stub text");

    const contents = JSON.stringify([{ key: "10.0.0.1", value: 1 }, { key: "10.0.0.2", value: 2 }]);
    p.ok(["up", "--yes", "--skip-preview", "--stack", "upgrade"], { env: { ...env, CONTENTS: contents } });
    assert.ok(calls().includes("update"), `up did not run the upgraded update (calls: ${calls().join(", ")})`);
    const map = (p.exportState("upgrade").deployment.resources ?? []).find((r) => r.inputs?.__provider !== undefined);
    assert.equal(map?.outputs?.upgradeMarker, "v2", "the update's outputs come from the upgraded implementation");
    assert.equal(map?.outputs?.entryCount, 2);
    assert.equal(mapShowIfPinned(pinPath)?.id, firstId, "a contents change is in place (same map ID)");
    assert.equal(storedStub(p, "upgrade"), stubBefore, "up kept the stored stub text");

    p.ok(["destroy", "--yes", "--skip-preview", "--stack", "upgrade"], { env: { ...env, CONTENTS: contents } });
    assert.ok(calls().includes("delete"), `destroy did not run the upgraded delete (calls: ${calls().join(", ")})`);
    assert.equal(mapShowIfPinned(pinPath), undefined, "destroy unpinned the map");
    p.ok(["stack", "rm", "--yes", "--stack", "upgrade"]);
  });
});
