// Test-only fault injection: the points where the tests kill or fail the
// provider to prove that every step leaves the kernel in a safe state. Not
// public API; a no-op unless PULUMI_EBPF_FAULT is set.

/**
 * Test hook for fault injection: when PULUMI_EBPF_FAULT names this point
 * (points: "populate", "write:N", "before-deletes", "before-rename",
 * "after-rename", "before-unpin"), the process exits at once as if
 * killed, or throws when PULUMI_EBPF_FAULT_MODE=throw.
 */
export function faultPoint(name: string): void {
  const wanted = process.env.PULUMI_EBPF_FAULT;
  if (!wanted || wanted !== name) return;
  if (process.env.PULUMI_EBPF_FAULT_MODE === "throw") throw new Error(`injected fault at ${name}`);
  process.kill(process.pid, "SIGKILL");
}
