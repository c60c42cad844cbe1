// A simulated fleet of three hosts (mount namespaces with their own bpffs,
// tests/fixtures/fleet.ts) reconciled by `pulumi-ebpf agent` against one
// shared Pulumi DIY backend, a real PostgreSQL server (tests/fixtures/postgres.ts),
// and watched by `pulumi-ebpf fleet status`: convergence, drift on one host
// found and repaired without touching the others, an agent SIGKILLed mid-run,
// two agents on one stack, and the backend going away mid-run.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { copyFleetProject, killGroup, machineBpffsMounts, makeFleet, PULUMI_EBPF_BIN, type SimulatedFleet, type SimulatedHost } from "./fixtures/fleet";
import { startPrivatePostgres, type PrivatePostgres } from "./fixtures/postgres";
import { pulumiEnv, runAsync, type RunResult } from "./fixtures/pulumi";

const PREFIX = "fleet";
const PIN = "/sys/fs/bpf/pulumi-ebpf-fleet/limits";
const HOSTS = 3;

/** What the fleet project declares for host h<N>: keys 1..N+1, key k → N * 1000 + k. */
function declaredFor(host: SimulatedHost): Record<number, number> {
  const number = Number(host.name.slice(1));
  const expected: Record<number, number> = {};
  for (let key = 1; key <= number + 1; key++) expected[key] = number * 1000 + key;
  return expected;
}

const u32Bytes = (n: number): string[] => {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(n);
  return [...buffer].map(String);
};

/** The map's entries read by bpftool inside the host's namespace (u32 → u32). Throws when bpftool fails. */
function dumpIn(host: SimulatedHost): Record<number, number> {
  const result = host.run("bpftool", ["-j", "map", "dump", "pinned", PIN]);
  assert.equal(result.code, 0, `bpftool on ${host.name}: ${result.output}`);
  const out: Record<number, number> = {};
  for (const entry of JSON.parse(result.stdout) as { key: string[]; value: string[] }[]) {
    const bytes = (hex: string[]) => Buffer.from(hex.map((b) => parseInt(b, 16)));
    out[bytes(entry.key).readUInt32LE(0)] = bytes(entry.value).readUInt32LE(0);
  }
  return out;
}

/** Writes key → value with bpftool inside the host (someone behind the agent's back). */
function writeIn(host: SimulatedHost, key: number, value: number): void {
  const result = host.run("bpftool", ["map", "update", "pinned", PIN, "key", ...u32Bytes(key), "value", ...u32Bytes(value)]);
  assert.equal(result.code, 0, result.output);
}

interface StatusFile {
  host: string; stack: string; mode: string; result: string; durationMs: number; maps?: number;
  drift: { map: string; added: number[]; changed: number[]; removed: number[] }[]; error?: string;
}

interface FleetStatusJson {
  hosts: { host: string; stack: string; lastKind?: string; lastResult?: string; maps: number; drift: { map: string; changed: number[] }[]; problems: string[] }[];
  exitCode: number;
}

