// Where the agent finds the Pulumi CLI: on PATH, else the toolchain cache that
// scripts/pulumi-toolchain.sh builds.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as auto from "@pulumi/pulumi/automation";

/** The Pulumi version the cached toolchain holds. */
export const PULUMI_VERSION = "3.248.0";

/** The cached toolchain's bin directory (`${PULUMI_EBPF_CACHE:-$HOME/.cache/pulumi-ebpf}/pulumi-v3.248.0/bin`). */
export function cachedToolchainBin(): string {
  const cache = process.env.PULUMI_EBPF_CACHE || path.join(os.homedir(), ".cache", "pulumi-ebpf");
  return path.join(cache, `pulumi-v${PULUMI_VERSION}`, "bin");
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The directory holding the `pulumi` found first on PATH, or undefined. */
function pulumiOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir !== "" && executable(path.join(dir, "pulumi"))) return path.resolve(dir);
  }
  return undefined;
}

/** The Pulumi CLI to drive and the PATH its language host and plugins are found on. */
export interface Toolchain {
  command: auto.PulumiCommand;
  /** The PATH for the CLI: its own directory first (the language host and our dynamic provider plugin live beside it). */
  path: string;
}

/**
 * The Pulumi CLI on PATH, else the cached toolchain. Throws naming both places
 * when neither has one.
 */
export async function findToolchain(): Promise<Toolchain> {
  const bin = pulumiOnPath() ?? (executable(path.join(cachedToolchainBin(), "pulumi")) ? cachedToolchainBin() : undefined);
  if (bin === undefined) {
    throw new Error(`no Pulumi CLI: none on PATH and none in ${cachedToolchainBin()} (install Pulumi v${PULUMI_VERSION} or run scripts/pulumi-toolchain.sh)`);
  }
  // PulumiCommand runs <root>/bin/pulumi; the version is ours to pin, not the SDK's to refuse.
  const command = await auto.PulumiCommand.get({ root: path.dirname(bin), skipVersionCheck: true });
  return { command, path: [bin, process.env.PATH ?? ""].join(path.delimiter) };
}
