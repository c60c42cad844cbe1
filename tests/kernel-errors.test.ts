// Kernel errors reach users as clear messages: the EbpfError names the
// operation, the map (its pin path), the bpf command, the errno name and a
// hint. Each case is provoked for real: a child that dropped CAP_BPF and
// CAP_SYS_ADMIN (EPERM), a huge map (E2BIG, ENOMEM), a write to a frozen map
// (EPERM), and freezing an mmapable array that another process has mapped
// writable (EBUSY; a small C helper compiled here with cc).
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { createMap, plainValueBytes } from "../native";
import { isEbpfError, type EbpfError } from "../provider/core/errors";
import { createPinnedMap } from "../provider/core/lifecycle";
import type { MapSpec } from "../provider/core/spec";
import { openPinned, writeEntries } from "../provider/core/map";
import { applyPermissions } from "../provider/core/pins";
import { checkSpec } from "../provider/core/spec";
import { provider } from "../provider/dynamic/index";
import { usePrivateBpffs } from "./fixtures/bpffs";

const DIST = path.resolve(__dirname, "..");

/** Runs `node -e script` under `wrapper` (e.g. setpriv …); returns its parsed JSON stdout. */
export function runNodeAs(wrapper: string[], script: string): any {
  const r = spawnSync(wrapper[0]!, [...wrapper.slice(1), process.execPath, "-e", script], { encoding: "utf8", timeout: 30_000, env: { ...process.env, DIST } });
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout);
}

function assertClear(error: unknown, operation: RegExp, pinPath: string, command: string, code: string, hint: RegExp): asserts error is EbpfError {
  assert.ok(isEbpfError(error), `an EbpfError, got ${String(error)}`);
  assert.equal(error.code, code);
  assert.match(error.message, operation);
  assert.ok(error.message.includes(pinPath), `names the map: ${error.message}`);
  assert.ok(error.message.includes(`(${command})`), `names the bpf command: ${error.message}`);
  assert.ok(error.message.includes(`failed with ${code}: `), `names the errno and a hint follows: ${error.message}`);
  assert.match(error.message, hint);
}

const hashSpec = (pinPath: string, extra: Record<string, unknown> = {}) =>
  checkSpec({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, ...extra });

