// `npm run bench` (through bench/run.sh, which builds the C baseline and the
// cilium/ebpf peer and mounts a private bpffs): measures the kernel's limit
// (C, raw syscalls), the peers (cilium/ebpf, bpftool) and our layers in one
// run, prints a table of ratios to the C baseline and writes
// bench/results.json.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bindingLayer, coreLayer, providerLayer, type LayerOptions, type Sample } from "./layers";
import { pulumiMissing, runScenario, type PulumiResult, type PulumiScenario } from "./pulumi";

const root = path.resolve(__dirname, "..", "..");

function knob(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(text)}`);
  return value;
}

const config = {
  /** C, cilium/ebpf, bpftool and binding rows. */
  entries: knob("BENCH_ENTRIES", 1_000_000),
  /** Core and provider rows (typed contents; see BENCHMARKS.md for why not 1M by default). */
  typedEntries: knob("BENCH_TYPED_ENTRIES", 100_000),
  deltaPercent: knob("BENCH_DELTA_PERCENT", 1),
  chunk: knob("BENCH_CHUNK", 4096),
  /** Repeats of the fast rows (C, peers, binding); the minimum is kept. */
  repeat: knob("BENCH_REPEAT", 3),
  /** Repeats of the core and provider rows. */
  typedRepeat: knob("BENCH_TYPED_REPEAT", 1),
  pulumi: process.env.BENCH_PULUMI !== "0",
  pulumiBigEntries: knob("BENCH_PULUMI_ENTRIES", 100_000),
  pulumiMaps: knob("BENCH_PULUMI_MAPS", 200),
  pulumiSmallEntries: knob("BENCH_PULUMI_SMALL_ENTRIES", 10),
  /** Entry counts of the one-map stacks declared with contentsFile (a JSON Lines file); "" for none. */
  pulumiFileEntries: (process.env.BENCH_PULUMI_FILE_ENTRIES ?? `1000000,${knob("BENCH_PULUMI_ENTRIES", 100_000)}`)
    .split(",").map((s) => s.trim()).filter(Boolean).map(Number),
  /** create (always), refresh (preview --refresh), delta (up with 1% changed). */
  pulumiOps: (process.env.BENCH_PULUMI_OPS ?? "create,refresh,delta").split(",").map((s) => s.trim()),
  /** Entry counts of the large-table rows (contentsFile through the provider's methods, one process each); "" for none. */
  tableEntries: (process.env.BENCH_TABLE_ENTRIES ?? "100000,1000000,4000000").split(",").map((s) => s.trim()).filter(Boolean).map(Number),
};

const pinRoot = process.env.BENCH_PIN_DIR;
const workDir = process.env.BENCH_WORK_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-bench-"));
const baselineBin = process.env.BENCH_BASELINE;
const ciliumBin = process.env.BENCH_CILIUM;
const skipped: Record<string, string> = {};
if (process.env.BENCH_CILIUM_SKIP) skipped.cilium = process.env.BENCH_CILIUM_SKIP;

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

// ---- measurements: id → best (minimum) over repeats

const best = new Map<string, Sample>();

function keep(sample: Sample, size: string): void {
  const id = `${sample.id}@${size}`;
  const previous = best.get(id);
  if (!previous || sample.ms < previous.ms) best.set(id, { ...sample, id });
}

function runJsonLines(command: string, args: string[], size: string): void {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.status}: ${result.stderr.trim()}`);
  for (const line of result.stdout.split("\n")) if (line.trim()) keep(JSON.parse(line) as Sample, size);
}

function baseline(n: number): void {
  runJsonLines(baselineBin!, [String(n), String(config.deltaPercent), String(config.chunk)], String(n));
}

function cilium(n: number): void {
  if (skipped.cilium) return;
  try {
    runJsonLines(ciliumBin!, [String(n), String(config.deltaPercent), String(config.chunk)], String(n));
  } catch (error) {
    skipped.cilium = `the cilium/ebpf peer failed: ${(error as Error).message}`;
    log(skipped.cilium);
  }
}

// bpftool: `bpftool batch file` of `map update` lines for populate and delta,
// `bpftool -j map dump` for the dump (its output to /dev/null: parsing the
// JSON is not counted).
function hexBytes(value: number, bytes: number): string {
  const out: string[] = [];
  let rest = value;
  for (let i = 0; i < bytes; i++) {
    out.push((rest % 256).toString(16).padStart(2, "0"));
    rest = Math.floor(rest / 256);
  }
  return out.join(" ");
}

