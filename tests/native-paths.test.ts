// The binding's directory-relative path calls: DirFd (openat with
// O_PATH|O_DIRECTORY|O_NOFOLLOW, mkdirat, fstatfs, unlinkat, renameat2 between
// directory fds) and BPF_OBJ_PIN / BPF_OBJ_GET with BPF_F_PATH_FD, plus the
// object-kind check that keeps a pinned program from being opened as a map.
// Against the real kernel, on a private bpffs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import * as native from "../native";
import { usePrivateBpffs } from "./fixtures/bpffs";

const DIST = path.resolve(__dirname, "..");

/** Opens `dir` by walking from "/" with DirFd. */
function walk(dir: string): native.DirFd {
  let current = native.DirFd.root();
  for (const part of dir.split("/").filter(Boolean)) {
    const next = current.openDir(part);
    current.close();
    current = next;
  }
  return current;
}

const newMap = () => native.createMap({ mapType: 1, keySize: 4, valueSize: 4, maxEntries: 4 }, native.plainValueBytes);

describe("native: directory fds and path-fd pins", function () {
  const bpffs = usePrivateBpffs();

  it("openDir never follows a symlink (ELOOP/ENOTDIR), reports ENOENT, and names the syscall", function () {
    const dir = bpffs().dir("walk");
    fs.mkdirSync(path.join(dir, "real"));
    fs.symlinkSync(path.join(dir, "real"), path.join(dir, "link"));
    const parent = walk(dir);
    try {
      const real = parent.openDir("real");
      assert.equal(real.path, path.join(dir, "real"));
      real.close();
      real.close();
      assert.throws(() => parent.openDir("link"), (error: NodeJS.ErrnoException) => ["ELOOP", "ENOTDIR"].includes(error.code!) && error.syscall === "openat");
      assert.throws(() => parent.openDir("missing"), { code: "ENOENT", syscall: "openat" });
    } finally {
      parent.close();
    }
  });

  it("isOnBpffs tells bpffs from tmpfs/ext4 by fstatfs on the O_PATH fd; mkdir is EEXIST the second time", function () {
    const dir = walk(bpffs().dir("statfs"));
    const tmp = walk(os.tmpdir());
    try {
      assert.equal(dir.isOnBpffs(), true);
      assert.equal(tmp.isOnBpffs(), false);
      dir.mkdir("sub", 0o700);
      assert.throws(() => dir.mkdir("sub", 0o700), { code: "EEXIST", syscall: "mkdirat" });
      assert.equal(fs.statSync(path.join(dir.path, "sub")).mode & 0o777, 0o700);
    } finally {
      dir.close();
      tmp.close();
    }
  });

  it("pin and openMap resolve in the directory the fd refers to, even after its path moved", function () {
    const base = bpffs().dir("moved");
    fs.mkdirSync(path.join(base, "a"));
    const dir = walk(path.join(base, "a"));
    const map = newMap();
    try {
      fs.renameSync(path.join(base, "a"), path.join(base, "b"));
      dir.pin(map, "m");
      assert.equal(fs.existsSync(path.join(base, "b", "m")), true);
      assert.equal(fs.existsSync(path.join(base, "a")), false);
      const again = dir.openMap("m", "ro", native.plainValueBytes);
      assert.equal(again.info.id, map.info.id);
      again.close();
      assert.throws(() => dir.pin(map, "m"), { code: "EEXIST", command: "BPF_OBJ_PIN" });
      assert.throws(() => dir.openMap("nothing", "rw", native.plainValueBytes), { code: "ENOENT", command: "BPF_OBJ_GET" });
    } finally {
      map.close();
      dir.close();
    }
  });

  it("rename between directory fds: NOREPLACE refuses a taken name, EXCHANGE swaps; unlink and rmdir", function () {
    const base = bpffs().dir("rename");
    const dir = walk(base);
    const [first, second] = [newMap(), newMap()];
    try {
      dir.pin(first, "one");
      dir.pin(second, "two");
      assert.throws(() => dir.rename("one", dir, "two", native.RENAME_NOREPLACE), { code: "EEXIST", syscall: "renameat2" });
      dir.rename("one", dir, "two", native.RENAME_EXCHANGE);
      const at = (name: string) => {
        const map = dir.openMap(name, "ro", native.plainValueBytes);
        const id = map.info.id;
        map.close();
        return id;
      };
      assert.equal(at("two"), first.info.id);
      assert.equal(at("one"), second.info.id);
      dir.mkdir("sub", 0o700);
      dir.rename("one", dir, "sub/x", native.RENAME_NOREPLACE);
      assert.throws(() => dir.rmdir("sub"), { code: "ENOTEMPTY", syscall: "unlinkat" });
      dir.unlink("sub/x");
      dir.rmdir("sub");
      assert.deepEqual(fs.readdirSync(base), ["two"]);
      assert.throws(() => dir.unlink("one"), { code: "ENOENT" });
    } finally {
      first.close();
      second.close();
      dir.close();
    }
  });

  describe("a pinned program is not a map", function () {
    let bin: string;
    before(function () {
      bin = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-native-paths-"));
      execFileSync("cc", ["-O2", "-Wall", "-o", path.join(bin, "pin-program"), path.resolve(DIST, "..", "tests", "fixtures", "pin-program.c")], { stdio: "pipe" });
    });
    after(function () {
      if (bin) fs.rmSync(bin, { recursive: true, force: true });
    });

    it("openPinnedMap and DirFd.openMap throw NotAMapError (objectKind \"program\") and leave no fd open; objectKindOf reads the anon inode", function () {
      const dir = bpffs().dir("program");
      execFileSync(path.join(bin, "pin-program"), [path.join(dir, "prog")]);
      const fds = fs.readdirSync("/proc/self/fd").length;
      assert.throws(() => native.openPinnedMap(path.join(dir, "prog"), "rw", native.plainValueBytes), (error) => error instanceof native.NotAMapError && error.objectKind === "program");
      const parent = walk(dir);
      assert.throws(() => parent.openMap("prog", "ro", native.plainValueBytes), (error) => error instanceof native.NotAMapError && /holds a BPF program, not a map/.test(error.message));
      parent.close();
      assert.equal(fs.readdirSync("/proc/self/fd").length, fds, "no fd leaked");
      const map = newMap();
      assert.equal(native.objectKindOf(map.fd), "map");
      map.close();
    });
  });
});
