// `pulumi-ebpf fleet status`: one row per host stack (`<prefix>-<host>`) of
// the project in the shared backend: its last run, its result, its maps and
// the drift the last refresh recorded.
import * as auto from "@pulumi/pulumi/automation";

import type { FleetStatusOptions } from "./options";
import { briefError } from "./reconcile";
import { pinnedMapsOf } from "./stackstate";
import { findToolchain } from "./toolchain";
import type { MapDrift } from "./report";

/** One host's row. */
export interface HostRow {
  host: string;
  stack: string;
  /** The last recorded operation: update (agent --once / loop) or refresh (agent --check). */
  lastKind?: string;
  lastResult?: string;
  /** When the last operation ended (ISO 8601). */
  lastRun?: string;
  maps: number;
  drift: MapDrift[];
  /** Whether a run holds the stack now. */
  inProgress: boolean;
  /** Why this row is not clean: failed, stale, drift; empty when clean. */
  problems: string[];
}

/** Exit codes: 0 all clean, 7 any drift, 1 any failed or stale (takes precedence). */
const EXIT = { ok: 0, error: 1, drift: 7 } as const;

/** Reads one stack's row. Throws CLI errors. */
async function rowOf(workspace: auto.LocalWorkspace, name: string, prefix: string, summary: auto.StackSummary, staleSeconds?: number): Promise<HostRow> {
  const stack = await auto.Stack.select(name, workspace);
  const [last] = await stack.history(1);
  const { maps, drift } = pinnedMapsOf(await stack.exportStack());
  const ended = last?.endTime ?? last?.startTime;
  const row: HostRow = {
    host: name.slice(prefix.length + 1), stack: name, lastKind: last?.kind, lastResult: last?.result,
    lastRun: ended ? new Date(ended).toISOString() : undefined, maps, drift, inProgress: summary.updateInProgress === true, problems: [],
  };
  if (!last) row.problems.push("never run");
  else if (last.result !== "succeeded" && last.result !== "in-progress") row.problems.push(`last ${last.kind} ${last.result}`);
  if (staleSeconds !== undefined && ended && Date.now() - new Date(ended).getTime() > staleSeconds * 1000) row.problems.push(`stale (> ${staleSeconds} s)`);
  if (drift.length > 0) row.problems.push("drift");
  return row;
}

function table(rows: HostRow[]): string {
  const header = ["HOST", "STACK", "LAST RUN", "RESULT", "MAPS", "DRIFT", "STATE"];
  const cells = rows.map((row) => [
    row.host, row.stack, row.lastRun ?? "-", `${row.lastKind ?? "-"} ${row.lastResult ?? "-"}${row.inProgress ? " (running)" : ""}`, String(row.maps),
    row.drift.length === 0 ? "-" : row.drift.map((map) =>
      `${map.map} (+${map.added.length} ~${map.changed.length} -${map.removed.length})`).join(", "),
    row.problems.length === 0 ? "ok" : row.problems.join("; "),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((cell) => cell[column]!.length)));
  return [header, ...cells].map((cell) => cell.map((text, column) => text.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n");
}

/** Prints the fleet's status; resolves to the exit code. Never throws (a backend error is exit 1 with its message). */
export async function fleetStatus(options: FleetStatusOptions): Promise<number> {
  try {
    const toolchain = await findToolchain();
    const workspace = await auto.LocalWorkspace.create({ workDir: options.project, pulumiCommand: toolchain.command, envVars: { PATH: toolchain.path } });
    const prefix = `${options.stackPrefix}-`;
    const summaries = (await workspace.listStacks()).filter((summary) => summary.name.startsWith(prefix));
    const rows: HostRow[] = [];
    for (const summary of summaries.sort((a, b) => a.name.localeCompare(b.name))) {
      rows.push(await rowOf(workspace, summary.name, options.stackPrefix, summary, options.staleSeconds));
    }
    const failed = rows.some((row) => row.problems.some((problem) => problem !== "drift"));
    const drifted = rows.some((row) => row.drift.length > 0);
    const code = failed ? EXIT.error : drifted ? EXIT.drift : EXIT.ok;
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ prefix: options.stackPrefix, hosts: rows, exitCode: code }, null, 2)}\n`);
    } else {
      process.stdout.write(rows.length === 0 ? `no stacks named ${prefix}* in this backend\n` : `${table(rows)}\n`);
    }
    return code;
  } catch (error) {
    process.stderr.write(`pulumi-ebpf fleet status: ${briefError(error)}\n`);
    return EXIT.error;
  }
}
