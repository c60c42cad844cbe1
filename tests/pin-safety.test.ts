// Pin safety: nothing the lifecycle does may unpin a map that is not ours, or
// lose a map because a step failed. Each race runs against a hostile second
// process (tests/fixtures/pin-swapper.c) that exchanges two names in a tight
// loop: a foreign map in and out of the pin path, or a path component between
// a directory and a symlink into another bpffs. Every race runs a fixed
// number of rounds, prints `ok=.. refused=.. lost=..` and asserts lost == 0.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { createMap, openPinnedMap, plainValueBytes } from "../native";
import { isEbpfError } from "../provider/core/errors";
import { createPinnedMap, deletePinnedMap, observePinnedMap, updatePinnedMap } from "../provider/core/lifecycle";
import { STAGING_INFIX, STAGING_SUFFIX_MAX } from "../provider/core/pinpath";
import { checkSpec, SpecError, type MapSpec } from "../provider/core/spec";
import { mountPrivateBpffs, usePrivateBpffs, type PrivateBpffs } from "./fixtures/bpffs";

const DIST = path.resolve(__dirname, "..");
const FIXTURES = path.resolve(DIST, "..", "tests", "fixtures");
const ROUNDS = 100;

const hashSpec = (pinPath: string, extra: Record<string, unknown> = {}) =>
  // Without the host: the races below flip the path while the pin layer runs, not while check does.
  checkSpec({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, contents: [{ key: 1, value: 1 }], ...extra }, { pinLocation: false });

/** The ID of the map pinned at `pinPath`, or undefined (nothing, or not a map). */
function mapIdAt(pinPath: string): number | undefined {
  try {
    const fd = openPinnedMap(pinPath, "ro", plainValueBytes);
    const kind = fs.readlinkSync(`/proc/self/fd/${fd.fd}`);
    const id = fd.info.id;
    fd.close();
    return kind === "anon_inode:bpf-map" ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Every map ID pinned anywhere below `dir` (recursively, not following symlinks). */
function pinnedIdsBelow(dir: string): Set<number> {
  const ids = new Set<number>();
  for (const name of fs.readdirSync(dir)) {
    const full = path.join(dir, name);
    const stat = fs.lstatSync(full);
    if (stat.isDirectory()) pinnedIdsBelow(full).forEach((id) => ids.add(id));
    else if (stat.isFile()) {
      const id = mapIdAt(full);
      if (id !== undefined) ids.add(id);
    }
  }
  return ids;
}

/** Everything below `dir`, as relative paths. */
function entriesBelow(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String);
}

function compile(source: string, out: string): string {
  execFileSync("cc", ["-O2", "-Wall", "-o", out, path.join(FIXTURES, source)], { stdio: "pipe" });
  return out;
}

/** Runs `swapper a b` while `body` runs; stops it (SIGKILL) and waits for it. */
async function whileSwapping<T>(swapper: string, a: string, b: string, body: () => T): Promise<T> {
  const child = spawn(swapper, [a, b], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("error", reject);
  });
  try {
    return body();
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
}

/** A foreign map (not created by the lifecycle) pinned at `pinPath`; returns its ID. */
function pinForeignMap(pinPath: string): number {
  const map = createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 }, plainValueBytes);
  try {
    map.pin(pinPath);
    return map.info.id;
  } finally {
    map.close();
  }
}

