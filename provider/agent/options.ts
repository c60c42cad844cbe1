// The command lines of `pulumi-ebpf agent` and `pulumi-ebpf fleet status`,
// parsed into typed options. Bad input is refused naming the flag and the rule.
import * as os from "node:os";
import * as path from "node:path";

/** A command line the agent or fleet status refuses; the CLI prints it and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What one agent run does: reconcile once, check for drift only, or reconcile in a loop. */
export type AgentMode = "once" | "check" | "loop";

/** The agent's options (see `pulumi-ebpf agent --help`). */
export interface AgentOptions {
  project: string;
  stack: string;
  host: string;
  mode: AgentMode;
  intervalSeconds: number;
  lockTimeoutSeconds: number;
  statusFile: string;
  metricsFile?: string;
  verbose: boolean;
}

/** `fleet status`'s options. */
export interface FleetStatusOptions {
  project: string;
  stackPrefix: string;
  staleSeconds?: number;
  json: boolean;
}

/** The agent's usage text. */
export const AGENT_USAGE = `usage: pulumi-ebpf agent --project DIR [--once | --check] [options]
  --project DIR          the Pulumi project (a program using pulumi-ebpf)
  --stack NAME           default <stack-prefix>-<host>
  --stack-prefix P       default host
  --host NAME            the host name given to the program as config ebpf:host (default: os.hostname())
  --once                 one reconcile (refresh + up): exit 0 converged, 1 error
  --check                drift only (refresh + preview): exit 0 clean, 7 drift, 1 error
  --interval SECONDS     loop mode: seconds between reconciles (default 60)
  --lock-timeout SECONDS how long to wait for another run of the stack (default 120)
  --status-file FILE     default <project>/.pulumi-ebpf/status-<stack>.json
  --metrics-file FILE    Prometheus text-format metrics (node_exporter textfile collector)
  --verbose              show the Pulumi CLI's output
The backend is PULUMI_BACKEND_URL (with PULUMI_CONFIG_PASSPHRASE).`;

/** `fleet status`'s usage text. */
export const FLEET_USAGE = `usage: pulumi-ebpf fleet status --project DIR [--stack-prefix P] [--stale SECONDS] [--json]
  exit 0 all clean, 7 any drift, 1 any failed run or (with --stale) any host whose last run is older`;

/** Splits `--flag value` and `--flag=value` pairs; `booleans` take no value. Throws UsageError for an unknown flag or a missing value. */
function parseFlags(args: string[], valued: Set<string>, booleans: Set<string>): Map<string, string> {
  const flags = new Map<string, string>();
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (booleans.has(name) && eq < 0) {
      flags.set(name, "true");
    } else if (valued.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++index];
      if (value === undefined || value === "") throw new UsageError(`${name} needs a value`);
      flags.set(name, value);
    } else {
      throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return flags;
}

/** A flag's value as a number of seconds (> 0). Throws UsageError naming the flag otherwise. */
function seconds(flags: Map<string, string>, name: string, fallback: number): number {
  const text = flags.get(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${name} must be a positive number of seconds, not ${JSON.stringify(text)}`);
  return value;
}

// Pulumi's rule for stack names (without an org/project prefix).
const STACK_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/** Parses the agent's arguments. Throws UsageError for bad input. */
export function parseAgentOptions(args: string[]): AgentOptions {
  const flags = parseFlags(args,
    new Set(["--project", "--stack", "--stack-prefix", "--host", "--interval", "--lock-timeout", "--status-file", "--metrics-file"]),
    new Set(["--once", "--check", "--verbose"]));
  const projectArg = flags.get("--project");
  if (projectArg === undefined) throw new UsageError("--project DIR is required");
  if (flags.has("--once") && flags.has("--check")) throw new UsageError("--once and --check exclude each other");
  const project = path.resolve(projectArg);
  const host = flags.get("--host") ?? os.hostname();
  const stack = flags.get("--stack") ?? `${flags.get("--stack-prefix") ?? "host"}-${host}`;
  if (!STACK_NAME.test(stack)) throw new UsageError(`stack name ${JSON.stringify(stack)} must be 1-100 of [A-Za-z0-9_.-] (set --stack or --host)`);
  return {
    project,
    stack,
    host,
    mode: flags.has("--once") ? "once" : flags.has("--check") ? "check" : "loop",
    intervalSeconds: seconds(flags, "--interval", 60),
    lockTimeoutSeconds: seconds(flags, "--lock-timeout", 120),
    statusFile: path.resolve(flags.get("--status-file") ?? path.join(project, ".pulumi-ebpf", `status-${stack}.json`)),
    metricsFile: flags.has("--metrics-file") ? path.resolve(flags.get("--metrics-file")!) : undefined,
    verbose: flags.has("--verbose"),
  };
}

/** Parses `fleet status`'s arguments (after `fleet status`). Throws UsageError for bad input. */
export function parseFleetStatusOptions(args: string[]): FleetStatusOptions {
  const flags = parseFlags(args, new Set(["--project", "--stack-prefix", "--stale"]), new Set(["--json"]));
  const projectArg = flags.get("--project");
  if (projectArg === undefined) throw new UsageError("--project DIR is required");
  return {
    project: path.resolve(projectArg),
    stackPrefix: flags.get("--stack-prefix") ?? "host",
    staleSeconds: flags.has("--stale") ? seconds(flags, "--stale", 0) : undefined,
    json: flags.has("--json"),
  };
}
