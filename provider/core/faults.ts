// Test-only fault injection: the points where the tests kill, fail or pause
// the provider to prove that every step leaves the kernel in a safe state.
// Not public API; a no-op unless PULUMI_EBPF_FAULT is set.

/**
 * Test hook for fault injection: when PULUMI_EBPF_FAULT names this point
 * (points: "populate", "write:N", "before-deletes", "before-pin",
 * "before-rename", "after-rename", "after-pin-new-path", "before-unpin"),
 * the process exits at once as if killed (SIGKILL); with
 * PULUMI_EBPF_FAULT_MODE=throw it throws instead, and with "stop" it stops
 * itself (SIGSTOP) until a test sends SIGCONT, so the test can change the
 * filesystem at exactly that point.
 */
export function faultPoint(name: string): void {
  const wanted = process.env.PULUMI_EBPF_FAULT;
  if (!wanted || wanted !== name) return;
  const mode = process.env.PULUMI_EBPF_FAULT_MODE;
  if (mode === "throw") throw new Error(`injected fault at ${name}`);
  process.kill(process.pid, mode === "stop" ? "SIGSTOP" : "SIGKILL");
}
