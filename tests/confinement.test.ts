// Confinement and access. Pin paths that are relative, contain `..`, pass
// through a symlink out of bpffs, or sit on a non-bpffs filesystem are
// refused, by the core and through the dynamic provider's check/create, and
// nothing is created outside bpffs. Delete never unlinks a pin that holds a
// map the resource does not own. And what a real unprivileged uid (nobody)
// can and cannot do against our pins, measured on this kernel.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { createMap, plainValueBytes } from "../native/index";
import { provider } from "../provider/dynamic/index";
import { isEbpfError } from "../provider/core/errors";
import { checkPinLocation, pinnedMapId, STAGING_INFIX } from "../provider/core/pins";
import { usePrivateBpffs } from "./fixtures/bpffs";
import { dumpU32, updateU32 } from "./fixtures/bpftool";

const DIST = path.resolve(__dirname, "..");
const hash = (pinPath: string, extra: Record<string, unknown> = {}) =>
  ({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, contents: [{ key: 1, value: 1 }], ...extra });

describe("confinement: where a pin may go", function () {
  this.timeout(60_000);
  const bpffs = usePrivateBpffs();
  let outside: string;
  before(() => {
    outside = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-outside-"));
  });
  after(() => fs.rmSync(outside, { recursive: true, force: true }));

  const refusedAtCheck = async (pinPath: string, rule: RegExp) => {
    const checked = await provider.check({}, hash(pinPath));
    assert.ok(checked.failures?.some((f) => f.property === "pinPath" && rule.test(f.reason)), JSON.stringify(checked.failures));
    await assert.rejects(provider.create(hash(pinPath)), (error: Error) => error.name === "SpecError" && rule.test(error.message));
  };

  it("relative paths are refused (core, check, create)", async function () {
    assert.throws(() => checkPinLocation("relative/pin"), (e) => isEbpfError(e, "UnsafePath"));
    await refusedAtCheck("relative/pin", /not an absolute path/);
  });

  it("`..` components are refused (core, check, create), and nothing is created", async function () {
    const dir = bpffs().dir("dotdot");
    const sneaky = `${dir}/../../escape/pin`;
    assert.throws(() => checkPinLocation(sneaky), (e) => isEbpfError(e, "UnsafePath"));
    await refusedAtCheck(sneaky, /has a \. or \.\. component/);
    assert.equal(fs.existsSync(path.join(bpffs().root, "..", "escape")), false);
  });

  it("a symlink out of bpffs on the way is refused at create; nothing lands outside", async function () {
    const dir = bpffs().dir("symlink");
    fs.symlinkSync(outside, path.join(dir, "out"));
    const pinPath = path.join(dir, "out", "sub", "pin");
    assert.throws(() => checkPinLocation(pinPath), (e) => isEbpfError(e, "UnsafePath") && /passes through the symlink/.test((e as Error).message));
    // The provider's check (and so create, which checks its inputs again) refuses it before the pin layer.
    await assert.rejects(provider.create(hash(pinPath)), /pinPath: .*passes through the symlink/);
    // A symlink to another place inside bpffs is refused too: the real path is asked for.
    fs.symlinkSync(bpffs().dir("target"), path.join(dir, "in"));
    await assert.rejects(provider.create(hash(path.join(dir, "in", "pin"))), /pinPath: .*passes through the symlink/);
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it("a symlink as the pin itself is refused (create would not pin through it)", async function () {
    const dir = bpffs().dir("symlinkpin");
    fs.symlinkSync(path.join(outside, "victim"), path.join(dir, "pin"));
    await assert.rejects(provider.create(hash(path.join(dir, "pin"))), /pinPath: .*symlink/);
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it("non-bpffs filesystems are refused, and no parent directory is created there", async function () {
    const pinPath = path.join(outside, "a", "b", "pin");
    assert.throws(() => checkPinLocation(pinPath), (e) => isEbpfError(e, "NotBpffs") && /mount -t bpf/.test((e as Error).message));
    await assert.rejects(provider.create(hash(pinPath)), /pinPath: .*is not on a bpffs mount.*mount -t bpf/);
    await assert.rejects(provider.create(hash(path.join(outside, "pin"))), /pinPath: .*is not on a bpffs mount/);
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it("parent directories the provider creates are 0700", async function () {
    const pinPath = path.join(bpffs().dir("mode"), "x", "y", "pin");
    const created = await provider.create(hash(pinPath));
    assert.equal(fs.statSync(path.join(path.dirname(pinPath), "..")).mode & 0o7777, 0o700);
    assert.equal(fs.statSync(path.dirname(pinPath)).mode & 0o7777, 0o700);
    await provider.delete(created.id, created.outs);
  });

  describe("delete never unlinks a map the resource does not own", function () {
    it("a pin swapped to another map is left in place", async function () {
      const pinPath = path.join(bpffs().dir("foreign"), "pin");
      const created = await provider.create(hash(pinPath));
      fs.unlinkSync(pinPath);
      const other = createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 }, plainValueBytes);
      other.pin(pinPath);
      await provider.delete(created.id, created.outs);
      assert.ok(fs.existsSync(pinPath), "the foreign pin survives");
      assert.equal(pinnedMapId(pinPath), other.info.id);
      other.close();
    });

    it("a dead process's staging pin holding some other map does not make a foreign pin ours", async function () {
      const pinPath = path.join(bpffs().dir("staging"), "pin");
      const created = await provider.create(hash(pinPath));
      const ownedId = created.outs.mapId as number;
      fs.unlinkSync(pinPath);
      const other = createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 }, plainValueBytes);
      other.pin(pinPath);
      // A staging pin of a pid that does not run (2^22 + 1 is above pid_max's limit), holding a third map.
      const third = createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 }, plainValueBytes);
      const stale = `${pinPath}${STAGING_INFIX}4194305_0`;
      third.pin(stale);
      await provider.delete(created.id, { ...created.outs, mapId: ownedId });
      assert.ok(fs.existsSync(pinPath), "the foreign pin survives");
      assert.ok(fs.existsSync(stale), "the unrelated staging pin is not touched by delete");
      other.close();
      third.close();
    });
  });
});

