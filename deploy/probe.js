#!/usr/bin/env node
// Kubernetes probes of the agent container (deploy/daemonset.yaml), from the
// status file the agent writes after every run (--status-file):
//
//   node probe.js started FILE      a run of this container has ended (any result)
//   node probe.js ready FILE        ... and the last run converged (or was clean)
//   node probe.js live FILE [S]     the last run ended less than S seconds ago (default 600)
//
// "This container" = runs that ended after PID 1 of the container started:
// the state directory is the node's and outlives pods, so a previous pod's
// status must not make a new pod Ready. Exit 0 yes, 1 no (the reason on stderr).
"use strict";
const fs = require("fs");

/** When PID 1 of this PID namespace started, in ms since the epoch (/proc/1/stat field 22, in USER_HZ = 100 ticks since boot). */
function containerStartMs() {
  const stat = fs.readFileSync("/proc/1/stat", "utf8");
  const ticks = Number(stat.slice(stat.lastIndexOf(") ") + 2).split(" ")[19]);
  const bootSeconds = Number(/^btime (\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"))[1]);
  return (bootSeconds + ticks / 100) * 1000;
}

function main(argv) {
  const [mode, file, maxAge] = argv;
  if (!["started", "ready", "live"].includes(mode) || !file) {
    process.stderr.write("usage: probe.js started|ready|live STATUS_FILE [MAX_AGE_SECONDS]\n");
    return 2;
  }
  let mtimeMs;
  let status;
  try {
    mtimeMs = fs.statSync(file).mtimeMs;
    status = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    process.stderr.write(`probe: no status yet (${error.code || error.message})\n`);
    return 1;
  }
  if (mode === "live") {
    const ageSeconds = (Date.now() - mtimeMs) / 1000;
    if (ageSeconds < Number(maxAge || 600)) return 0;
    process.stderr.write(`probe: the last run ended ${Math.round(ageSeconds)} s ago\n`);
    return 1;
  }
  if (mtimeMs <= containerStartMs()) {
    process.stderr.write("probe: no run of this container has ended yet\n");
    return 1;
  }
  if (mode === "started") return 0;
  if (status.result === "converged" || status.result === "clean") return 0;
  process.stderr.write(`probe: the last run's result is ${status.result}${status.error ? `: ${status.error}` : ""}\n`);
  return 1;
}

process.exitCode = main(process.argv.slice(2));