function bpftoolBatchFile(file: string, pin: string, keys: Iterable<number>, bump: number): void {
  const fd = fs.openSync(file, "w");
  try {
    let lines: string[] = [];
    for (const key of keys) {
      lines.push(`map update pinned ${pin} key hex ${hexBytes(key, 4)} value hex ${hexBytes(key * 7 + 1 + bump, 8)}`);
      if (lines.length === 65536) {
        fs.writeSync(fd, `${lines.join("\n")}\n`);
        lines = [];
      }
    }
    if (lines.length) fs.writeSync(fd, `${lines.join("\n")}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

function timedCommand(id: string, entries: number, size: string, command: string, args: string[]): void {
  const devNull = fs.openSync("/dev/null", "w");
  try {
    const start = process.hrtime.bigint();
    const result = spawnSync(command, args, { stdio: ["ignore", devNull, "pipe"], encoding: "utf8" });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.status}: ${result.stderr.trim().slice(0, 400)}`);
    keep({ id, ms, entries }, size);
  } finally {
    fs.closeSync(devNull);
  }
}

function bpftool(n: number, pinDir: string): void {
  if (skipped.bpftool) return;
  const pin = path.join(pinDir, "bpftool");
  const all = path.join(workDir, "bpftool-populate.batch");
  const delta = path.join(workDir, "bpftool-delta.batch");
  try {
    if (!fs.existsSync(all)) bpftoolBatchFile(all, pin, range(0, n, 1), 0);
    if (!fs.existsSync(delta)) bpftoolBatchFile(delta, pin, range(0, n, Math.round(100 / config.deltaPercent)), 1000000007);
    fs.rmSync(pin, { force: true });
    execFileSync("bpftool", ["map", "create", pin, "type", "hash", "key", "4", "value", "8", "entries", String(n), "name", "bench_bpftool"]);
    const size = String(n);
    timedCommand("bpftool.batch_update", n, size, "bpftool", ["batch", "file", all]);
    timedCommand("bpftool.dump", n, size, "bpftool", ["-j", "map", "dump", "pinned", pin]);
    timedCommand("bpftool.delta_batch", Math.ceil(n / Math.round(100 / config.deltaPercent)), size, "bpftool", ["batch", "file", delta]);
  } catch (error) {
    skipped.bpftool = `bpftool failed: ${(error as Error).message}`;
    log(skipped.bpftool);
  } finally {
    fs.rmSync(pin, { force: true });
  }
}

function* range(from: number, to: number, step: number): Generator<number> {
  for (let i = from; i < to; i += step) yield i;
}

// ---- the table

interface Row {
  work: string;
  id: string;
  who: string;
  entries: number;
  ms: number;
  usPerEntry: number;
  baseline: string;
  baselineMs: number;
  /** ms / baselineMs: both over the same entries, measured in this run. */
  ratio: number;
  /** Per-entry time of cilium/ebpf for the same work, over ours (> 1: we are faster). */
  vsCilium?: number;
  /** Per-entry time of bpftool for the same work, over ours. */
  vsBpftool?: number;
  note?: string;
}

interface RowSpec {
  id: string;
  who: string;
  note?: string;
}

interface Group {
  work: string;
  baseline: string;
  rows: RowSpec[];
  cilium?: string;
  bpftool?: string;
}