describe("fleet: agents on three hosts over a shared PostgreSQL backend", function () {
  this.timeout(300_000);
  let postgres: PrivatePostgres | undefined;
  let fleet: SimulatedFleet | undefined;
  let project = "";
  let scratch = "";
  let env: NodeJS.ProcessEnv = {};
  const mountsBefore = machineBpffsMounts();
  const stackOf = (host: SimulatedHost) => `${PREFIX}-${host.name}`;
  const statusFileOf = (host: SimulatedHost) => path.join(project, ".pulumi-ebpf", `status-${stackOf(host)}.json`);
  const readStatus = (host: SimulatedHost) => JSON.parse(fs.readFileSync(statusFileOf(host), "utf8")) as StatusFile;
  const host = (number: number): SimulatedHost => fleet!.hosts[number - 1]!;

  /** `pulumi-ebpf agent <mode> ...` inside the host's namespace. */
  const agent = (target: SimulatedHost, mode: string[], onSpawn?: (pid: number) => void): Promise<RunResult> =>
    target.runAsync("node", [PULUMI_EBPF_BIN, "agent", "--project", project, "--stack", stackOf(target), "--host", target.name,
      "--lock-timeout", "60", ...mode], { env, timeoutMs: 240_000, onSpawn });
  const fleetStatus = (): Promise<RunResult> =>
    runAsync("node", [PULUMI_EBPF_BIN, "fleet", "status", "--project", project, "--stack-prefix", PREFIX, "--json"], { env, timeoutMs: 120_000 });
  /** Resolves once the backend holds a lock of the stack (the run has started its update). */
  const lockHeld = async (stack: string): Promise<void> => {
    for (let attempt = 0; attempt < 600; attempt++) {
      if (Number(postgres!.sql(`select count(*) from pulumi_state where key like '%/locks/%/${stack}/%'`)) > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`no lock of ${stack} appeared in the backend`);
  };

  before(async function () {
    this.timeout(120_000);
    postgres = await startPrivatePostgres();
    fleet = makeFleet(HOSTS);
    project = copyFleetProject();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-fleet-"));
    env = { ...process.env, ...pulumiEnv(scratch), PULUMI_BACKEND_URL: postgres.backendUrl };
    delete env.PULUMI_ACCESS_TOKEN;
  });

  after(function () {
    this.timeout(120_000);
    const problems = fleet?.cleanup() ?? [];
    postgres?.cleanup();
    if (project) fs.rmSync(project, { recursive: true, force: true });
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    if (problems.length > 0) console.warn(`fleet cleanup: ${problems.join("; ")}`);
  });

  it("every host converges to what its config asks for, each in its own bpffs, and the machine's /sys/fs/bpf is untouched", async () => {
    const started = Date.now();
    const runs = await Promise.all(fleet!.hosts.map((target) => agent(target, ["--once", "--metrics-file", path.join(scratch, `${target.name}.prom`)])));
    const wallMs = Date.now() - started;
    for (const [index, result] of runs.entries()) assert.equal(result.code, 0, `h${index + 1}: ${result.output}`);
    for (const target of fleet!.hosts) {
      assert.deepEqual(dumpIn(target), declaredFor(target), `${target.name}'s map`);
      const status = readStatus(target);
      assert.equal(status.result, "converged");
      assert.equal(status.stack, stackOf(target));
      assert.equal(status.maps, 1);
      assert.match(fs.readFileSync(path.join(scratch, `${target.name}.prom`), "utf8"),
        new RegExp(`pulumi_ebpf_agent_last_run_success\\{host="${target.name}",stack="${stackOf(target)}",mode="once"\\} 1`));
    }
    assert.deepEqual(machineBpffsMounts(), mountsBefore);
    assert.equal(fs.existsSync(path.dirname(PIN)), false, "a pin landed in the machine's /sys/fs/bpf");
    console.log(`    fleet of ${HOSTS} converged in ${wallMs} ms (concurrent); per host: ${runs.map((r, i) => `h${i + 1} ${r.ms} ms`).join(", ")}`);

    const status = await fleetStatus();
    assert.equal(status.code, 0, status.output);
    const rows = (JSON.parse(status.stdout) as FleetStatusJson).hosts;
    assert.deepEqual(rows.map((row) => [row.host, row.lastKind, row.lastResult, row.maps]), [["h1", "update", "succeeded", 1], ["h2", "update", "succeeded", 1], ["h3", "update", "succeeded", 1]]);
  });

  it("drift on h2 is reported by agent --check on h2 (exit 7) and by fleet status (exit 7, h2's row), touches no other host, and agent --once repairs it", async () => {
    writeIn(host(2), 2, 999);
    const check = await agent(host(2), ["--check"]);
    assert.equal(check.code, 7, check.output);
    assert.deepEqual(dumpIn(host(2)), { ...declaredFor(host(2)), 2: 999 }, "--check changed the map");
    const status = readStatus(host(2));
    assert.equal(status.result, "drift");
    assert.deepEqual(status.drift.map((map) => [map.map, map.changed]), [[PIN, [2]]]);

    // The other hosts: maps as declared, and their stacks' last operation is still their converging update.
    assert.deepEqual(dumpIn(host(1)), declaredFor(host(1)));
    assert.deepEqual(dumpIn(host(3)), declaredFor(host(3)));

    const fleetRun = await fleetStatus();
    assert.equal(fleetRun.code, 7, fleetRun.output);
    const report = JSON.parse(fleetRun.stdout) as FleetStatusJson;
    assert.equal(report.exitCode, 7);
    assert.deepEqual(report.hosts.map((row) => [row.host, row.lastKind, row.drift.map((map) => map.changed), row.problems]),
      [["h1", "update", [], []], ["h2", "refresh", [[2]], ["drift"]], ["h3", "update", [], []]]);

    const repair = await agent(host(2), ["--once"]);
    assert.equal(repair.code, 0, repair.output);
    assert.deepEqual(dumpIn(host(2)), declaredFor(host(2)));
    const after = await fleetStatus();
    assert.equal(after.code, 0, after.output);
  });

  it("fleet status --stale: a host whose last run is older fails the check (exit 1) and its row says so, in the table too", async () => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const stale = await runAsync("node", [PULUMI_EBPF_BIN, "fleet", "status", "--project", project, "--stack-prefix", PREFIX, "--stale", "1"], { env, timeoutMs: 120_000 });
    assert.equal(stale.code, 1, stale.output);
    const lines = stale.stdout.trim().split("\n");
    assert.match(lines[0]!, /^HOST\s+STACK\s+LAST RUN\s+RESULT\s+MAPS\s+DRIFT\s+STATE$/);
    assert.deepEqual(lines.slice(1).map((line) => line.split(/\s+/)[0]), ["h1", "h2", "h3"]);
    for (const line of lines.slice(1)) assert.match(line, /stale \(> 1 s\)$/);
  });

  it("agent in loop mode reconciles, then stops cleanly on SIGTERM between runs (exit 0)", async () => {
    writeIn(host(2), 3, 31337);
    const before = readStatus(host(2));
    let pid = 0;
    const loop = agent(host(2), ["--interval", "3600"], (spawned) => (pid = spawned));
    // The first run ends by writing the status file; then the loop waits an hour, and SIGTERM ends the wait.
    for (let attempt = 0; attempt < 1200 && JSON.stringify(readStatus(host(2))) === JSON.stringify(before); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(readStatus(host(2)).mode, "loop");
    process.kill(pid, "SIGTERM");
    const stopped = await loop;
    assert.equal(stopped.code, 0, stopped.output);
    assert.match(stopped.stderr, /stopped/);
    assert.equal(readStatus(host(2)).result, "converged");
    assert.deepEqual(dumpIn(host(2)), declaredFor(host(2)));
  });

  it("an agent SIGKILLed (with its CLI) in the middle of its update converges on its next run", async () => {
    writeIn(host(3), 1, 7);
    let pid = 0;
    const killed = agent(host(3), ["--once"], (spawned) => (pid = spawned));
    await lockHeld(stackOf(host(3)));
    killGroup(pid);
    const first = await killed;
    assert.equal(first.signal, "SIGKILL", first.output);
    const next = await agent(host(3), ["--once"]);
    assert.equal(next.code, 0, next.output);
    console.log(`    after SIGKILL: ${/cancelling its lock/.test(next.stderr) ? "the stale lock was cancelled" : "no lock was left"}; next run ${next.ms} ms`);
    assert.deepEqual(dumpIn(host(3)), declaredFor(host(3)));
    assert.equal(readStatus(host(3)).result, "converged");
  });

  it("two agents on one stack at once: the second waits, or fails naming the stack after --lock-timeout; the state stays whole", async () => {
    writeIn(host(1), 2, 5);
    // The first run is frozen (SIGSTOP, with its CLI) while it holds the lock:
    // the second waits, then gives up after its --lock-timeout, naming the stack.
    let pid = 0;
    const first = agent(host(1), ["--once"], (spawned) => (pid = spawned));
    await lockHeld(stackOf(host(1)));
    process.kill(-pid, "SIGSTOP");
    let second: RunResult;
    try {
      second = await host(1).runAsync("node", [PULUMI_EBPF_BIN, "agent", "--project", project, "--stack", stackOf(host(1)), "--host", "h1",
        "--once", "--lock-timeout", "3"], { env, timeoutMs: 120_000 });
    } finally {
      process.kill(-pid, "SIGCONT");
    }
    assert.equal(second.code, 1, second.output);
    assert.match(second.stderr, /waiting up to 3 s/);
    assert.match(second.stderr, new RegExp(`stack ${stackOf(host(1))} is locked by another update and stayed locked for 3 s`));
    const firstResult = await first;
    assert.equal(firstResult.code, 0, firstResult.output);
    assert.deepEqual(dumpIn(host(1)), declaredFor(host(1)));

    // Both at once, neither frozen: both converge (whichever comes second waits for the lock).
    writeIn(host(1), 2, 6);
    const both = await Promise.all([agent(host(1), ["--once"]), agent(host(1), ["--once"])]);
    for (const result of both) assert.equal(result.code, 0, result.output);
    assert.deepEqual(dumpIn(host(1)), declaredFor(host(1)));
    const check = await agent(host(1), ["--check"]);
    assert.equal(check.code, 0, check.output);
  });

  it("a host whose project copy lost its Pulumi.<stack>.yaml (a new container) still selects its stack and converges", async () => {
    fs.rmSync(path.join(project, `Pulumi.${stackOf(host(3))}.yaml`));
    writeIn(host(3), 4, 1);
    const next = await agent(host(3), ["--once"]);
    assert.equal(next.code, 0, next.output);
    assert.deepEqual(dumpIn(host(3)), declaredFor(host(3)));
  });

  it("the backend stopped mid-run gives a clear error naming the stack, and the next run converges once it is back", async () => {
    writeIn(host(1), 1, 4242);
    const running = agent(host(1), ["--once"]);
    await lockHeld(stackOf(host(1)));
    postgres!.stop();
    let failed: RunResult;
    try {
      failed = await running;
    } finally {
      postgres!.start();
    }
    assert.equal(failed.code, 1, failed.output);
    assert.match(failed.stderr, new RegExp(`stack ${stackOf(host(1))}`));
    assert.match(failed.stderr, /connect|connection|refused|postgres/i);
    assert.equal(readStatus(host(1)).result, "error");
    const next = await agent(host(1), ["--once"]);
    assert.equal(next.code, 0, next.output);
    assert.deepEqual(dumpIn(host(1)), declaredFor(host(1)));
    console.log(`    backend lost: the run failed after ${failed.ms} ms; the next run converged in ${next.ms} ms`);
  });
});
