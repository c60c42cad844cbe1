// `pulumi-ebpf install-plugin`: installs the provider plugin where the Pulumi
// CLI finds it (its plugin cache, `pulumi plugin ls`), so YAML and Python
// projects need no `plugins:` entry. The installed plugin is a two-line
// launcher of this package's bin/pulumi-resource-ebpf with this Node.js, so
// it runs the installed package (and its native addon) in place.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { PACKAGE_ROOT, pluginVersion } from "./main";

const INSTALL_USAGE = `usage: pulumi-ebpf install-plugin [--pulumi PATH]
  installs pulumi-resource-ebpf (ebpf:index:PinnedMap) into the Pulumi CLI's plugin cache
  (\`pulumi plugin install resource ebpf VERSION --file …\`; PULUMI_HOME is honoured)
  --pulumi PATH   the pulumi CLI to install with (default: pulumi on PATH)`;

/** Single-quoted for sh. */
const shellQuoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * Runs `pulumi-ebpf install-plugin <args>`; resolves to the exit code (2 for
 * bad usage, 1 when tar or the CLI fails, with their output on stderr).
 */
export async function installPlugin(args: string[]): Promise<number> {
  if (args.includes("--help")) return (process.stdout.write(`${INSTALL_USAGE}\n`), 0);
  let pulumi = "pulumi";
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--pulumi" && args[i + 1] !== undefined) pulumi = args[++i]!;
    else return (process.stderr.write(`pulumi-ebpf: install-plugin: unknown argument ${JSON.stringify(args[i])}\n${INSTALL_USAGE}\n`), 2);
  }
  const version = pluginVersion();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-plugin-"));
  try {
    const launcher = path.join(work, "pulumi-resource-ebpf");
    fs.writeFileSync(launcher,
      `#!/bin/sh\n# pulumi-ebpf ${version}'s provider plugin, installed by \`pulumi-ebpf install-plugin\`.\n` +
      `exec ${shellQuoted(process.execPath)} ${shellQuoted(path.join(PACKAGE_ROOT, "bin", "pulumi-resource-ebpf"))} "$@"\n`, { mode: 0o755 });
    const tarball = path.join(work, `pulumi-resource-ebpf-v${version}.tar.gz`);
    for (const [command, commandArgs] of [
      ["tar", ["-czf", tarball, "-C", work, "pulumi-resource-ebpf"]],
      [pulumi, ["plugin", "install", "resource", "ebpf", version, "--file", tarball, "--reinstall"]],
    ] as const) {
      const result = spawnSync(command, commandArgs, { encoding: "utf8" });
      if (result.status !== 0) {
        process.stderr.write(`pulumi-ebpf: install-plugin: ${command} ${commandArgs.join(" ")} failed (${result.error?.message ?? `exit ${result.status}`})\n${result.stdout ?? ""}${result.stderr ?? ""}`);
        return 1;
      }
    }
    process.stdout.write(`installed the resource plugin ebpf ${version} (ebpf:index:PinnedMap), running ${PACKAGE_ROOT}\n`);
    return 0;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
