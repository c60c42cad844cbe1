// The fleet deployment files in deploy/, checked without a cluster or a
// Docker engine (neither exists where the tests run):
//  - the Kubernetes manifests are decoded strictly into the typed objects of
//    k8s.io/api (a small Go program of ours, tests/fixtures/k8svalidate,
//    built once into the toolchain cache): an unknown or misplaced field
//    fails, which a deliberately broken copy proves; then the decoded
//    DaemonSet is held to what docs/fleet.md promises (bpffs hostPath and
//    propagation, node name as --host, backend from the Secret, rollout);
//  - the systemd units pass `systemd-analyze verify` (in a scratch root that
//    has the unit directories of this machine and a stand-in for the agent
//    executable), with no warning at all; a broken copy does warn;
//  - the Dockerfile's instructions parse (a structural check of ours: known
//    instructions, continuation lines, exec-form JSON, stage references, and
//    every file it copies exists in the repository).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { REPO_ROOT, run, runOk } from "./fixtures/pulumi";
import { buildGoFixture } from "./fixtures/gobuild";

const DEPLOY = path.join(REPO_ROOT, "deploy");

/** One strictly decoded manifest document, as k8svalidate prints it. */
interface Decoded {
  file: string;
  kind: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  object: any;
}

/**
 * Builds tests/fixtures/k8svalidate (k8s.io/api + sigs.k8s.io/yaml, from the
 * Go module proxy) once into the toolchain cache, keyed by its sources, and
 * returns the binary's path. Throws when go fails.
 */
function buildK8sValidate(): string {
  return buildGoFixture("k8svalidate");
}

function decode(checker: string, files: string[]): Decoded[] {
  const r = runOk(checker, files);
  return r.stdout.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line) as Decoded);
}

/** One Dockerfile instruction: its keyword (upper case), its arguments, its first line. */
interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

const DOCKERFILE_INSTRUCTIONS = new Set([
  "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
  "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
]);

/**
 * Parses a Dockerfile into instructions the way the reference parser splits
 * them (comment lines dropped, `\` continues a line, parser directives only
 * at the top) and checks its structure: every keyword is an instruction,
 * only ARG comes before the first FROM, exec forms are JSON arrays of
 * strings, `COPY --from=` names an earlier stage. Throws naming the line.
 */
function parseDockerfile(text: string): Instruction[] {
  const lines = text.split("\n");
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index]!;
    const trimmed = raw.trim();
    if (trimmed.startsWith("#") || (trimmed === "" && !pending)) continue;
    const continues = /\\\s*$/.test(raw);
    const piece = continues ? raw.replace(/\\\s*$/, "") : raw;
    if (pending) pending.text += ` ${piece.trim()}`;
    else pending = { text: piece.trim(), line: index + 1 };
    if (continues) continue;
    const match = /^(\S+)\s*(.*)$/.exec(pending.text)!;
    instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: pending.line });
    pending = undefined;
  }
  if (pending) throw new Error(`Dockerfile line ${pending.line}: the last instruction ends in a line continuation`);
  const stages: string[] = [];
  let seenFrom = false;
  for (const { keyword, args, line } of instructions) {
    if (!DOCKERFILE_INSTRUCTIONS.has(keyword)) throw new Error(`Dockerfile line ${line}: unknown instruction ${keyword}`);
    if (!seenFrom && keyword !== "ARG" && keyword !== "FROM") throw new Error(`Dockerfile line ${line}: ${keyword} before the first FROM`);
    if (args === "") throw new Error(`Dockerfile line ${line}: ${keyword} has no arguments`);
    if (keyword === "FROM") {
      seenFrom = true;
      const as = /\s+AS\s+(\S+)$/i.exec(args);
      if (as) stages.push(as[1]!);
    }
    if ((keyword === "ENTRYPOINT" || keyword === "CMD") && args.startsWith("[")) {
      const parsed: unknown = JSON.parse(args);
      if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === "string")) throw new Error(`Dockerfile line ${line}: ${keyword} exec form must be a JSON array of strings`);
    }
    const from = /--from=(\S+)/.exec(args);
    if (keyword === "COPY" && from && !stages.includes(from[1]!)) throw new Error(`Dockerfile line ${line}: COPY --from=${from[1]} names no earlier stage`);
  }
  if (!seenFrom) throw new Error("Dockerfile: no FROM");
  return instructions;
}