function groups(n: string, m: string): Group[] {
  const pct = `${config.deltaPercent}%`;
  return [
    {
      work: `update one element at a time (${n} keys)`, baseline: `c.update_elem@${n}`, cilium: `cilium.put@${n}`,
      rows: [
        { id: `binding.update_elem@${n}`, who: "ours: binding MapFd.update" },
        { id: `binding.update_elem_prepared@${n}`, who: "ours: binding MapFd.prepare → update()" },
        { id: `cilium.put@${n}`, who: "cilium/ebpf Map.Put" },
      ],
    },
    {
      work: `look up one element at a time (${n} keys)`, baseline: `c.lookup_elem@${n}`, cilium: `cilium.lookup@${n}`,
      rows: [
        { id: `binding.lookup_elem@${n}`, who: "ours: binding MapFd.lookupInto" },
        { id: `binding.lookup_elem_prepared@${n}`, who: "ours: binding MapFd.prepare → lookup()" },
        { id: `cilium.lookup@${n}`, who: "cilium/ebpf Map.Lookup" },
      ],
    },
    {
      work: `populate ${n} entries (batch update)`, baseline: `c.update_batch@${n}`, cilium: `cilium.batch_update@${n}`, bpftool: `bpftool.batch_update@${n}`,
      rows: [
        { id: `binding.update_batch@${n}`, who: "ours: binding updateBatch" },
        { id: `binding.update_batch_async@${n}`, who: "ours: binding updateBatchAsync" },
        { id: `cilium.batch_update@${n}`, who: "cilium/ebpf Map.BatchUpdate" },
        { id: `bpftool.batch_update@${n}`, who: "bpftool batch file (map update lines)" },
      ],
    },
    {
      work: `dump ${n} entries (batch lookup)`, baseline: `c.lookup_batch@${n}`, cilium: `cilium.batch_lookup@${n}`, bpftool: `bpftool.dump@${n}`,
      rows: [
        { id: `binding.lookup_batch@${n}`, who: "ours: binding lookupBatch" },
        { id: `binding.lookup_batch_async@${n}`, who: "ours: binding lookupBatchAsync" },
        { id: `cilium.batch_lookup@${n}`, who: "cilium/ebpf Map.BatchLookup" },
        { id: `cilium.iterate@${n}`, who: "cilium/ebpf Map.Iterate (next key + lookup)" },
        { id: `bpftool.dump@${n}`, who: "bpftool -j map dump (to /dev/null)" },
        { id: `c.dump_getnext@${n}`, who: "C: get-next-key + lookup (reference)" },
      ],
    },
    {
      work: `${pct} delta on ${n} (changed entries alone)`, baseline: `c.delta_update_batch@${n}`, cilium: `cilium.delta_update_batch@${n}`, bpftool: `bpftool.delta_batch@${n}`,
      rows: [
        { id: `binding.delta_update_batch@${n}`, who: "ours: binding updateBatch" },
        { id: `cilium.delta_update_batch@${n}`, who: "cilium/ebpf Map.BatchUpdate" },
        { id: `bpftool.delta_batch@${n}`, who: "bpftool batch file" },
      ],
    },
    {
      work: `${pct} delta on ${n} (reconciled: dump, compare, write)`, baseline: `c.delta_reconcile@${n}`, cilium: `cilium.delta_reconcile@${n}`,
      rows: [
        { id: `binding.delta_reconcile@${n}`, who: "ours: binding lookupBatch + updateBatch" },
        { id: `cilium.delta_reconcile@${n}`, who: "cilium/ebpf BatchLookup + Go map + BatchUpdate" },
      ],
    },
    {
      work: `create + populate ${m} typed entries`, baseline: `c.create_update_batch@${m}`, cilium: `cilium.create_batch_update@${n}`,
      rows: [
        { id: `core.check@${m}`, who: "ours: core checkSpec (validate + encode)" },
        { id: `core.create@${m}`, who: "ours: core createPinnedMap" },
        { id: `provider.check@${m}`, who: "ours: provider.check" },
        { id: `provider.create@${m}`, who: "ours: provider.create" },
      ],
    },
    {
      work: `dump + decode ${m} typed entries`, baseline: `c.lookup_batch@${m}`, cilium: `cilium.batch_lookup@${n}`,
      rows: [
        { id: `core.observe@${m}`, who: "ours: core observePinnedMap" },
        { id: `provider.read@${m}`, who: "ours: provider.read" },
      ],
    },
    {
      work: `${pct} delta on ${m} typed entries`, baseline: `c.delta_update_batch@${m}`, cilium: `cilium.delta_reconcile@${n}`,
      rows: [
        { id: `core.update@${m}`, who: "ours: core updatePinnedMap", note: "vs C reconcile" },
        { id: `provider.diff@${m}`, who: "ours: provider.diff" },
        { id: `provider.update@${m}`, who: "ours: provider.update", note: "vs C reconcile" },
      ],
    },
  ];
}

// ---- large tables: contentsFile maps through the provider's methods, one child process per size

/** Runs bench/tables.js for `n` entries in its own process (so its peak RSS is this work's), keeping its samples. */
function largeTable(n: number): void {
  const script = path.join(root, "dist", "bench", "tables.js");
  runJsonLines(process.execPath, ["--expose-gc", script, String(n), pinRoot!, workDir], String(n));
}