describe("access: a real unprivileged uid (nobody) against our pins", function () {
  this.timeout(60_000);
  const bpffs = usePrivateBpffs();
  const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
  // nobody plus CAP_BPF only (a service account allowed to use bpf(2)): file modes still apply.
  const NOBODY_CAP_BPF = [...NOBODY, "--inh-caps=+bpf", "--ambient-caps=+bpf"];

  /** Runs a list of operations as `wrapper` in one child; returns op → "ok" | errno name. */
  function attempt(wrapper: string[], ops: Array<[string, string]>): Record<string, string> {
    const script = `
      const n = require(process.env.DIST + "/native");
      const ops = JSON.parse(process.env.OPS);
      const out = {};
      const fds = {};
      for (const [name, op] of ops) {
        try { (new Function("n", "fds", op))(n, fds); out[name] = "ok"; } catch (e) { out[name] = e.code || e.message; }
      }
      console.log(JSON.stringify(out));`;
    const r = spawnSync(wrapper[0]!, [...wrapper.slice(1), process.execPath, "-e", script], {
      encoding: "utf8", timeout: 30_000, env: { ...process.env, DIST, OPS: JSON.stringify(ops) },
    });
    if (r.status !== 0) throw new Error(`child failed: ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout);
  }

  let closed: string;
  let shared: string;
  let drop: string;
  before(async function () {
    // 1. A pin under a directory the provider creates (0700 by default).
    closed = path.join(bpffs().root, "private_dir", "m");
    await provider.create(hash(closed));
    // 2. A pin with permissions mode 0644 in a 0755 directory.
    const open = path.join(bpffs().root, "shared_dir");
    fs.mkdirSync(open, { mode: 0o755 });
    shared = path.join(open, "m");
    await provider.create(hash(shared, { permissions: { mode: 0o644 } }));
    // 3. Where nobody may pin: the bpffs root is 1777, like /sys/fs/bpf.
    assert.equal(fs.statSync(bpffs().root).mode & 0o7777, 0o1777);
    drop = path.join(bpffs().root, "nobody_pin");
  });

  const key = "Buffer.from([1,0,0,0])";
  const val = "Buffer.from([9,0,0,0])";

  const attack = (): Array<[string, string]> => [
    ["open_closed_ro", `n.openPinnedMap(${JSON.stringify(closed)}, "ro", n.plainValueBytes)`],
    ["open_shared_rw", `n.openPinnedMap(${JSON.stringify(shared)}, "rw", n.plainValueBytes)`],
    ["open_shared_ro", `fds.ro = n.openPinnedMap(${JSON.stringify(shared)}, "ro", n.plainValueBytes)`],
    ["read_via_ro", `if (!fds.ro.lookup(${key})) throw new Error("absent")`],
    ["write_via_ro", `fds.ro.update(${key}, ${val})`],
    ["unlink_shared", `require("fs").unlinkSync(${JSON.stringify(shared)})`],
    ["repin_ro_fd", `fds.ro.pin(${JSON.stringify(drop)})`],
    ["reopen_repinned_rw", `fds.rw = n.openPinnedMap(${JSON.stringify(drop)}, "rw", n.plainValueBytes)`],
    ["write_via_repinned", `fds.rw.update(${key}, ${val})`],
    ["create_map", `n.createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 }, n.plainValueBytes).close()`],
    ["open_by_id", `n.openMapById(fds.ro.info.id, "ro", n.plainValueBytes)`],
  ];
  // Measured on 6.18 with kernel.unprivileged_bpf_disabled = 2: the sysctl
  // stops map creation (without CAP_BPF), not BPF_OBJ_GET, pinning or writes
  // through an fd; ID lookups need CAP_SYS_ADMIN whatever it says. File modes
  // are the only gate, and only the directory's is a real one. With the
  // sysctl at 0 an unprivileged uid may create a hash map too.
  const measured = (capBpf: boolean, sysctl: string) => ({
    open_closed_ro: "EACCES", // the 0700 directory: no search permission
    open_shared_rw: "EACCES", // the pin's mode 0644 denies write to others
    open_shared_ro: "ok",
    read_via_ro: "ok",
    write_via_ro: "EPERM", // the fd is read-only
    unlink_shared: "EACCES", // the 0755 directory is root's
    repin_ro_fd: "ok", // any fd may be pinned where the caller can create files (the 1777 root)
    reopen_repinned_rw: "ok", // the new pin is nobody's own 0600 file…
    write_via_repinned: "ok", // …so the map is writable: a pin's mode is not a boundary
    create_map: capBpf || sysctl === "0" ? "ok" : "EPERM",
    open_by_id: "EPERM", // BPF_MAP_GET_FD_BY_ID needs CAP_SYS_ADMIN either way
  });
  const reset = () => {
    if (fs.existsSync(drop)) fs.unlinkSync(drop);
    updateU32(shared, 1, 1);
  };

  for (const capBpf of [false, true]) {
    it(`nobody ${capBpf ? "with CAP_BPF" : "without any capability"}: kept out by 0700 directories; a 0644 pin opens read-only, and re-pinning that fd in the 1777 root gives write access`, function () {
      reset();
      assert.equal(dumpU32(shared)[1], 1);
      const sysctl = fs.readFileSync("/proc/sys/kernel/unprivileged_bpf_disabled", "utf8").trim();
      const out = attempt(capBpf ? NOBODY_CAP_BPF : NOBODY, attack());
      assert.deepEqual(out, measured(capBpf, sysctl));
      // The write landed in our map (value 9 at key 1).
      assert.equal(dumpU32(shared)[1], 9);
      reset();
    });
  }

  it("nobody cannot write a frozen map even through its own re-pinned rw fd", async function () {
    const frozen = path.join(bpffs().root, "shared_dir", "frozen");
    await provider.create(hash(frozen, { permissions: { mode: 0o644 }, freeze: true }));
    const repin = path.join(bpffs().root, "nobody_frozen");
    const out = attempt(NOBODY, [
      ["repin", `n.openPinnedMap(${JSON.stringify(frozen)}, "ro", n.plainValueBytes).pin(${JSON.stringify(repin)})`],
      ["reopen_rw", `fds.rw = n.openPinnedMap(${JSON.stringify(repin)}, "rw", n.plainValueBytes)`],
      ["write", `fds.rw.update(${key}, ${val})`],
    ]);
    assert.deepEqual(out, { repin: "ok", reopen_rw: "ok", write: "EPERM" });
    fs.unlinkSync(repin);
  });
});
