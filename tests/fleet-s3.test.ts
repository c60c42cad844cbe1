// One simulated host (tests/fixtures/fleet.ts) reconciled by `pulumi-ebpf
// agent` against a Pulumi DIY backend in S3, served locally by moto
// (tests/fixtures/moto.ts): the agent and `fleet status` work over the S3
// backend as they do over PostgreSQL (tests/fleet.test.ts).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { copyFleetProject, machineBpffsMounts, makeFleet, PULUMI_EBPF_BIN, type SimulatedFleet } from "./fixtures/fleet";
import { startPrivateS3, type PrivateS3 } from "./fixtures/moto";
import { pulumiEnv, runAsync } from "./fixtures/pulumi";

const PREFIX = "fleet-s3";
const PIN = "/sys/fs/bpf/pulumi-ebpf-fleet/limits";

interface FleetStatusJson {
  hosts: { host: string; stack: string; lastKind?: string; lastResult?: string; maps: number; problems: string[] }[];
  exitCode: number;
}

describe("fleet: an agent over an S3 backend (moto)", function () {
  this.timeout(180_000);
  let s3: PrivateS3 | undefined;
  let fleet: SimulatedFleet | undefined;
  let project = "";
  let scratch = "";
  let env: NodeJS.ProcessEnv = {};
  const mountsBefore = machineBpffsMounts();

  before(async function () {
    this.timeout(90_000);
    s3 = await startPrivateS3();
    fleet = makeFleet(1);
    project = copyFleetProject();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-fleet-s3-"));
    env = { ...process.env, ...pulumiEnv(scratch), ...s3.env, PULUMI_BACKEND_URL: s3.backendUrl };
    delete env.PULUMI_ACCESS_TOKEN;
    delete env.AWS_PROFILE;
    delete env.AWS_SESSION_TOKEN;
  });

  after(async function () {
    this.timeout(60_000);
    const problems = fleet?.cleanup() ?? [];
    await s3?.stop();
    if (project) fs.rmSync(project, { recursive: true, force: true });
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    if (problems.length > 0) console.warn(`fleet-s3 cleanup: ${problems.join("; ")}`);
  });

  it("agent --once converges h1 (map checked with bpftool in its namespace), agent --check exits 0, and fleet status lists it clean", async () => {
    const host = fleet!.hosts[0]!;
    const stack = `${PREFIX}-${host.name}`;
    const agent = (mode: string) => host.runAsync("node", [PULUMI_EBPF_BIN, "agent", "--project", project, "--stack", stack,
      "--host", host.name, "--lock-timeout", "60", mode], { env, timeoutMs: 120_000 });

    const once = await agent("--once");
    assert.equal(once.code, 0, once.output);
    // The fleet project declares for h1: keys 1..2, key k → 1000 + k.
    const dump = host.run("bpftool", ["-j", "map", "dump", "pinned", PIN]);
    assert.equal(dump.code, 0, `bpftool on ${host.name}: ${dump.output}`);
    const entries: Record<number, number> = {};
    for (const entry of JSON.parse(dump.stdout) as { key: string[]; value: string[] }[]) {
      const bytes = (hex: string[]) => Buffer.from(hex.map((b) => parseInt(b, 16)));
      entries[bytes(entry.key).readUInt32LE(0)] = bytes(entry.value).readUInt32LE(0);
    }
    assert.deepEqual(entries, { 1: 1001, 2: 1002 });
    const status = JSON.parse(fs.readFileSync(path.join(project, ".pulumi-ebpf", `status-${stack}.json`), "utf8")) as { result: string; maps?: number };
    assert.equal(status.result, "converged");
    assert.equal(status.maps, 1);
    assert.deepEqual(machineBpffsMounts(), mountsBefore);
    assert.equal(fs.existsSync(path.dirname(PIN)), false, "a pin landed in the machine's /sys/fs/bpf");

    const check = await agent("--check");
    assert.equal(check.code, 0, check.output);

    const fleetStatus = await runAsync("node", [PULUMI_EBPF_BIN, "fleet", "status", "--project", project, "--stack-prefix", PREFIX, "--json"],
      { env, timeoutMs: 60_000 });
    assert.equal(fleetStatus.code, 0, fleetStatus.output);
    const report = JSON.parse(fleetStatus.stdout) as FleetStatusJson;
    assert.equal(report.exitCode, 0);
    assert.deepEqual(report.hosts.map((row) => [row.host, row.stack, row.maps, row.problems]), [[host.name, stack, 1, []]]);
    console.log(`    over S3 (moto): agent --once ${once.ms} ms, --check ${check.ms} ms, fleet status ${fleetStatus.ms} ms`);
  });
});