/** The goal of each large-table row, as a ratio to its C baseline (issue: packed tables). */
const TABLE_ROWS = [
  { id: "provider.file.check_create", who: "check + create from contentsFile", baseline: "c.create_update_batch", baselineWho: "C batch populate", goal: 4 },
  { id: "provider.file.read", who: "read, unchanged", baseline: "c.lookup_batch", baselineWho: "C batch dump", goal: 4 },
  { id: "provider.file.read_drift", who: "read, 30 keys of each kind drifted (20 named)", baseline: "c.lookup_batch", baselineWho: "C batch dump", goal: 6 },
  { id: "provider.file.check_diff_update", who: "check + diff + update of a 1% change", baseline: "c.delta_reconcile", baselineWho: "C reconcile (dump + compare + write)", goal: 4 },
];

function largeTableRows(): string {
  const lines = [
    "| entries | operation | time | C baseline | × C | goal |",
    "|---:|---|---:|---|---:|---:|",
  ];
  for (const n of config.tableEntries) {
    for (const row of TABLE_ROWS) {
      const sample = best.get(`${row.id}@${n}`);
      const base = best.get(`${row.baseline}@${n}`);
      if (!sample || !base) continue;
      const ratio = sample.ms / base.ms;
      lines.push(`| ${n} | ${row.who} | ${fmtMs(sample.ms)} | ${row.baselineWho} ${fmtMs(base.ms)} | ${fmtRatio(ratio)} | ≤ ${row.goal}× ${ratio <= row.goal ? "(met)" : "(not met)"} |`);
    }
    const rss = best.get(`rss.peak@${n}`);
    if (rss) lines.push(`| ${n} | peak RSS of the process (all of the above) | ${rss.ms.toFixed(0)} MB | | | ${n === 1_000_000 ? `≤ 400 MB ${rss.ms <= 400 ? "(met)" : "(not met)"}` : ""} |`);
  }
  return lines.join("\n");
}

function perEntry(sample: Sample): number {
  return (sample.ms * 1000) / Math.max(1, sample.entries);
}

function buildRows(n: string, m: string): Row[] {
  const rows: Row[] = [];
  for (const group of groups(n, m)) {
    const base = best.get(group.baseline);
    if (!base) continue;
    rows.push({
      work: group.work, id: group.baseline, who: "C, raw bpf(2) (baseline)", entries: base.entries, ms: base.ms,
      usPerEntry: perEntry(base), baseline: group.baseline, baselineMs: base.ms, ratio: 1,
    });
    for (const spec of group.rows) {
      const sample = best.get(spec.id);
      if (!sample) continue;
      // Ratios compare the same work: per entry where the sizes differ.
      const ratio = perEntry(sample) / perEntry(base);
      const row: Row = {
        work: group.work, id: spec.id, who: spec.who, entries: sample.entries, ms: sample.ms, usPerEntry: perEntry(sample),
        baseline: group.baseline, baselineMs: base.ms, ratio,
      };
      if (spec.id.startsWith("binding.") || spec.id.startsWith("core.") || spec.id.startsWith("provider.")) {
        const peer = group.cilium && best.get(group.cilium);
        if (peer) row.vsCilium = perEntry(peer) / perEntry(sample);
        const tool = group.bpftool && best.get(group.bpftool);
        if (tool) row.vsBpftool = perEntry(tool) / perEntry(sample);
      }
      if (spec.note === "vs C reconcile") {
        const reconcile = best.get(`c.delta_reconcile@${m}`);
        const populate = best.get(spec.id.startsWith("core.") ? `core.create@${m}` : `provider.create@${m}`);
        const parts: string[] = [];
        if (reconcile) parts.push(`${(sample.ms / reconcile.ms).toFixed(1)}× C reconcile`);
        if (populate) parts.push(`${((100 * sample.ms) / populate.ms).toFixed(0)}% of our create`);
        row.note = parts.join(", ");
      }
      rows.push(row);
    }
  }
  return rows;
}

