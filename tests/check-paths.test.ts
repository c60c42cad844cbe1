// Pin paths that cannot work are refused by check (the core's checkSpec, so
// the provider's check and a preview), before anything is created: a dotted
// directory to create in bpffs, a path off bpffs, a symlink on the way. The
// pin layer refuses the same before making any directory. Recorded state is
// checked without the host (a refresh or destroy after bpffs went away).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { provider } from "../provider/dynamic";
import { checkSpec, createPinnedMap, deletePinnedMap, isEbpfError, SpecError } from "../provider/core";
import { openPinParent } from "../provider/core/pindir";
import { mountPrivateBpffs, usePrivateBpffs } from "./fixtures/bpffs";
import { usePulumiStack, REPO_ROOT } from "./fixtures/pulumi";

const MAP = { mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 4 };

function pinPathFailure(pinPath: string): string {
  try {
    checkSpec({ ...MAP, pinPath });
  } catch (error) {
    assert.ok(error instanceof SpecError, String(error));
    assert.deepEqual(error.failures.map((failure) => failure.path), ["pinPath"], error.message);
    return error.failures[0]!.rule;
  }
  return assert.fail(`check accepted ${pinPath}`);
}

describe("check: pin paths on this host", function () {
  this.timeout(60_000);
  const bpffs = usePrivateBpffs();
  let tmp = "";
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-check-paths-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("refuses a dotted directory that would be created in bpffs, naming it and the rule, and creates nothing", () => {
    const dir = bpffs().dir("dotted");
    const pinPath = path.join(dir, "bad", "v1.0", "m");
    assert.match(pinPathFailure(pinPath), /the directory "v1\.0" would be created in bpffs, which refuses names containing "\." \(EPERM\)/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("refuses a path whose nearest existing directory is not bpffs, naming the filesystem", () => {
    assert.match(pinPathFailure(path.join(tmp, "x")), new RegExp(`${tmp} is not on a bpffs mount \\((tmpfs|ext2/3/4|overlayfs|xfs|btrfs|filesystem magic 0x[0-9a-f]+), not bpffs\\); mount one`));
    assert.match(pinPathFailure(path.join(tmp, "missing", "deeper", "x")), new RegExp(`${tmp} is not on a bpffs mount`));
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  it("refuses a symlink on the way (even one into bpffs), a file on the way, and a directory at the pin", () => {
    const dir = bpffs().dir("links");
    const link = path.join(tmp, "link");
    fs.symlinkSync(dir, link);
    assert.match(pinPathFailure(path.join(link, "m")), new RegExp(`passes through the symlink ${link}; use the real path`));
    fs.mkdirSync(path.join(dir, "sub"));
    assert.match(pinPathFailure(path.join(dir, "sub")), /is a directory; a pin path names a file in one/);
    const file = path.join(tmp, "file");
    fs.writeFileSync(file, "");
    assert.match(pinPathFailure(path.join(file, "m")), new RegExp(`${file} is not a directory`));
    fs.rmSync(link);
    fs.rmSync(file);
  });

  it("accepts a path in bpffs whose directories do not exist yet, and an existing pin", () => {
    const dir = bpffs().dir("fine");
    assert.equal(checkSpec({ ...MAP, pinPath: path.join(dir, "a", "b", "m") }).pinPath, path.join(dir, "a", "b", "m"));
    const spec = checkSpec({ ...MAP, pinPath: path.join(dir, "m") });
    const observation = createPinnedMap(spec);
    try {
      assert.equal(checkSpec({ ...MAP, pinPath: path.join(dir, "m") }).pinPath, path.join(dir, "m"));
    } finally {
      deletePinnedMap(spec.pinPath, observation.mapId);
    }
  });

  it("the provider's check (and so a preview) reports each as a pinPath failure", async () => {
    const dir = bpffs().dir("provider");
    for (const pinPath of [path.join(dir, "bad", "v1.0", "m"), path.join(tmp, "x")]) {
      const result = await provider.check({}, { ...MAP, pinPath });
      assert.deepEqual((result.failures ?? []).map((failure) => failure.property), ["pinPath"], JSON.stringify(result.failures));
    }
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("recorded state is checked without the host: a map whose bpffs is gone can still be refreshed and destroyed", () => {
    const spec = checkSpec({ ...MAP, pinPath: path.join(tmp, "gone", "m") }, { pinLocation: false });
    assert.equal(spec.pinPath, path.join(tmp, "gone", "m"));
    // Destroy of a pin whose directory is gone is a success ("missing"), not an error.
    deletePinnedMap(spec.pinPath, 12345);
  });

  it("the pin layer refuses a dotted directory before making any (a caller that skipped check), kind UnsafePath", () => {
    const dir = bpffs().dir("layer");
    assert.throws(() => openPinParent(path.join(dir, "ok", "v1.0", "m"), { create: true }), (error: unknown) => {
      assert.ok(isEbpfError(error, "UnsafePath"), String(error));
      assert.match(error.message, /cannot create the directory "v1\.0": bpffs refuses names containing "\." \(EPERM, even for root\)/);
      assert.doesNotMatch(error.message, /CAP_BPF|needs root/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(dir), []);
    assert.throws(() => createPinnedMap(checkSpec({ ...MAP, pinPath: path.join(dir, "bad", "v1.0", "m") }, { pinLocation: false })),
      (error: unknown) => isEbpfError(error, "UnsafePath") && /v1\.0/.test(error.message));
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

describe("check: a map whose bpffs is gone, through the CLI", function () {
  this.timeout(300_000);
  const env = usePulumiStack(path.join(REPO_ROOT, "tests", "fixtures", "e2e-project"));

  it("preview refuses a path off bpffs at check; destroy of a stack whose bpffs went away succeeds", async () => {
    const offBpffs = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-off-bpffs-"));
    const own = mountPrivateBpffs("pulumi-ebpf-gone-");
    try {
      env.stack().setConfig({ maps: { off: { ...MAP, pinPath: path.join(offBpffs, "m") } } });
      const preview = await env.stack().run(["preview"]);
      assert.notEqual(preview.code, 0);
      assert.match(preview.output, /pinPath: .* is not on a bpffs mount/);
      assert.deepEqual(fs.readdirSync(offBpffs), []);

      env.stack().setConfig({ maps: { gone: { ...MAP, pinPath: path.join(own.root, "app", "m") } } });
      await env.stack().ok(["up", "--yes", "--skip-preview"]);
      own.unmount();
      const destroy = await env.stack().ok(["destroy", "--yes", "--skip-preview"]);
      assert.match(destroy.output, /PinnedMap gone deleted/);
      assert.match(destroy.output, /2 deleted/);
    } finally {
      own.unmount();
      fs.rmSync(offBpffs, { recursive: true, force: true });
    }
  });
});
