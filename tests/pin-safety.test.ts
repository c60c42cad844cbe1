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

import { createMap, openPinnedMap } from "../native";
import { isEbpfError } from "../provider/core/errors";
import { createPinnedMap, deletePinnedMap, updatePinnedMap } from "../provider/core/lifecycle";
import { checkSpec } from "../provider/core/spec";
import { mountPrivateBpffs, usePrivateBpffs, type PrivateBpffs } from "./fixtures/bpffs";

const DIST = path.resolve(__dirname, "..");
const FIXTURES = path.resolve(DIST, "..", "tests", "fixtures");
const ROUNDS = 100;

const hashSpec = (pinPath: string, extra: Record<string, unknown> = {}) =>
  checkSpec({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, contents: [{ key: 1, value: 1 }], ...extra });

/** The ID of the map pinned at `pinPath`, or undefined (nothing, or not a map). */
function mapIdAt(pinPath: string): number | undefined {
  try {
    const fd = openPinnedMap(pinPath, "ro");
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
  const map = createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 });
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
      const counts = { ok: 0, refused: 0, lost: 0, oursLost: 0 };
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
      }
      // eslint-disable-next-line no-console
      console.log(`      swap: ok=${counts.ok} refused=${counts.refused} lost=${counts.lost} (ours lost=${counts.oursLost})`);
      assert.equal(counts.ok + counts.refused, ROUNDS);
      assert.equal(counts.lost, 0, "no foreign map may be unpinned");
      assert.equal(counts.oursLost, 0, "our map stays pinned somewhere");
    });

    it(`delete never unpins the foreign map (${ROUNDS} rounds)`, async function () {
      const counts = { ok: 0, refused: 0, lost: 0 };
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
      }
      // eslint-disable-next-line no-console
      console.log(`      delete: ok=${counts.ok} refused=${counts.refused} lost=${counts.lost}`);
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
      assert.match(warnings.join("\n"), /program/);
    });
  });
});
