// One agent run over one stack: `once` (refresh + up) or `check` (refresh,
// recorded in the stack, then a preview that must propose nothing). Waits for
// another run's lock within a bound, and clears a lock a killed run of this
// host left behind.
import * as path from "node:path";
import * as auto from "@pulumi/pulumi/automation";

import type { AgentOptions } from "./options";
import type { RunStatus } from "./report";
import { RunMarkers } from "./runmarkers";
import { pinnedMapsOf } from "./stackstate";
import type { Toolchain } from "./toolchain";

/** The config key the host name is given to the program under. */
export const HOST_CONFIG_KEY = "ebpf:host";

/** A run that could not take the stack's lock within --lock-timeout. */
export class StackLockedError extends Error {
  override name = "StackLockedError";
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The first lines of a CLI failure that say what went wrong (the CLI repeats its diagnostics). */
export function briefError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text.split("\n").map((line) => line.trim())
    .filter((line) => /error|fail|refused|denied|timed out|timeout/i.test(line) || /\bE[A-Z]{3,}\b/.test(line));
  const picked = [...new Set(lines)].slice(0, 6);
  return (picked.length > 0 ? picked : text.split("\n").slice(0, 6)).join("\n").slice(0, 2000);
}

// A fresh PostgreSQL backend opened by several agents at once: the CLI
// creates its table on first use, and PostgreSQL answers all but one of the
// concurrent CREATE TABLE IF NOT EXISTS with a unique violation (23505) on
// its type catalog. The table exists right after, so opening again works.
const FIRST_USE_RACE = /failed to create table[\s\S]*\(23505\)/;
const OPEN_ATTEMPTS = 5;

/**
 * Opens (creating on first use) the stack of the project and gives it the
 * host name as config. A backend's first-use race (FIRST_USE_RACE) is retried
 * a few times; throws CLI errors.
 */
async function openStack(options: AgentOptions, toolchain: Toolchain): Promise<auto.Stack> {
  for (let attempt = 1; ; attempt++) {
    try {
      const stack = await auto.LocalWorkspace.createOrSelectStack(
        { stackName: options.stack, workDir: options.project },
        { pulumiCommand: toolchain.command, envVars: { PATH: toolchain.path } },
      );
      await stack.setConfig(HOST_CONFIG_KEY, { value: options.host });
      return stack;
    } catch (error) {
      if (attempt >= OPEN_ATTEMPTS || !FIRST_USE_RACE.test(String((error as Error)?.message ?? error))) throw error;
      await sleep(200 * attempt);
    }
  }
}

/**
 * Runs `operation` on the stack; when another run holds the stack's lock,
 * retries until --lock-timeout. A lock whose holders on this host are all dead
 * (killed mid-run) is cancelled at once. Throws StackLockedError naming the
 * stack when the bound passes, and any other error as it came.
 */
async function underLock<T>(stack: auto.Stack, options: AgentOptions, markers: RunMarkers, runId: string, operation: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + options.lockTimeoutSeconds * 1000;
  let pauseMs = 500;
  let announced = false;
  for (;;) {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof auto.ConcurrentUpdateError)) throw error;
      if (markers.onlyDeadHolders(runId)) {
        process.stderr.write(`pulumi-ebpf agent: stack ${options.stack} is locked by a run of this host that died; cancelling its lock\n`);
        await stack.cancel().catch(() => undefined);
        markers.clear(runId);
        markers.begin(runId);
        continue;
      }
      if (Date.now() + pauseMs > deadline) {
        throw new StackLockedError(`stack ${options.stack} is locked by another update and stayed locked for ${options.lockTimeoutSeconds} s `
          + `(--lock-timeout); if no other agent is running it, clear the lock with \`pulumi cancel --stack ${options.stack}\``);
      }
      if (!announced) {
        process.stderr.write(`pulumi-ebpf agent: stack ${options.stack} is locked by another run; waiting up to ${options.lockTimeoutSeconds} s\n`);
        announced = true;
      }
      await sleep(pauseMs);
      pauseMs = Math.min(pauseMs * 2, 5000);
    }
  }
}

let runCounter = 0;

/**
 * One run in mode `once` or `check` (loop mode calls it as `once`). Never
 * throws: the returned status says how it ended (result "error" with the cause).
 */
export async function runOnce(options: AgentOptions, toolchain: Toolchain, mode: "once" | "check"): Promise<RunStatus> {
  const started = Date.now();
  const runId = `${started}-${runCounter++}`;
  const markers = new RunMarkers(path.dirname(options.statusFile), options.stack);
  const base = { host: options.host, stack: options.stack, mode: options.mode };
  const onOutput = options.verbose ? (text: string) => process.stderr.write(text) : undefined;
  const finish = (fields: Partial<RunStatus> & Pick<RunStatus, "result">): RunStatus =>
    ({ ...base, time: new Date().toISOString(), durationMs: Date.now() - started, drift: [], ...fields });
  try {
    markers.begin(runId);
    const stack = await openStack(options, toolchain);
    let status: RunStatus;
    if (mode === "once") {
      // Refresh and update in one locked run: the update repairs what refresh found.
      const up = await underLock(stack, options, markers, runId, () => stack.up({ refresh: true, onOutput }));
      const changes = Object.fromEntries(Object.entries(up.summary.resourceChanges ?? {}).filter(([op, count]) => op !== "same" && count > 0));
      const { maps } = pinnedMapsOf(await stack.exportStack());
      status = finish({ result: "converged", maps, changes });
    } else {
      // The refresh is recorded in the stack (that is how fleet status sees
      // drift); it only reads the maps, and preview changes nothing.
      await underLock(stack, options, markers, runId, () => stack.refresh({ onOutput }));
      const { maps, drift } = pinnedMapsOf(await stack.exportStack());
      const preview = await underLock(stack, options, markers, runId, () => stack.preview({ onOutput }));
      const changes = Object.fromEntries(Object.entries(preview.changeSummary ?? {}).filter(([op, count]) => op !== "same" && count > 0));
      const drifted = drift.length > 0 || Object.keys(changes).length > 0;
      status = finish({ result: drifted ? "drift" : "clean", maps, drift, changes });
    }
    markers.clear(runId);
    return status;
  } catch (error) {
    // The marker stays: if this run's CLI left the stack locked, the next run clears it.
    const message = error instanceof StackLockedError ? error.message : `stack ${options.stack}: ${briefError(error)}`;
    return finish({ result: "error", error: message });
  }
}
