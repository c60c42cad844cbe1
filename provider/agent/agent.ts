// `pulumi-ebpf agent`: reconciles this host's stack once, checks it for
// drift, or reconciles it in a loop with bounded exponential backoff on errors
// until SIGTERM/SIGINT (taken between runs, never in the middle of one).
import type { AgentOptions } from "./options";
import { runOnce } from "./reconcile";
import { writeMetricsFile, writeStatusFile, type RunStatus } from "./report";
import { findToolchain } from "./toolchain";

/** The agent's exit codes: 0 converged/clean, 1 error, 7 drift (as `pulumi preview --expect-no-changes`). */
export const EXIT = { ok: 0, error: 1, drift: 7 } as const;

/** The longest pause after repeated errors in loop mode (unless --interval is longer). */
const MAX_BACKOFF_SECONDS = 600;

/** Writes the status and metrics files and a one-line summary; a file that cannot be written is reported, not fatal. */
function record(options: AgentOptions, status: RunStatus): void {
  try {
    writeStatusFile(options.statusFile, status);
    if (options.metricsFile) writeMetricsFile(options.metricsFile, status);
  } catch (error) {
    process.stderr.write(`pulumi-ebpf agent: cannot write the status/metrics file: ${(error as Error).message}\n`);
  }
  const drift = status.drift.length > 0 ? `, drift in ${status.drift.map((map) => map.map).join(", ")}` : "";
  const changes = status.changes && Object.keys(status.changes).length > 0 ? `, changes ${JSON.stringify(status.changes)}` : "";
  const line = `pulumi-ebpf agent: ${status.stack} (${status.host}) ${status.mode}: ${status.result} in ${status.durationMs} ms${drift}${changes}`;
  process.stderr.write(`${line}${status.error ? `\n${status.error}` : ""}\n`);
}

const exitOf = (status: RunStatus): number => status.result === "error" ? EXIT.error : status.result === "drift" ? EXIT.drift : EXIT.ok;

/** Runs the agent; resolves to the process exit code. Never throws. */
export async function runAgent(options: AgentOptions): Promise<number> {
  let toolchain;
  try {
    toolchain = await findToolchain();
  } catch (error) {
    process.stderr.write(`pulumi-ebpf agent: ${(error as Error).message}\n`);
    return EXIT.error;
  }
  if (options.mode !== "loop") {
    const status = await runOnce(options, toolchain, options.mode);
    record(options, status);
    return exitOf(status);
  }

  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopping = true;
    wake?.();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  let failures = 0;
  while (!stopping) {
    const status = await runOnce(options, toolchain, "once");
    record(options, status);
    failures = status.result === "error" ? failures + 1 : 0;
    // After k errors in a row: interval * 2^(k-1), at most MAX_BACKOFF_SECONDS (or the interval, if longer).
    const pauseSeconds = Math.min(options.intervalSeconds * 2 ** Math.max(0, failures - 1), Math.max(options.intervalSeconds, MAX_BACKOFF_SECONDS));
    if (stopping) break;
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, pauseSeconds * 1000);
    });
    wake = undefined;
  }
  process.stderr.write("pulumi-ebpf agent: stopped\n");
  return EXIT.ok;
}