function fmtMs(ms: number): string {
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

function fmtRatio(value: number | undefined): string {
  if (value === undefined) return "";
  return value >= 100 ? `${value.toFixed(0)}×` : value >= 10 ? `${value.toFixed(1)}×` : `${value.toFixed(2)}×`;
}

function table(rows: Row[]): string {
  const lines: string[] = [];
  const header = ["implementation", "entries", "time", "µs/entry", "× C", "cilium/ours", "bpftool/ours", "note"];
  let work = "";
  const body: string[][] = [];
  for (const row of rows) {
    if (row.work !== work) {
      work = row.work;
      body.push([`**${work}**`]);
    }
    body.push([row.who, String(row.entries), fmtMs(row.ms), row.usPerEntry.toFixed(3), fmtRatio(row.ratio),
      fmtRatio(row.vsCilium), fmtRatio(row.vsBpftool), row.note ?? ""]);
  }
  lines.push(`| ${header.join(" | ")} |`);
  lines.push(`|${header.map((_, i) => (i === 0 || i === header.length - 1 ? "---" : "---:")).join("|")}|`);
  for (const cells of body) {
    const full = cells.length === 1 ? [cells[0]!, ...header.slice(1).map(() => "")] : cells;
    lines.push(`| ${full.join(" | ")} |`);
  }
  return lines.join("\n");
}

function pulumiTable(results: PulumiResult[]): string {
  const lines = [
    "| stack | operation | wall time | plugin RPCs | our provider methods | our share of wall | calls | provider peak RSS | state file |",
    "|---|---|---:|---:|---:|---:|---|---:|---:|",
  ];
  for (const result of results) {
    const label = `${result.scenario.maps} × ${result.scenario.entriesPerMap}-entry map${result.scenario.maps > 1 ? "s" : ""}` +
      (result.scenario.contentsFile ? ", contentsFile" : ", inline contents");
    if (result.error && result.ops.length === 0) {
      lines.push(`| ${label} | failed: ${result.error} | | | | | | | |`);
      continue;
    }
    result.ops.forEach((op, i) => {
      const rpc = ["check", "diff", "create", "read", "update", "delete"].reduce((sum, m) => sum + (op.rpcMs[m] ?? 0), 0);
      const ours = Object.values(op.providerMs).reduce((a, b) => a + b, 0);
      const calls = Object.entries(op.calls).map(([m, c]) => `${m} ${c}`).join(", ");
      const state = i === 0 ? `${(result.stateBytes / 1024).toFixed(0)} KiB` : "";
      const rss = op.providerPeakRssMb > 0 ? `${op.providerPeakRssMb.toFixed(0)} MB` : "";
      lines.push(`| ${label} | ${op.op} | ${fmtMs(op.wallMs)} | ${fmtMs(rpc)} | ${fmtMs(ours)} | ${((100 * ours) / op.wallMs).toFixed(1)}% | ${calls} | ${rss} | ${state} |`);
    });
    if (result.error) lines.push(`| ${label} | failed: ${result.error} | | | | | | | |`);
  }
  return lines.join("\n");
}

function machine(): Record<string, unknown> {
  const cpu = os.cpus()[0]?.model ?? "unknown";
  const version = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0]!.trim();
    } catch {
      return undefined;
    }
  };
  return {
    kernel: os.release(),
    cpu,
    cores: os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    go: version("go", ["version"]),
    cc: version("cc", ["--version"]),
    bpftool: version("bpftool", ["version"]),
    ciliumEbpf: process.env.BENCH_CILIUM_VERSION,
  };
}

