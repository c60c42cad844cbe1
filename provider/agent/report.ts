// What every agent run leaves behind for people and monitoring: a status JSON
// file and, when asked, Prometheus text-format metrics for node_exporter's
// textfile collector. Both are written to a temporary file and renamed, so a
// reader never sees half a file.
import * as fs from "node:fs";
import * as path from "node:path";

import type { AgentMode } from "./options";

/** The drift refresh found on one map: the keys (as declared) added, changed and removed behind the program's back. */
export interface MapDrift {
  /** The resource's pin path (its ID). */
  map: string;
  added: unknown[];
  changed: unknown[];
  removed: unknown[];
}

/** How a run ended: converged (once/loop), clean or drift (check), or error. */
export type RunResult = "converged" | "clean" | "drift" | "error";

/** The status file's content. */
export interface RunStatus {
  host: string;
  stack: string;
  /** When the run ended (ISO 8601). */
  time: string;
  mode: AgentMode;
  result: RunResult;
  durationMs: number;
  /** PinnedMaps in the stack after the run. */
  maps?: number;
  /** Maps whose live contents differ from the declaration, with the keys (check; once repairs in the same run, see `changes`). */
  drift: MapDrift[];
  /** Resources the run changed (once) or would change (check), by operation. */
  changes?: Record<string, number>;
  error?: string;
}

function writeAtomically(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, text);
  fs.renameSync(temporary, file);
}

/** Writes the status JSON file. Throws when it cannot be written. */
export function writeStatusFile(file: string, status: RunStatus): void {
  writeAtomically(file, `${JSON.stringify(status, null, 2)}\n`);
}

const quote = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** The run as Prometheus text-format metrics, labelled by host and stack. */
export function metricsText(status: RunStatus): string {
  const labels = `host="${quote(status.host)}",stack="${quote(status.stack)}"`;
  const driftKeys = status.drift.reduce((sum, map) => sum + map.added.length + map.changed.length + map.removed.length, 0);
  const lines = [
    "# HELP pulumi_ebpf_agent_last_run_timestamp_seconds When the last agent run ended.",
    "# TYPE pulumi_ebpf_agent_last_run_timestamp_seconds gauge",
    `pulumi_ebpf_agent_last_run_timestamp_seconds{${labels}} ${Math.floor(Date.parse(status.time) / 1000)}`,
    "# HELP pulumi_ebpf_agent_last_run_duration_seconds How long the last agent run took.",
    "# TYPE pulumi_ebpf_agent_last_run_duration_seconds gauge",
    `pulumi_ebpf_agent_last_run_duration_seconds{${labels}} ${status.durationMs / 1000}`,
    "# HELP pulumi_ebpf_agent_last_run_success Whether the last agent run ended without an error (1) or not (0).",
    "# TYPE pulumi_ebpf_agent_last_run_success gauge",
    `pulumi_ebpf_agent_last_run_success{${labels},mode="${status.mode}"} ${status.result === "error" ? 0 : 1}`,
    "# HELP pulumi_ebpf_agent_drifted_maps Maps whose contents differed from the declaration in the last run.",
    "# TYPE pulumi_ebpf_agent_drifted_maps gauge",
    `pulumi_ebpf_agent_drifted_maps{${labels}} ${status.drift.length}`,
    "# HELP pulumi_ebpf_agent_drifted_keys Keys added, changed or removed behind the declaration, found in the last run.",
    "# TYPE pulumi_ebpf_agent_drifted_keys gauge",
    `pulumi_ebpf_agent_drifted_keys{${labels}} ${driftKeys}`,
  ];
  if (status.maps !== undefined) {
    lines.push("# HELP pulumi_ebpf_agent_maps PinnedMaps in the stack.", "# TYPE pulumi_ebpf_agent_maps gauge",
      `pulumi_ebpf_agent_maps{${labels}} ${status.maps}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Writes the metrics file. Throws when it cannot be written. */
export function writeMetricsFile(file: string, status: RunStatus): void {
  writeAtomically(file, metricsText(status));
}
