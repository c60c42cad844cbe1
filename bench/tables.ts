// Large tables through the dynamic provider: a hash u32 → u64 map of N
// entries declared with `contentsFile`, the provider's methods called as the
// engine calls them, one child process per size so that the process's peak
// RSS is this work's alone. Same data as bench/baseline.c (keys 0..N-1,
// values key * 7 + 1; the 1% change bumps every 100th key's value).
//
//   node dist/bench/tables.js N PIN_DIR WORK_DIR   → one JSON line per sample on stdout
//
// Samples: provider.file.check_create, provider.file.read (unchanged),
// provider.file.check_diff_update (1% change), provider.file.read_drift (60
// keys added, changed and removed behind the provider's back; the drift names
// 20 of each), and rss.peak (VmHWM of this process, in MB, as `ms`).
import * as fs from "node:fs";
import * as path from "node:path";
import { openPinnedMap, plainValueBytes } from "../native";
import { provider } from "../provider/dynamic/index";

const DELTA_BUMP = 1000000007;

/** Writes the JSON Lines file of N entries, every `stride`-th value bumped (stride 0: none), in bounded chunks. */
export function writeTableFile(file: string, n: number, stride = 0): number {
  const fd = fs.openSync(file, "w");
  let bytes = 0;
  try {
    let lines: string[] = [];
    for (let key = 0; key < n; key++) {
      const value = key * 7 + 1 + (stride > 0 && key % stride === 0 ? DELTA_BUMP : 0);
      lines.push(`{"key":${key},"value":${value}}`);
      if (lines.length === 65536 || key === n - 1) {
        const text = `${lines.join("\n")}\n`;
        bytes += fs.writeSync(fd, text);
        lines = [];
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

function peakRssMb(): number {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

function fail(what: string): never {
  throw new Error(`bench tables: ${what}`);
}

async function timed<T>(id: string, entries: number, fn: () => Promise<T>): Promise<T> {
  (globalThis as { gc?: () => void }).gc?.();
  const start = process.hrtime.bigint();
  const result = await fn();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(JSON.stringify({ id, ms, entries }));
  return result;
}

/** Runs the file-mode samples for N entries; files must exist: table.jsonl and table-delta.jsonl in workDir. */
async function run(n: number, pinDir: string, workDir: string): Promise<void> {
  const pinPath = path.join(pinDir, `table-${n}`);
  fs.rmSync(pinPath, { force: true });
  const file = path.join(workDir, `table-${n}.jsonl`);
  const deltaFile = path.join(workDir, `table-${n}-delta.jsonl`);
  const declaration = (contentsFile: string) => ({ pinPath, mapType: "hash", keyType: "u32", valueType: "u64", maxEntries: n, contentsFile });
  try {
    const created = await timed("provider.file.check_create", n, async () => {
      const checked = await provider.check({}, declaration(file));
      if (checked.failures?.length) fail(`check failed: ${JSON.stringify(checked.failures.slice(0, 3))}`);
      return provider.create(checked.inputs!);
    });
    const outs = created.outs as Record<string, unknown>;
    if (outs.entryCount !== n) fail(`create made ${String(outs.entryCount)} entries, not ${n}`);
    const clean = await timed("provider.file.read", n, () => provider.read(created.id, outs));
    if (clean.props?.drift !== undefined) fail(`read of an unchanged map found drift: ${JSON.stringify(clean.props.drift)}`);

    const changed = Math.ceil(n / 100);
    const updated = await timed("provider.file.check_diff_update", changed, async () => {
      const checked = await provider.check(outs, declaration(deltaFile));
      if (checked.failures?.length) fail(`check failed: ${JSON.stringify(checked.failures.slice(0, 3))}`);
      const diff = await provider.diff(created.id, outs, checked.inputs!);
      if (!diff.changes) fail("diff saw no change");
      return provider.update(created.id, outs, checked.inputs!);
    });
    const newOuts = updated.outs as Record<string, unknown>;
    if (newOuts.mapId !== outs.mapId) fail("update built a new map instead of a delta");

    // Drift behind the provider's back: 30 keys added, 30 changed, 30 removed.
    const map = openPinnedMap(pinPath, "rw", plainValueBytes);
    try {
      const key = Buffer.alloc(4);
      const value = Buffer.alloc(8, 0xee);
      // Removed first: the map is full (maxEntries = N).
      for (let i = 0; i < 30; i++) {
        key.writeUInt32LE(n - 1 - 2 * i);
        map.delete(key);
      }
      for (let i = 0; i < 30; i++) {
        key.writeUInt32LE(n + i);
        map.update(key, value);
        key.writeUInt32LE(2 * i + 1);
        map.update(key, value);
      }
    } finally {
      map.close();
    }
    const drifted = await timed("provider.file.read_drift", n, () => provider.read(created.id, newOuts));
    const drift = drifted.props?.drift as Record<string, unknown[]> | undefined;
    for (const kind of ["added", "changed", "removed"]) {
      if (drift?.[kind]?.length !== 20) fail(`drift ${kind}: ${JSON.stringify(drift?.[kind])} (expected 20 keys)`);
    }
  } finally {
    fs.rmSync(pinPath, { force: true });
  }
  console.log(JSON.stringify({ id: "rss.peak", ms: peakRssMb(), entries: n }));
}

if (require.main === module) {
  const [count, pinDir, workDir] = process.argv.slice(2);
  if (!count || !pinDir || !workDir) {
    console.error("usage: node dist/bench/tables.js N PIN_DIR WORK_DIR");
    process.exit(2);
  }
  const n = Number(count);
  const file = path.join(workDir, `table-${n}.jsonl`);
  const deltaFile = path.join(workDir, `table-${n}-delta.jsonl`);
  // Written by the parent (bench/main.ts) so their cost is not this process's; standalone runs write them here.
  if (!fs.existsSync(file)) writeTableFile(file, n);
  if (!fs.existsSync(deltaFile)) writeTableFile(deltaFile, n, 100);
  run(n, pinDir, workDir).catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
