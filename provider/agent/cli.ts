// The `pulumi-ebpf` command (bin/pulumi-ebpf): `agent` and `fleet status`
// (`install-plugin` is routed by bin/pulumi-ebpf to provider/plugin/install.ts).
import { runAgent } from "./agent";
import { fleetStatus } from "./fleet";
import { AGENT_USAGE, FLEET_USAGE, parseAgentOptions, parseFleetStatusOptions, UsageError } from "./options";

const USAGE = `usage: pulumi-ebpf agent --project DIR [...]    reconcile this host's stack (--help for options)
       pulumi-ebpf fleet status --project DIR [...]  every host's last run, result and drift
       pulumi-ebpf install-plugin [--pulumi PATH]    install the provider plugin where the Pulumi CLI finds it`;

/** Runs the command line `args` (without node and the script); resolves to the exit code (2 for bad usage). Never throws. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === "agent") {
      if (rest.includes("--help")) return (process.stdout.write(`${AGENT_USAGE}\n`), 0);
      return await runAgent(parseAgentOptions(rest));
    }
    if (command === "fleet" && rest[0] === "status") {
      if (rest.includes("--help")) return (process.stdout.write(`${FLEET_USAGE}\n`), 0);
      return await fleetStatus(parseFleetStatusOptions(rest.slice(1)));
    }
    if (command === "--help" || command === "help") return (process.stdout.write(`${USAGE}\n`), 0);
    throw new UsageError(command === undefined ? "no command" : `unknown command ${JSON.stringify([command, ...rest.slice(0, 1)].join(" "))}`);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pulumi-ebpf: ${error.message}\n${USAGE}\n`);
    return 2;
  }
}