describe("kernel errors: clear messages with a hint", function () {
  this.timeout(60_000);
  const bpffs = usePrivateBpffs();

  it("EPERM without CAP_BPF (a child that dropped CAP_BPF and CAP_SYS_ADMIN)", function () {
    const pin = path.join(bpffs().dir("eperm"), "m");
    const script = `
      const { createPinnedMap } = require(process.env.DIST + "/provider/core/lifecycle");
      const { checkSpec } = require(process.env.DIST + "/provider/core/spec");
      const caps = require("fs").readFileSync("/proc/self/status", "utf8").match(/CapEff:\\s*(\\w+)/)[1];
      try {
        createPinnedMap(checkSpec({ pinPath: ${JSON.stringify(pin)}, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8 }));
        console.log(JSON.stringify({ ok: true, caps }));
      } catch (e) { console.log(JSON.stringify({ name: e.name, kind: e.kind, code: e.code, message: e.message, caps })); }`;
    const out = runNodeAs(["setpriv", "--bounding-set=-bpf,-sys_admin", "--inh-caps=-bpf,-sys_admin"], script);
    // CAP_BPF is bit 39, CAP_SYS_ADMIN bit 21: both gone from the effective set.
    const caps = BigInt(`0x${out.caps}`);
    assert.equal((caps >> 39n) & 1n, 0n);
    assert.equal((caps >> 21n) & 1n, 0n);
    assert.equal(out.name, "EbpfError", JSON.stringify(out));
    assert.equal(out.code, "EPERM");
    // The first bpf(2) command is the look at the path (BPF_OBJ_GET); a typed map then loads its BTF first.
    assert.match(out.message, new RegExp(`^(open|create map) ${pin} \\(BPF_(OBJ_GET|BTF_LOAD|MAP_CREATE)\\) failed with EPERM: needs root or CAP_BPF`));
    assert.equal(fs.existsSync(pin), false);
  });

  it("E2BIG for a hash map too large to allocate", function () {
    const pin = path.join(bpffs().dir("e2big"), "m");
    assert.throws(() => createPinnedMap(hashSpec(pin, { maxEntries: 0xffffffff })), (error) => {
      assertClear(error, /^create map /, pin, "BPF_MAP_CREATE", "E2BIG", /too large.*lower maxEntries/);
      return true;
    });
    assert.equal(fs.existsSync(pin), false);
  });

  it("ENOMEM for an array of 2^20 × 1 MiB", function () {
    const pin = path.join(bpffs().dir("enomem"), "m");
    assert.throws(() => createPinnedMap(checkSpec({ pinPath: pin, mapType: "array", keyType: "u32", valueSize: 1 << 20, maxEntries: 1 << 20 })), (error) => {
      assertClear(error, /^create map /, pin, "BPF_MAP_CREATE", "ENOMEM", /could not allocate the map; lower maxEntries/);
      return true;
    });
    assert.equal(fs.existsSync(pin), false);
  });

  it("the same errors through the dynamic provider's create", async function () {
    const pin = path.join(bpffs().dir("provider"), "m");
    await assert.rejects(provider.create({ pinPath: pin, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 0xffffffff }), (error) => {
      assertClear(error, /^create map /, pin, "BPF_MAP_CREATE", "E2BIG", /too large/);
      return true;
    });
  });

  it("EPERM writing a frozen map", function () {
    const pin = path.join(bpffs().dir("frozen"), "m");
    createPinnedMap(hashSpec(pin, { freeze: true, contents: [{ key: 1, value: 1 }] }));
    const map = openPinned(pin, "rw");
    try {
      assert.throws(() => writeEntries(map, [{ key: Buffer.from([2, 0, 0, 0]), value: Buffer.from([2, 0, 0, 0]) }], pin), (error) => {
        assertClear(error, /^write entries of /, pin, "BPF_MAP_UPDATE_ELEM", "EPERM", /the map is frozen or the fd is read-only/);
        return true;
      });
    } finally {
      map.close();
    }
  });

  describe("EBUSY freezing a map with a writable mmap", function () {
    let helper: string;
    let child: ChildProcess | undefined;
    before(function () {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-mmap-"));
      helper = path.join(out, "mmap-writer");
      execFileSync("cc", ["-O2", "-Wall", "-o", helper, path.resolve(DIST, "..", "tests", "fixtures", "mmap-writer.c")], { stdio: "pipe" });
    });
    after(function () {
      child?.kill("SIGKILL");
      if (helper) fs.rmSync(path.dirname(helper), { recursive: true, force: true });
    });

    it("adopt with freeze: true names the map, BPF_MAP_FREEZE, EBUSY and what to do", async function () {
      const pin = path.join(bpffs().dir("ebusy"), "m");
      const spec = checkSpec({ pinPath: pin, mapType: "array", keyType: "u32", valueType: "u64", maxEntries: 512, flags: ["mmapable"] });
      createPinnedMap(spec);
      child = spawn(helper, [pin, String(512 * 8)], { stdio: ["pipe", "pipe", "pipe"] });
      await new Promise<void>((resolve, reject) => {
        let text = "";
        child!.stdout!.on("data", (d) => {
          text += d;
          if (text.includes("ready")) resolve();
        });
        child!.on("exit", (code) => reject(new Error(`mmap-writer exited ${code}`)));
        setTimeout(() => reject(new Error("mmap-writer did not get ready")), 10_000);
      });
      assert.throws(() => createPinnedMap(checkSpec({ ...spec, keyType: "u32", valueType: "u64", ifExists: "adopt", freeze: true })), (error) => {
        assertClear(error, /^freeze /, pin, "BPF_MAP_FREEZE", "EBUSY", /memory-mapped writable.*unmap it/);
        return true;
      });
      // Once the mapping is gone, the same adoption freezes the map.
      child.stdin!.end();
      await new Promise((resolve) => child!.on("close", resolve));
      child = undefined;
      const observation = createPinnedMap(checkSpec({ ...spec, keyType: "u32", valueType: "u64", ifExists: "adopt", freeze: true }));
      assert.equal(observation.frozen, true);
    });
  });

  describe("the pin layer's own errors: the right kind and hint", function () {
    /**
     * Runs createPinnedMap(spec) in a child that stops itself (SIGSTOP) at
     * the fault point `stopAt`; calls `meanwhile` once it is stopped, lets it
     * go on, and returns what it threw (or { ok: true }).
     */
    async function stoppedCreate(spec: MapSpec, stopAt: string, meanwhile: () => void): Promise<any> {
      const script = `
        const { createPinnedMap } = require(process.env.DIST + "/provider/core/lifecycle");
        const { checkSpec } = require(process.env.DIST + "/provider/core/checked");
        try { createPinnedMap(checkSpec(${JSON.stringify(spec)})); console.log(JSON.stringify({ ok: true })); }
        catch (e) { console.log(JSON.stringify({ name: e.name, kind: e.kind, code: e.code, message: e.message })); }`;
      const child = spawn(process.execPath, ["-e", script], {
        env: { ...process.env, DIST, PULUMI_EBPF_FAULT: stopAt, PULUMI_EBPF_FAULT_MODE: "stop" }, stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
      const state = () => {
        try {
          return fs.readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]![0];
        } catch {
          return "gone";
        }
      };
      for (let poll = 0; poll < 2000 && state() !== "T" && state() !== "gone"; poll++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(state(), "T", `the child stopped at ${stopAt}`);
      meanwhile();
      child.kill("SIGCONT");
      await closed;
      return JSON.parse(out);
    }

    it('ifExists "replace" losing a race to another pin says to run again, not to set ifExists to "replace"', async function () {
      const pin = path.join(bpffs().dir("replace-race"), "m");
      let foreignId = 0;
      const out = await stoppedCreate(hashSpec(pin, { ifExists: "replace" }), "before-pin", () => {
        const foreign = createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 }, plainValueBytes);
        foreign.pin(pin);
        foreignId = foreign.info.id;
        foreign.close();
      });
      assert.equal(out.kind, "PinExists", JSON.stringify(out));
      assert.match(out.message, /another process pinned something there while this map was being built; run again to replace it/);
      assert.doesNotMatch(out.message, /set ifExists/);
      const still = openPinned(pin, "ro");
      assert.equal(still.info.id, foreignId, "the other process's map is untouched");
      still.close();
    });

    it("ENOENT from a directory removed meanwhile says so (not \"nothing is pinned there\")", async function () {
      const dir = bpffs().dir("vanished");
      const pin = path.join(dir, "sub", "m");
      const out = await stoppedCreate(hashSpec(pin), "before-pin", () => fs.rmdirSync(path.join(dir, "sub")));
      assert.equal(out.code, "ENOENT", JSON.stringify(out));
      assert.equal(out.kind, "Kernel");
      assert.match(out.message, /failed with ENOENT: a directory on the way does not exist \(it was removed meanwhile\); run again/);
      assert.doesNotMatch(out.message, /nothing is pinned there/);
    });

    it("EACCES on a directory (a user kept out by a 0700 directory) names the directory's mode, not \"run as root\"", function () {
      const dir = bpffs().dir("eacces");
      const locked = path.join(dir, "locked");
      fs.mkdirSync(locked, { mode: 0o700 });
      fs.chmodSync(dir, 0o755);
      const pin = path.join(locked, "sub", "m");
      const script = `
        const { createPinnedMap } = require(process.env.DIST + "/provider/core/lifecycle");
        try { createPinnedMap(${JSON.stringify(hashSpec(pin))}); console.log(JSON.stringify({ ok: true })); }
        catch (e) { console.log(JSON.stringify({ name: e.name, kind: e.kind, code: e.code, message: e.message })); }`;
      const out = runNodeAs(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], script);
      assert.equal(out.kind, "Permission", JSON.stringify(out));
      assert.equal(out.code, "EACCES");
      assert.match(out.message, /failed with EACCES: the directory's mode or owner does not let this user in/);
      assert.doesNotMatch(out.message, /run as root/);
      assert.equal(fs.existsSync(path.join(locked, "sub")), false);
    });

    it("out-of-range permissions reaching the pin layer are an EbpfError naming the property, not a raw RangeError", function () {
      const pin = path.join(bpffs().dir("range"), "m");
      createPinnedMap(hashSpec(pin));
      for (const [permissions, rule] of [
        [{ uid: 2 ** 32 }, /permissions\.uid 4294967296 must be an integer 0\.\.4294967294/],
        // (uid_t)-1 would make chown leave the owner unchanged without a word.
        [{ gid: 2 ** 32 - 1 }, /permissions\.gid 4294967295 must be an integer 0\.\.4294967294/],
        [{ mode: 0o10000 }, /permissions\.mode 4096 must be an integer 0\.\.0o7777/],
      ] as const) {
        assert.throws(() => applyPermissions(pin, permissions), (error) => {
          assert.ok(isEbpfError(error, "Permission"), String(error));
          assert.match((error as Error).message, rule);
          return true;
        });
      }
    });

    it("a NUL byte in a pin path (a spec that skipped check) is UnsafePath, not a raw TypeError", function () {
      const dir = bpffs().dir("nul");
      assert.throws(() => createPinnedMap({ ...hashSpec(path.join(dir, "m")), pinPath: `${dir}/a\0b` } as MapSpec), (error) => {
        assert.ok(isEbpfError(error, "UnsafePath"), String(error));
        assert.match((error as Error).message, /NUL/);
        return true;
      });
    });
  });
});