async function main(): Promise<void> {
  if (!pinRoot) throw new Error("BENCH_PIN_DIR must name a directory in a bpffs mount (bench/run.sh sets it)");
  if (!baselineBin) throw new Error("BENCH_BASELINE must name the compiled C baseline (bench/run.sh builds it)");
  try {
    execFileSync("bpftool", ["version"], { stdio: "ignore" });
  } catch {
    skipped.bpftool = "bpftool is not installed (apt-get install bpftool)";
  }
  for (const [peer, reason] of Object.entries(skipped)) log(`skipping ${peer}: ${reason}`);
  const started = Date.now();
  const loadBefore = os.loadavg();
  const n = String(config.entries);
  const m = String(config.typedEntries);
  log(`config ${JSON.stringify(config)}`);

  const layerOptions = (entries: number): LayerOptions => ({
    entries, deltaPercent: config.deltaPercent, chunk: config.chunk, pinDir: pinRoot,
  });
  for (let r = 1; r <= config.repeat; r++) {
    log(`round ${r}/${config.repeat} at ${n} entries: C, cilium/ebpf, bpftool, binding`);
    baseline(config.entries);
    cilium(config.entries);
    bpftool(config.entries, pinRoot);
    for (const sample of await bindingLayer(layerOptions(config.entries))) keep(sample, n);
  }
  for (let r = 1; r <= config.typedRepeat; r++) {
    log(`round ${r}/${config.typedRepeat} at ${m} typed entries: C, core, provider`);
    for (let i = 0; i < config.repeat; i++) baseline(config.typedEntries);
    for (const sample of coreLayer(layerOptions(config.typedEntries))) keep(sample, m);
    for (const sample of await providerLayer(layerOptions(config.typedEntries))) keep(sample, m);
  }

  for (const entries of config.tableEntries) {
    log(`large table: ${entries} entries from a contentsFile through the provider (C baseline at the same size)`);
    for (let i = 0; i < config.repeat; i++) baseline(entries);
    largeTable(entries);
  }

  const pulumiResults: PulumiResult[] = [];
  if (!config.pulumi) {
    skipped.pulumi = "BENCH_PULUMI=0";
  } else {
    const missing = pulumiMissing(root);
    if (missing) {
      skipped.pulumi = missing;
      log(`skipping the Pulumi level: ${missing}`);
    } else {
      // Inside the repository, so the generated projects resolve pulumi-ebpf
      // by self-reference (bench/bin/ is git-ignored).
      const pulumiDir = path.join(root, "bench", "bin", "pulumi");
      fs.rmSync(pulumiDir, { recursive: true, force: true });
      const scenarios: PulumiScenario[] = [
        { name: "big", maps: 1, entriesPerMap: config.pulumiBigEntries },
        ...config.pulumiFileEntries.map((entries) => ({ name: `file-${entries}`, maps: 1, entriesPerMap: entries, contentsFile: true })),
        { name: "many", maps: config.pulumiMaps, entriesPerMap: config.pulumiSmallEntries },
      ];
      for (const scenario of scenarios) {
        log(`pulumi: ${scenario.maps} map(s) × ${scenario.entriesPerMap} entries${scenario.contentsFile ? " from contentsFile" : ""} (${config.pulumiOps.join(", ")})`);
        pulumiResults.push(runScenario(scenario, {
          root, workDir: pulumiDir, pinDir: pinRoot, deltaPercent: config.deltaPercent, log,
          ops: config.pulumiOps,
        }));
      }
    }
  }

  const rows = buildRows(n, m);
  const info = machine();
  const results = {
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: info,
    loadAverage: { before: loadBefore, after: os.loadavg() },
    config,
    skipped,
    rows,
    samples: Object.fromEntries(best),
    pulumi: pulumiResults,
  };
  fs.writeFileSync(path.join(root, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);

  const out: string[] = [];
  out.push(`Machine: Linux ${info.kernel}, ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB; node ${info.node}; ` +
    `load average before/after ${loadBefore.map((x) => x.toFixed(2)).join(" ")} / ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  out.push(`Hash map u32 → u64; best of ${config.repeat} (C, peers, binding) and ${config.typedRepeat} (core, provider); ` +
    `× C = per-entry time over the C baseline's in this run; cilium/ours, bpftool/ours > 1 means ours is faster.`);
  out.push("");
  out.push(table(rows));
  if (config.tableEntries.length) {
    out.push("");
    out.push("Large tables: a hash u32 → u64 map declared with contentsFile, the provider's methods called as the engine calls them, one process per size; × C = time over the C baseline at the same size in this run.");
    out.push("");
    out.push(largeTableRows());
  }
  if (pulumiResults.length) {
    out.push("");
    out.push(pulumiTable(pulumiResults));
    for (const result of pulumiResults) {
      const entries = result.scenario.maps * result.scenario.entriesPerMap;
      out.push(`state: ${result.scenario.maps} × ${result.scenario.entriesPerMap}${result.scenario.contentsFile ? " (contentsFile)" : ""}: ${result.stateBytes} bytes ` +
        `(${(result.stateBytes / entries).toFixed(1)} bytes/entry, ${(result.stateBytes / result.scenario.maps).toFixed(0)} bytes/map); ` +
        `first map's inputs ${result.resourceBytes.inputs} B, outputs ${result.resourceBytes.outputs} B, serialized provider ${result.resourceBytes.provider} B` +
        (result.contentsFileBytes !== undefined ? `; JSON Lines file ${result.contentsFileBytes} B (not in state)` : ""));
    }
  }
  for (const [what, reason] of Object.entries(skipped)) out.push(`skipped ${what}: ${reason}`);
  out.push("");
  out.push(`results: bench/results.json (${results.durationSeconds} s)`);
  console.log(out.join("\n"));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
