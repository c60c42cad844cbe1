// The default kernel name: a map declared without `name` is named after its
// pin's file name (cut to 15 characters), so a libbpf object that pins by
// name reuses it and still finds it by name; an undeclared name never makes
// an existing map be rebuilt. The libbpf round trip compiles a real BPF
// object (clang) and a loader (gcc -lbpf) and runs it against our pin.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { checkSpec, createPinnedMap, deletePinnedMap, updatePinnedMap, recreateReasons, type MapSpec } from "../provider/core";
import { defaultMapName } from "../provider/core/schema";
import { usePrivateBpffs } from "./fixtures/bpffs";
import { mapShow } from "./fixtures/bpftool";

const spec = (pinPath: string, extra: Record<string, unknown> = {}): MapSpec =>
  checkSpec({ pinPath, mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 16, contents: [{ key: 7, value: 4242 }], ...extra });

function kernelName(pinPath: string): string {
  return mapShow(pinPath).name ?? "";
}

describe("default kernel map name", function () {
  this.timeout(120_000);
  const bpffs = usePrivateBpffs();

  it("is the pin's file name, cut to 15 characters; none when the file name cannot be a map name; a declared one wins", () => {
    assert.equal(defaultMapName("/x/allow"), "allow");
    assert.equal(defaultMapName("/x/a_very_long_map_name"), "a_very_long_map");
    assert.equal(defaultMapName("/x/allow-list"), undefined);
    const dir = bpffs().dir("names");
    const cases: [string, Record<string, unknown>, string][] = [
      ["allow", {}, "allow"],
      ["a_very_long_map_name", {}, "a_very_long_map"],
      ["allow-list", {}, ""],
      ["declared", { name: "xdp_allow_v4" }, "xdp_allow_v4"],
    ];
    for (const [file, extra, expected] of cases) {
      const pinPath = path.join(dir, file);
      const observation = createPinnedMap(spec(pinPath, extra));
      try {
        assert.equal(kernelName(pinPath), expected, `${file} (bpftool)`);
        assert.equal(observation.name, expected, `${file} (read back)`);
      } finally {
        deletePinnedMap(pinPath, observation.mapId);
      }
    }
  });

  it("an undeclared name never rebuilds an existing map: declaring the live name, dropping a declared one, moving the pin", () => {
    const dir = bpffs().dir("keep");
    const pinPath = path.join(dir, "allow");
    const undeclared = spec(pinPath);
    const created = createPinnedMap(undeclared);
    let mapId = created.mapId;
    try {
      // Declaring the name the map already has: in place.
      const declared = spec(pinPath, { name: "allow" });
      assert.deepEqual(recreateReasons(undeclared, declared, false, "allow"), []);
      mapId = updatePinnedMap(undeclared, declared, mapId).mapId;
      assert.equal(mapId, created.mapId);
      // Dropping a declared name: whatever the live one is, in place.
      assert.deepEqual(recreateReasons(declared, undeclared), []);
      mapId = updatePinnedMap(declared, undeclared, mapId).mapId;
      assert.equal(mapId, created.mapId);
      // Moving the pin changes the default, not the map.
      const moved = spec(path.join(dir, "other"));
      mapId = updatePinnedMap(undeclared, moved, mapId).mapId;
      assert.equal(mapId, created.mapId);
      assert.equal(kernelName(moved.pinPath), "allow");
      // A rebuild for another reason keeps the live name when none is declared.
      const bigger = spec(moved.pinPath, { maxEntries: 32 });
      const rebuilt = updatePinnedMap(moved, bigger, mapId);
      assert.notEqual(rebuilt.mapId, created.mapId);
      mapId = rebuilt.mapId;
      assert.equal(kernelName(moved.pinPath), "allow");
      // A declared name that differs from the live one does rebuild.
      assert.deepEqual(recreateReasons(bigger, spec(moved.pinPath, { maxEntries: 32, name: "renamed" }), false, "allow"), ["name changed"]);
    } finally {
      for (const file of ["allow", "other"]) deletePinnedMap(path.join(dir, file), mapId);
    }
  });

  describe("a libbpf object pinning by name reuses our map and finds it by name", () => {
    const fixtures = path.resolve(__dirname, "..", "..", "tests", "fixtures");
    let bin = "";
    before(function () {
      bin = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-libbpf-"));
      // clang 14 and libbpf-dev 1.1 (Debian packages); the suite needs them.
      execFileSync("clang", ["-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", path.join(fixtures, "libbpf-allow.bpf.c"), "-o", path.join(bin, "allow.bpf.o")], { stdio: "pipe" });
      execFileSync("gcc", ["-O2", "-Wall", "-o", path.join(bin, "loader"), path.join(fixtures, "libbpf-loader.c"), "-lbpf"], { stdio: "pipe" });
    });
    after(() => fs.rmSync(bin, { recursive: true, force: true }));

    // Runs the loader with the pin root `dir`: its output line and exit status.
    function load(dir: string): { out: string; status: number } {
      try {
        return { out: execFileSync(path.join(bin, "loader"), [path.join(bin, "allow.bpf.o"), dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim(), status: 0 };
      } catch (error) {
        const failed = error as { stdout?: string; status?: number };
        return { out: String(failed.stdout ?? "").trim(), status: failed.status ?? -1 };
      }
    }

    it("with the default name (the pin's file name): same map ID, our value", () => {
      const dir = bpffs().dir("libbpf");
      const pinPath = path.join(dir, "allow");
      const observation = createPinnedMap(spec(pinPath));
      try {
        assert.deepEqual(load(dir), { out: `id=${observation.mapId} value=4242`, status: 0 });
      } finally {
        deletePinnedMap(pinPath, observation.mapId);
      }
    });

    it("while a map with another kernel name at the same pin is reused but not found by name (why the default matters)", () => {
      const dir = bpffs().dir("libbpf_other");
      const pinPath = path.join(dir, "allow");
      const observation = createPinnedMap(spec(pinPath, { name: "other" }));
      try {
        assert.deepEqual(load(dir), { out: "map allow not found by name", status: 4 });
      } finally {
        deletePinnedMap(pinPath, observation.mapId);
      }
    });
  });
});
