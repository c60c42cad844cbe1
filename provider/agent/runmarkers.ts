// Run markers: how an agent tells a stack lock left by a killed run of its own
// host from one held by a run that is still going. Each run writes
// `<dir>/run-<stack>.<pid>.json` before it calls the CLI and removes it once a
// run ends without an error; a run that died (SIGKILL, OOM, a lost backend)
// leaves its marker behind. A marker whose process is gone, or that a failed
// earlier run of this very process left, is stale.
import * as fs from "node:fs";
import * as path from "node:path";

/** One run's marker, as written. */
interface Marker {
  pid: number;
  runId: string;
}

/** The markers of one stack on this host. */
export class RunMarkers {
  constructor(private readonly dir: string, private readonly stack: string) {}

  private fileOf(pid: number): string {
    return path.join(this.dir, `run-${this.stack}.${pid}.json`);
  }

  private all(): Array<{ file: string; marker: Marker }> {
    const prefix = `run-${this.stack}.`;
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const found: Array<{ file: string; marker: Marker }> = [];
    for (const name of names) {
      if (!name.startsWith(prefix) || !/^\d+\.json$/.test(name.slice(prefix.length))) continue;
      const file = path.join(this.dir, name);
      try {
        found.push({ file, marker: JSON.parse(fs.readFileSync(file, "utf8")) as Marker });
      } catch {
        // Half-written by a killed run: stale by construction.
        found.push({ file, marker: { pid: 0, runId: "" } });
      }
    }
    return found;
  }

  /** Records that run `runId` of this process is about to drive the stack. Throws when the directory cannot be written. */
  begin(runId: string): void {
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(this.fileOf(process.pid), JSON.stringify({ pid: process.pid, runId } satisfies Marker));
  }

  /** Removes this process's marker and the stale ones (the run ended without an error, so no lock of ours is held). */
  clear(runId: string): void {
    for (const { file } of this.stale(runId)) fs.rmSync(file, { force: true });
    fs.rmSync(this.fileOf(process.pid), { force: true });
  }

  /** The markers of runs that died (or failed earlier in this process), excluding run `runId`. */
  private stale(runId: string): Array<{ file: string; marker: Marker }> {
    return this.all().filter(({ marker }) => marker.pid === process.pid ? marker.runId !== runId : !alive(marker.pid));
  }

  /**
   * Whether the stack's lock can only be a leftover: some run on this host died
   * holding it and no other run of the stack on this host is alive.
   */
  onlyDeadHolders(runId: string): boolean {
    const others = this.all().filter(({ marker }) => !(marker.pid === process.pid && marker.runId === runId));
    return others.length > 0 && others.every(({ marker }) => marker.pid === process.pid || !alive(marker.pid));
  }
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