describe("deploy/ (fleet deployment files)", function () {
  let tmp: string;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-deploy-"));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe("Kubernetes manifests, strictly decoded with k8s.io/api", function () {
    let checker: string;
    let decoded: Decoded[];
    before(function () {
      this.timeout(600_000);
      checker = buildK8sValidate();
      decoded = decode(checker, ["namespace.yaml", "secret.example.yaml", "daemonset.yaml"].map((f) => path.join(DEPLOY, f)));
    });

    it("decodes the Namespace, the Secret, the ServiceAccount and the DaemonSet with no unknown field", function () {
      assert.deepEqual(decoded.map((d) => d.kind), ["Namespace", "Secret", "ServiceAccount", "DaemonSet"]);
      for (const d of decoded.slice(1)) assert.equal(d.object.metadata.namespace, "pulumi-ebpf", `${d.kind} lives in the namespace`);
    });

    it("refuses a copy with an unknown field, a misplaced field and a misspelled one, naming the field", function () {
      const original = fs.readFileSync(path.join(DEPLOY, "daemonset.yaml"), "utf8");
      const cases: [string, string, RegExp][] = [
        // A misspelling the API server's default (non-strict) decoding drops silently.
        ["mountPropagaton", original.replace("mountPropagation: HostToContainer", "mountPropagaton: HostToContainer"), /unknown field "spec\.template\.spec\.containers\[0\]\.volumeMounts\[0\]\.mountPropagaton"/],
        // A pod-level field placed in the container.
        ["hostNetwork in a container", original.replace("          imagePullPolicy: IfNotPresent", "          imagePullPolicy: IfNotPresent\n          hostNetwork: true"), /unknown field "spec\.template\.spec\.containers\[0\]\.hostNetwork"/],
        // A wrong type.
        ["maxUnavailable as a list", original.replace("maxUnavailable: 1", "maxUnavailable: [1]"), /maxUnavailable/],
      ];
      for (const [name, text, expected] of cases) {
        assert.notEqual(text, original, `${name}: the edit applied`);
        const broken = path.join(tmp, "broken-daemonset.yaml");
        fs.writeFileSync(broken, text);
        const r = run(checker, [broken]);
        assert.equal(r.code, 1, `${name}: must not decode\n${r.output}`);
        assert.match(r.stderr, expected, name);
      }
      const secret = fs.readFileSync(path.join(DEPLOY, "secret.example.yaml"), "utf8");
      const brokenSecret = path.join(tmp, "broken-secret.yaml");
      fs.writeFileSync(brokenSecret, secret.replace("stringData:", "stringdata:"));
      const r = run(checker, [brokenSecret]);
      assert.equal(r.code, 1, r.output);
      assert.match(r.stderr, /unknown field "stringdata"/);
    });

    it("refuses a DaemonSet whose selector does not select its pods", function () {
      const original = fs.readFileSync(path.join(DEPLOY, "daemonset.yaml"), "utf8");
      const broken = path.join(tmp, "unselected.yaml");
      fs.writeFileSync(broken, original.replace(/(    metadata:\n      labels:\n        app\.kubernetes\.io\/name: )pulumi-ebpf-agent/, "$1other"));
      const r = run(checker, [broken]);
      assert.equal(r.code, 1, r.output);
      assert.match(r.stderr, /selector does not match/);
    });

    it("DaemonSet: the host's bpffs (hostPath Directory, HostToContainer), capabilities not privileged, node name as --host", function () {
      const ds = decoded.find((d) => d.kind === "DaemonSet")!.object;
      const pod = ds.spec.template.spec;
      const container = pod.containers[0];
      const bpffs = pod.volumes.find((v: { name: string }) => v.name === "bpffs");
      assert.deepEqual(bpffs.hostPath, { path: "/sys/fs/bpf", type: "Directory" });
      const mount = container.volumeMounts.find((m: { name: string }) => m.name === "bpffs");
      assert.equal(mount.mountPath, "/sys/fs/bpf");
      // Bidirectional is only allowed in privileged containers; the agent mounts nothing.
      assert.equal(mount.mountPropagation, "HostToContainer");
      assert.equal(container.securityContext.privileged, false);
      assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
      for (const cap of ["BPF", "SYS_ADMIN", "NET_ADMIN"]) assert.ok(container.securityContext.capabilities.add.includes(cap), cap);
      const args: string[] = container.args;
      assert.equal(args[args.indexOf("--host") + 1], "$(NODE_NAME)");
      const nodeName = container.env.find((e: { name: string }) => e.name === "NODE_NAME");
      assert.equal(nodeName.valueFrom.fieldRef.fieldPath, "spec.nodeName");
      assert.ok(container.resources.requests.cpu && container.resources.limits.memory, "requests and limits");
    });

    it("DaemonSet: backend and passphrase from the Secret's keys, rollout one node at a time gated on readiness", function () {
      const ds = decoded.find((d) => d.kind === "DaemonSet")!.object;
      const secret = decoded.find((d) => d.kind === "Secret")!.object;
      const container = ds.spec.template.spec.containers[0];
      for (const name of ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"]) {
        const env = container.env.find((e: { name: string }) => e.name === name);
        assert.equal(env.valueFrom.secretKeyRef.name, secret.metadata.name, name);
        assert.ok(Object.hasOwn(secret.stringData, env.valueFrom.secretKeyRef.key), `${name}: the Secret has key ${env.valueFrom.secretKeyRef.key}`);
      }
      assert.match(secret.stringData.PULUMI_CONFIG_PASSPHRASE, /CHANGE-ME/, "the example carries no real secret");
      assert.equal(ds.spec.updateStrategy.type, "RollingUpdate");
      assert.equal(ds.spec.updateStrategy.rollingUpdate.maxUnavailable, 1);
      for (const [name, mode] of [["readinessProbe", "ready"], ["startupProbe", "started"], ["livenessProbe", "live"]] as const) {
        const command: string[] = container[name].exec.command;
        assert.deepEqual(command.slice(0, 4), ["node", "/usr/local/lib/pulumi-ebpf/probe.js", mode, "/var/lib/pulumi-ebpf/status.json"], name);
      }
      // The image puts the probe script where the probes run it.
      assert.match(fs.readFileSync(path.join(DEPLOY, "Dockerfile"), "utf8"), /^COPY deploy\/probe\.js \/usr\/local\/lib\/pulumi-ebpf\/probe\.js$/m);
      const args: string[] = container.args;
      assert.equal(args[args.indexOf("--status-file") + 1], "/var/lib/pulumi-ebpf/status.json");
    });
  });

  describe("systemd units", function () {
    it("pass systemd-analyze verify with no warning; a broken copy warns", function () {
      this.timeout(60_000);
      const which = run("sh", ["-c", "command -v systemd-analyze"]);
      assert.equal(which.code, 0, "systemd-analyze is required for this test (Debian package systemd)");
      const unitsDir = path.join(DEPLOY, "systemd");
      const units = fs.readdirSync(unitsDir).filter((f) => /\.(service|timer)$/.test(f)).sort();
      assert.deepEqual(units, ["pulumi-ebpf-agent.service", "pulumi-ebpf-agent.timer"]);
      // A scratch root: this machine's unit directory (for the targets the
      // units order against), the units, and a stand-in for the executable
      // (verify checks that ExecStart's command exists and is executable).
      const root = path.join(tmp, "root");
      const service = fs.readFileSync(path.join(unitsDir, "pulumi-ebpf-agent.service"), "utf8");
      const execStart = /^ExecStart=(\S+)/m.exec(service)![1]!;
      fs.mkdirSync(path.join(root, "usr", "lib", "systemd"), { recursive: true });
      fs.cpSync("/lib/systemd/system", path.join(root, "usr", "lib", "systemd", "system"), { recursive: true });
      fs.mkdirSync(path.join(root, path.dirname(execStart)), { recursive: true });
      fs.writeFileSync(path.join(root, execStart), "#!/bin/sh\n", { mode: 0o755 });
      const etc = path.join(root, "etc", "systemd", "system");
      fs.mkdirSync(etc, { recursive: true });
      const verify = () => run("systemd-analyze", ["verify", "--man=no", `--root=${root}`, ...units]);
      for (const unit of units) fs.copyFileSync(path.join(unitsDir, unit), path.join(etc, unit));
      const clean = verify();
      assert.equal(clean.code, 0, clean.output);
      assert.equal(clean.output.trim(), "", `no warnings:\n${clean.output}`);

      // The same units with a misspelled key and a bad system call name: verify names both.
      fs.writeFileSync(path.join(etc, "pulumi-ebpf-agent.timer"), fs.readFileSync(path.join(unitsDir, "pulumi-ebpf-agent.timer"), "utf8").replace("OnUnitInactiveSec=", "OnUnitInactivSec="));
      fs.writeFileSync(path.join(etc, "pulumi-ebpf-agent.service"), service.replace("@system-service bpf", "@system-service bpff"));
      const broken = verify();
      assert.match(broken.output, /Unknown key 'OnUnitInactivSec'/);
      assert.match(broken.output, /bpff/);
    });

    it("run the agent once per tick with this host's name, with bpf capabilities and a writable bpffs only", function () {
      const service = fs.readFileSync(path.join(DEPLOY, "systemd", "pulumi-ebpf-agent.service"), "utf8");
      const execStart = service.match(/^ExecStart=((?:.*\\\n)*.*)$/m)![1]!.replace(/\s*\\\n\s*/g, " ");
      assert.match(execStart, /pulumi-ebpf agent --project \S+ --once --host %H /);
      assert.match(service, /^Type=oneshot$/m);
      assert.match(service, /^CapabilityBoundingSet=.*CAP_BPF.*CAP_SYS_ADMIN/m);
      assert.match(service, /^ProtectSystem=strict$/m);
      assert.match(service, /^ReadWritePaths=\/sys\/fs\/bpf /m);
      assert.match(service, /^SystemCallFilter=@system-service bpf$/m);
    });
  });

  describe("probe.js (the DaemonSet's probes over the agent's status file)", function () {
    const probe = (...args: string[]) => run(process.execPath, [path.join(DEPLOY, "probe.js"), ...args]);
    const write = (name: string, status: object, mtime?: Date) => {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, JSON.stringify(status));
      if (mtime) fs.utimesSync(file, mtime, mtime);
      return file;
    };
    // PID 1 of this machine started at boot; a file written now is newer, one dated 2000-01-01 older.
    const longAgo = new Date("2000-01-01T00:00:00Z");

    it("ready: only a converged (or clean) run that ended after PID 1 started", function () {
      assert.equal(probe("ready", write("ok.json", { result: "converged" })).code, 0);
      assert.equal(probe("ready", write("clean.json", { result: "clean" })).code, 0);
      const failed = probe("ready", write("error.json", { result: "error", error: "stack host-a: backend unreachable" }));
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, /result is error: stack host-a: backend unreachable/);
      const previousPod = probe("ready", write("old.json", { result: "converged" }, longAgo));
      assert.equal(previousPod.code, 1, "a status older than PID 1 is a previous container's");
      assert.match(previousPod.stderr, /no run of this container/);
      assert.equal(probe("ready", path.join(tmp, "missing.json")).code, 1);
    });

    it("started: any result after PID 1 started; live: a run ended within the bound", function () {
      assert.equal(probe("started", write("error2.json", { result: "error" })).code, 0);
      assert.equal(probe("started", write("old2.json", { result: "converged" }, longAgo)).code, 1);
      assert.equal(probe("live", write("fresh.json", { result: "error" }), "600").code, 0, "a failed run is still a live agent");
      const stale = probe("live", write("stale.json", { result: "converged" }, new Date(Date.now() - 700_000)), "600");
      assert.equal(stale.code, 1);
      assert.match(stale.stderr, /ended 70\d s ago/);
      assert.equal(probe("bogus", "x").code, 2);
    });
  });

  describe("Dockerfile", function () {
    const dockerfile = () => fs.readFileSync(path.join(DEPLOY, "Dockerfile"), "utf8");

    it("parses: known instructions, exec forms, stage references; a broken copy does not", function () {
      const instructions = parseDockerfile(dockerfile());
      assert.ok(instructions.length > 10);
      assert.throws(() => parseDockerfile(dockerfile().replace("WORKDIR /project", "WORKDIRR /project")), /unknown instruction WORKDIRR/);
      assert.throws(() => parseDockerfile(dockerfile().replace("--from=pulumi-cli", "--from=pulumi")), /COPY --from=pulumi names no earlier stage/);
      assert.throws(() => parseDockerfile(dockerfile().replace('CMD ["--project"', 'CMD ["--project",')), /JSON/);
    });

    it("builds the CLI with the repository's toolchain script, runs Node 20 and `pulumi-ebpf agent --project /project --interval 60`", function () {
      const instructions = parseDockerfile(dockerfile());
      const args = new Map(instructions.filter((i) => i.keyword === "ARG").map((i) => i.args.split("=") as [string, string]));
      const from = instructions.filter((i) => i.keyword === "FROM").map((i) => i.args.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? ""));
      assert.equal(from.length, 2);
      assert.match(from[0]!, /^golang:1\.2[5-9]/, "pulumi/pkg v3.248.0 needs Go 1.25");
      assert.match(from[1]!, /^node:20\b/);
      const run = instructions.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
      assert.match(run, /bash \/src\/scripts\/pulumi-toolchain\.sh/);
      assert.match(fs.readFileSync(path.join(REPO_ROOT, "scripts", "pulumi-toolchain.sh"), "utf8"), /^PULUMI_VERSION=v3\.248\.0$/m);
      assert.match(run, /npm install --omit=dev --ignore-scripts .*\/tmp\/pulumi-ebpf\.tgz/);
      const entrypoint = JSON.parse(instructions.find((i) => i.keyword === "ENTRYPOINT")!.args) as string[];
      const cmd = JSON.parse(instructions.find((i) => i.keyword === "CMD")!.args) as string[];
      // tini as PID 1 (reaps orphaned plugin processes, forwards SIGTERM), then the agent.
      assert.deepEqual(entrypoint.slice(0, 2), ["/usr/bin/tini", "--"]);
      assert.equal([...entrypoint.slice(2), ...cmd].join(" "), "pulumi-ebpf agent --project /project --interval 60");
      // The tarball name is what `npm pack` of this package writes.
      const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { name: string; version: string };
      assert.equal(args.get("PACKAGE"), `${pkg.name}-${pkg.version}.tgz`);
      // Every local source it copies exists in the repository (the build context).
      for (const copy of instructions.filter((i) => i.keyword === "COPY" && !i.args.includes("--from="))) {
        const source = copy.args.split(/\s+/)[0]!.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? "");
        if (source.endsWith(".tgz")) continue; // written by `npm pack` before the build
        assert.ok(fs.existsSync(path.join(REPO_ROOT, source)), `COPY source ${source} exists`);
      }
    });
  });
});