describe("pin safety", function () {
  this.timeout(300_000);
  const bpffs = usePrivateBpffs();
  let bin: string;
  let swapper: string;
  let pinProgram: string;

  before(function () {
    bin = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-pin-safety-"));
    swapper = compile("pin-swapper.c", path.join(bin, "pin-swapper"));
    pinProgram = compile("pin-program.c", path.join(bin, "pin-program"));
  });
  after(function () {
    if (bin) fs.rmSync(bin, { recursive: true, force: true });
  });

  describe("races against a process that swaps a foreign map in and out of the pin", function () {
    it(`a new-map swap (update with an ABI change) never unpins the foreign map (${ROUNDS} rounds)`, async function () {
      const counts = { ok: 0, refused: 0, lost: 0, oursLost: 0, parked: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        const dir = bpffs().dir(`swap${round}`);
        const pinPath = path.join(dir, "m");
        const oldSpec = hashSpec(pinPath);
        const owned = createPinnedMap(oldSpec).mapId;
        const foreignId = pinForeignMap(path.join(dir, "foreign"));
        let newId: number | undefined;
        await whileSwapping(swapper, path.join(dir, "foreign"), pinPath, () => {
          try {
            newId = updatePinnedMap(oldSpec, hashSpec(pinPath, { maxEntries: 16 }), owned).mapId;
            counts.ok++;
          } catch (error) {
            if (!isEbpfError(error, "ForeignPin")) throw error;
            counts.refused++;
          }
        });
        const ids = pinnedIdsBelow(dir);
        if (!ids.has(foreignId)) counts.lost++;
        if (!ids.has(newId ?? owned)) counts.oursLost++;
        // Parked: something left at a staging name (kept pinned, but not at its path).
        if (fs.readdirSync(dir).some((name) => name.includes(STAGING_INFIX))) counts.parked++;
      }
      // eslint-disable-next-line no-console
      console.log(`      swap: ok=${counts.ok} refused=${counts.refused} lost=${counts.lost} (ours lost=${counts.oursLost}, parked=${counts.parked})`);
      assert.equal(counts.ok + counts.refused, ROUNDS);
      assert.equal(counts.lost, 0, "no foreign map may be unpinned");
      assert.equal(counts.oursLost, 0, "our map stays pinned somewhere");
    });

    it(`delete never unpins the foreign map (${ROUNDS} rounds)`, async function () {
      const counts = { ok: 0, refused: 0, lost: 0, parked: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        const dir = bpffs().dir(`delete${round}`);
        const pinPath = path.join(dir, "m");
        const owned = createPinnedMap(hashSpec(pinPath)).mapId;
        const foreignId = pinForeignMap(path.join(dir, "foreign"));
        const outcome = await whileSwapping(swapper, path.join(dir, "foreign"), pinPath, () => deletePinnedMap(pinPath, owned));
        if (outcome === "unpinned") counts.ok++;
        else counts.refused++;
        const ids = pinnedIdsBelow(dir);
        // Lost: the foreign map is unpinned ("unpinned" must mean ours went).
        if (!ids.has(foreignId) || (outcome === "unpinned" && ids.has(owned))) counts.lost++;
        if (fs.readdirSync(dir).some((name) => name.includes(STAGING_INFIX))) counts.parked++;
      }
      // eslint-disable-next-line no-console
      console.log(`      delete: ok=${counts.ok} refused=${counts.refused} lost=${counts.lost} (parked=${counts.parked})`);
      assert.equal(counts.lost, 0, "no foreign map may be unpinned");
    });
  });

  describe("a path component flipped between a directory and a symlink into another bpffs", function () {
    let other: PrivateBpffs;
    before(function () {
      other = mountPrivateBpffs("pulumi-ebpf-other-");
    });
    after(function () {
      other?.unmount();
    });

    it(`create never pins (or leaves anything) outside the directory it verified (${ROUNDS} rounds)`, async function () {
      const counts = { ok: 0, refused: 0, lost: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        const dir = bpffs().dir(`flip${round}`);
        const elsewhere = other.dir(`target${round}`);
        fs.mkdirSync(path.join(dir, "x"));
        fs.symlinkSync(elsewhere, path.join(dir, "alt"));
        const pinPath = path.join(dir, "x", "sub", "m");
        await whileSwapping(swapper, path.join(dir, "x"), path.join(dir, "alt"), () => {
          try {
            createPinnedMap(hashSpec(pinPath));
            counts.ok++;
          } catch (error) {
            if (!isEbpfError(error)) throw error;
            counts.refused++;
          }
        });
        if (entriesBelow(elsewhere).length > 0) counts.lost++;
      }
      // eslint-disable-next-line no-console
      console.log(`      flip: ok=${counts.ok} refused=${counts.refused} lost=${counts.lost}`);
      assert.equal(counts.lost, 0, "nothing may be created in the other bpffs");
    });
  });

  describe("a pinned BPF program at the pin path", function () {
    it("delete and update leave a program whose ID equals the owned map's ID pinned", function () {
      const dir = bpffs().dir("program");
      // Program and map IDs are separate counters: create maps until one's ID
      // is at least the next program's, then load programs up to that ID.
      let owned: number | undefined;
      let spec = hashSpec(path.join(dir, "m0"));
      for (let attempt = 0; attempt < 5 && owned === undefined; attempt++) {
        spec = hashSpec(path.join(dir, `m${attempt}`));
        const mapId = createPinnedMap(spec).mapId;
        const progPin = path.join(dir, `prog${attempt}`);
        const progId = Number(execFileSync(pinProgram, [progPin, String(mapId)], { encoding: "utf8" }).trim());
        if (progId !== mapId) continue;
        owned = mapId;
        // Someone replaces our pin with the program (ours stays pinned at keep).
        fs.renameSync(spec.pinPath, path.join(dir, "keep"));
        fs.renameSync(progPin, spec.pinPath);
      }
      assert.ok(owned !== undefined, "a program ID equal to the map ID was reached");
      const isProgram = () => {
        const fd = spawnSync("bpftool", ["-j", "prog", "show", "pinned", spec.pinPath], { encoding: "utf8" });
        return fd.status === 0 && JSON.parse(fd.stdout).id === owned;
      };
      assert.ok(isProgram());
      assert.throws(() => updatePinnedMap(spec, hashSpec(spec.pinPath, { maxEntries: 16 }), owned!), (error) => {
        assert.ok(isEbpfError(error, "NotAMap"), String(error));
        assert.match((error as Error).message, /program/);
        return true;
      });
      assert.ok(isProgram(), "update left the program pinned");
      const warnings: string[] = [];
      deletePinnedMap(spec.pinPath, owned!, (message) => warnings.push(message));
      assert.ok(isProgram(), "delete left the program pinned");
      assert.match(warnings.join("\n"), /holds a BPF program/);
      // Adopt, replace and read-back refuse it too, naming what is there.
      for (const attempt of [
        () => createPinnedMap({ ...spec, ifExists: "adopt" }),
        () => createPinnedMap({ ...spec, ifExists: "replace" }),
        () => observePinnedMap(spec, owned),
      ]) {
        assert.throws(attempt, (error) => isEbpfError(error, "NotAMap") && /holds a BPF program, not a map/.test((error as Error).message));
      }
      assert.ok(isProgram(), "adopt, replace and read-back left the program pinned");
    });
  });

  describe("staging names", function () {
    const bareMap = (pinPath: string) => pinForeignMap(pinPath);

    it("look-alike names beside a pin are never removed; only a provable stale staging pin is", function () {
      const dir = bpffs().dir("lookalike");
      const pinPath = path.join(dir, "m");
      const lookAlikes = ["backup", "4000000_0", "v2", `999999_0_${4294967295}`].map((tail) => path.join(dir, `m${STAGING_INFIX}${tail}`));
      const ids = lookAlikes.map(bareMap);
      // Shaped like a staging pin of a dead process, but holding another map than its name says.
      const mismatched = path.join(dir, `m${STAGING_INFIX}999999_0_1`);
      const mismatchedId = bareMap(mismatched);
      // A genuine stale staging pin: a dead process, holding the map its name carries.
      const genuine = createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 }, plainValueBytes);
      const genuinePath = path.join(dir, `m${STAGING_INFIX}999999_0_${genuine.info.id}`);
      genuine.pin(genuinePath);
      genuine.close();
      const spec = hashSpec(pinPath);
      const owned = createPinnedMap(spec).mapId;
      const swapped = updatePinnedMap(spec, hashSpec(pinPath, { maxEntries: 16 }), owned).mapId;
      assert.equal(deletePinnedMap(pinPath, swapped), "unpinned");
      lookAlikes.forEach((lookAlike, i) => assert.equal(mapIdAt(lookAlike), ids[i], `${lookAlike} is kept`));
      assert.equal(mapIdAt(mismatched), mismatchedId, "a staging-shaped pin holding another map is kept");
      assert.equal(fs.existsSync(genuinePath), false, "the genuine stale staging pin was removed");
    });

    it("check refuses pin names in the staging namespace, naming the rule", function () {
      const dir = bpffs().dir("namespace");
      assert.throws(() => hashSpec(path.join(dir, `m${STAGING_INFIX}v2`)), (error) => {
        assert.ok(error instanceof SpecError, String(error));
        assert.match((error as Error).message, /pinPath.*reserved for the staging pins/);
        return true;
      });
    });
  });

  describe("pin paths that pass check can be pinned", function () {
    it(`a name of ${255 - STAGING_SUFFIX_MAX} bytes is the longest check accepts, and it pins; a longer one is refused naming the rule`, function () {
      const dir = bpffs().dir("long");
      const longest = path.join(dir, "new", "n".repeat(255 - STAGING_SUFFIX_MAX));
      const spec = hashSpec(longest);
      const created = createPinnedMap(spec);
      assert.equal(mapIdAt(longest), created.mapId);
      assert.equal(deletePinnedMap(longest, created.mapId), "unpinned");
      const tooLong = path.join(dir, "other", "n".repeat(256 - STAGING_SUFFIX_MAX));
      assert.throws(() => hashSpec(tooLong), (error) => error instanceof SpecError && /staging name.*NAME_MAX/.test((error as Error).message));
      // The core refuses it too (a spec that skipped check), before creating any directory.
      assert.throws(() => createPinnedMap({ ...spec, pinPath: tooLong } as MapSpec), (error) => isEbpfError(error, "UnsafePath") && /NAME_MAX/.test((error as Error).message));
      assert.equal(fs.existsSync(path.join(dir, "other")), false, "no directory was created");
    });

    it("a path near PATH_MAX is refused at check when the staging suffix would not fit; nothing is created", function () {
      const dir = bpffs().dir("pathmax");
      const target = 4095 - STAGING_SUFFIX_MAX;
      let deep = dir;
      for (let remaining = target - Buffer.byteLength(dir) - 2; remaining > 0;) {
        let chunk = Math.min(200, remaining - 1);
        if (remaining - 1 - chunk === 1) chunk -= 1;
        deep = path.join(deep, "d".repeat(chunk));
        remaining -= chunk + 1;
      }
      const fits = path.join(deep, "m");
      assert.equal(Buffer.byteLength(fits), target);
      const created = createPinnedMap(hashSpec(fits));
      assert.equal(mapIdAt(fits), created.mapId, "the longest accepted path pins (its staging name fits too)");
      assert.throws(() => hashSpec(path.join(deep, "mx")), (error) => error instanceof SpecError && /PATH_MAX/.test((error as Error).message));
      const missing = `${deep}e`;
      assert.throws(() => createPinnedMap({ ...hashSpec(fits), pinPath: path.join(missing, "m") } as MapSpec), (error) => isEbpfError(error, "UnsafePath") && /PATH_MAX/.test((error as Error).message));
      assert.equal(fs.existsSync(missing), false, "no directory was created");
    });

    it("a NUL byte is refused at check and by the core (UnsafePath), never a raw TypeError", function () {
      const dir = bpffs().dir("nul");
      assert.throws(() => hashSpec(`${dir}/a\0b`), (error) => error instanceof SpecError && /NUL/.test((error as Error).message));
      assert.throws(() => createPinnedMap({ ...hashSpec(`${dir}/m`), pinPath: `${dir}/a\0b` } as MapSpec), (error) => isEbpfError(error, "UnsafePath") && /NUL/.test((error as Error).message));
      assert.deepEqual(fs.readdirSync(dir), []);
    });
  });

  describe("directories the pin layer created", function () {
    it("create reports them (outermost first); delete removes those that are empty, innermost first, never one that existed before", function () {
      const dir = bpffs().dir("created");
      const pinPath = path.join(dir, "x", "y", "m");
      const created = createPinnedMap(hashSpec(pinPath));
      assert.deepEqual(created.createdDirectories, [path.join(dir, "x"), path.join(dir, "x", "y")]);
      // A second pin in x keeps x; y goes.
      const sibling = path.join(dir, "x", "sibling");
      pinForeignMap(sibling);
      const second = createPinnedMap(hashSpec(path.join(dir, "x", "y", "n")));
      assert.deepEqual(second.createdDirectories, [], "nothing created the second time");
      assert.equal(deletePinnedMap(pinPath, created.mapId, undefined, { createdDirectories: created.createdDirectories }), "unpinned");
      assert.equal(fs.existsSync(path.join(dir, "x", "y")), true, "y still holds n");
      assert.equal(deletePinnedMap(path.join(dir, "x", "y", "n"), second.mapId, undefined, { createdDirectories: created.createdDirectories }), "unpinned");
      assert.equal(fs.existsSync(path.join(dir, "x", "y")), false, "empty y removed");
      assert.equal(fs.existsSync(sibling), true, "x and its other pin stay");
      fs.unlinkSync(sibling);
      // Directories that are no ancestors of the pin are ignored; the pre-existing dir is never listed.
      const third = createPinnedMap(hashSpec(path.join(dir, "x", "m")));
      assert.deepEqual(third.createdDirectories, []);
      fs.mkdirSync(path.join(dir, "unrelated"));
      assert.equal(deletePinnedMap(path.join(dir, "x", "m"), third.mapId, undefined, { createdDirectories: [path.join(dir, "unrelated"), path.join(dir, "x")] }), "unpinned");
      assert.equal(fs.existsSync(path.join(dir, "unrelated")), true);
      assert.equal(fs.existsSync(path.join(dir, "x")), false);
      assert.equal(fs.existsSync(dir), true);
    });
  });

  describe("killed between pinning at a new pinPath and unpinning the old one (pinPath and maxEntries change together)", function () {
    /** Runs updatePinnedMap in a child that is killed at `fault`. */
    const killedUpdate = (oldSpec: MapSpec, newSpec: MapSpec, owned: number, fault: string) => {
      const script = `
        const { updatePinnedMap } = require(process.env.DIST + "/provider/core/lifecycle");
        const { checkSpec } = require(process.env.DIST + "/provider/core/checked");
        updatePinnedMap(checkSpec(${JSON.stringify(oldSpec)}), checkSpec(${JSON.stringify(newSpec)}), ${owned});`;
      const r = spawnSync(process.execPath, ["-e", script], { env: { ...process.env, DIST, PULUMI_EBPF_FAULT: fault }, encoding: "utf8" });
      assert.equal(r.signal, "SIGKILL", `killed at ${fault}: ${r.stderr}`);
    };
    const stagingBelow = (dir: string) => entriesBelow(dir).filter((name) => name.includes(STAGING_INFIX));

    it("killed after pinning at the new path, then destroyed instead of re-run: the old map and the trace pin go", function () {
      const dir = bpffs().dir("move-then-delete");
      const oldSpec = hashSpec(path.join(dir, "a", "m"));
      const newSpec = hashSpec(path.join(dir, "b", "m"), { maxEntries: 16 });
      const owned = createPinnedMap(oldSpec).mapId;
      killedUpdate(oldSpec, newSpec, owned, "after-pin-new-path");
      assert.equal(stagingBelow(path.join(dir, "a")).length, 1, "the trace pin");
      assert.equal(deletePinnedMap(oldSpec.pinPath, owned), "unpinned");
      assert.deepEqual(fs.readdirSync(path.join(dir, "a")), [], "old pin and trace are gone");
    });

    for (const fault of ["before-rename", "after-pin-new-path", "before-unpin"]) {
      it(`killed at ${fault}: no map lost; re-running the same update converges`, function () {
        const dir = bpffs().dir(`move-${fault}`);
        const oldSpec = hashSpec(path.join(dir, "a", "m"));
        const newSpec = hashSpec(path.join(dir, "b", "m"), { maxEntries: 16, contents: [{ key: 2, value: 2 }] });
        const owned = createPinnedMap(oldSpec).mapId;
        killedUpdate(oldSpec, newSpec, owned, fault);
        assert.equal(mapIdAt(oldSpec.pinPath), owned, "the old map is still pinned at the old path");
        const pinnedByDeadRun = mapIdAt(newSpec.pinPath);
        if (fault === "before-rename") assert.equal(pinnedByDeadRun, undefined);
        else assert.notEqual(pinnedByDeadRun, undefined, "the new map is pinned at the new path");
        const warnings: string[] = [];
        const result = updatePinnedMap(oldSpec, newSpec, owned, (w) => warnings.push(w));
        assert.equal(mapIdAt(newSpec.pinPath), result.mapId);
        if (pinnedByDeadRun !== undefined) {
          assert.equal(result.mapId, pinnedByDeadRun, "the dead run's map is recognised as this resource's");
          assert.match(warnings.join("\n"), /finished moving the pin/);
        }
        assert.equal(fs.existsSync(oldSpec.pinPath), false, "the old pin is gone");
        assert.deepEqual(stagingBelow(dir), [], "no staging or trace pin is left");
        assert.deepEqual(observePinnedMap(newSpec, result.mapId).status, "ok");
        assert.equal(observePinnedMap(newSpec, result.mapId).status === "ok" && (observePinnedMap(newSpec, result.mapId) as { observation: { abi: { maxEntries: number } } }).observation.abi.maxEntries, 16);
      });
    }
  });
});
