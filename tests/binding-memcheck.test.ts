// The binding under valgrind memcheck (a script of binding operations, error
// paths included: no memory errors, no definite leaks), and the fd count of
// this process stable over 10k binding and lifecycle operations.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import * as native from "../native/index";
import { isEbpfError } from "../provider/core/errors";
import { createPinnedMap, deletePinnedMap, observePinnedMap } from "../provider/core/lifecycle";
import { checkSpec } from "../provider/core/spec";
import { usePrivateBpffs } from "./fixtures/bpffs";

const FIXTURES = path.resolve(__dirname, "..", "..", "tests", "fixtures");
const openFds = () => fs.readdirSync("/proc/self/fd").length;

describe("binding: memcheck and fd stability", function () {
  this.timeout(180_000);
  const bpffs = usePrivateBpffs();

  it("valgrind memcheck: no errors, no definite leaks", function () {
    assert.equal(spawnSync("valgrind", ["--version"]).status, 0, "valgrind is not installed (npm test installs it: scripts/setup.sh)");
    const r = spawnSync("valgrind", [
      "--leak-check=full", "--errors-for-leak-kinds=definite", "--error-exitcode=9",
      `--suppressions=${path.join(FIXTURES, "valgrind.supp")}`,
      process.execPath, path.join(FIXTURES, "binding-ops.js"), path.resolve(__dirname, "..", "native"), bpffs().dir("memcheck"), "30",
    ], { encoding: "utf8", timeout: 150_000 });
    const summary = r.stderr.split("\n").filter((l) => /ERROR SUMMARY|definitely lost|indirectly lost|possibly lost:/.test(l)).join("\n");
    // eslint-disable-next-line no-console
    console.log(summary.replace(/==\d+== /g, "      memcheck: "));
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr.slice(-4000)}`);
    assert.match(r.stdout, /done 30/);
    assert.match(r.stderr, /ERROR SUMMARY: 0 errors/);
    assert.match(r.stderr, /definitely lost: 0 bytes in 0 blocks/);
  });

  it("fd count stable over 10k operations (binding calls, error paths, lifecycle create/observe/delete)", function () {
    const dir = bpffs().dir("fds");
    const before = openFds();
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(4);
    let ops = 0;
    for (let i = 0; i < 2000; i++) {
      const map = native.createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 8 }, native.plainValueBytes);
      map.update(key, value);
      map.pin(path.join(dir, "p"));
      native.openPinnedMap(path.join(dir, "p"), "ro", native.plainValueBytes).close();
      assert.throws(() => native.openPinnedMap(path.join(dir, "missing"), "rw", native.plainValueBytes), { code: "ENOENT", command: "BPF_OBJ_GET" });
      assert.throws(() => native.createMap({ mapType: 1, keySize: 0, valueSize: 0, maxEntries: 0 }, native.plainValueBytes), { code: "EINVAL", command: "BPF_MAP_CREATE" });
      fs.unlinkSync(path.join(dir, "p"));
      map.close();
      ops += 7;
    }
    for (let i = 0; i < 300; i++) {
      const spec = checkSpec({ pinPath: path.join(dir, `m${i % 3}`), mapType: "hash", keyType: "u32", valueType: "u32", maxEntries: 8, contents: [{ key: i, value: 1 }] });
      const created = createPinnedMap(spec);
      assert.equal(observePinnedMap(spec, created.mapId).status, "ok");
      assert.throws(() => createPinnedMap(spec), (error) => isEbpfError(error, "PinExists"));
      assert.equal(deletePinnedMap(spec.pinPath, created.mapId), "unpinned");
      ops += 4;
    }
    assert.ok(ops >= 10_000, `${ops} operations`);
    assert.equal(openFds(), before, `fds before ${before}, after ${openFds()}`);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
