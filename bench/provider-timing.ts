// Timing hook for the Pulumi-level benchmark, loaded with
// NODE_OPTIONS="--require dist/bench/provider-timing.js" into every node
// process `pulumi up` starts. It acts only in the dynamic-provider plugin
// (@pulumi/pulumi/cmd/dynamic-provider) and only when BENCH_PROVIDER_TIMINGS
// names a file. There it records, one JSON line per call:
//   {"layer": "rpc", "method": "create", "ms": …}       a gRPC handler of the plugin, from the
//                                                       request's arrival to its answer: protobuf
//                                                       Struct ⇄ JS conversion, deserializing the
//                                                       stub, and our method inside;
//   {"layer": "provider", "method": "create", "ms": …}  our method alone (provider/dynamic/index.ts);
//   {"layer": "rss", "method": "create", "ms": …}       the plugin process's peak RSS so far (VmHWM), in MB
//                                                       (in the "ms" field), after each answer.
// Nothing is changed but the timing wrappers; results and errors pass through.
import * as fs from "node:fs";
import * as path from "node:path";

const out = process.env.BENCH_PROVIDER_TIMINGS;
const entry = process.argv[1] ?? "";

function record(layer: string, method: string, ms: number): void {
  fs.appendFileSync(out!, `${JSON.stringify({ layer, method, ms, pid: process.pid })}\n`);
}

// The process's peak resident set so far (VmHWM), in MB.
function peakRssMb(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) / 1024 : 0;
}

function elapsed(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

if (out && /dynamic-provider/.test(entry)) {
  const from = { paths: [path.dirname(entry)] };
  // The plugin's gRPC handlers: wrap each implementation passed to addService.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const grpc = require(require.resolve("@grpc/grpc-js", from)) as {
    Server: { prototype: { addService(service: unknown, impl: Record<string, unknown>): void } };
  };
  const addService = grpc.Server.prototype.addService;
  grpc.Server.prototype.addService = function (service: unknown, impl: Record<string, unknown>) {
    const wrapped: Record<string, unknown> = {};
    // The implementation is a class instance: its handlers live on the prototype.
    let proto: object | null = impl;
    const names = new Set<string>();
    while (proto && proto !== Object.prototype) {
      Object.getOwnPropertyNames(proto).forEach((name) => names.add(name));
      proto = Object.getPrototypeOf(proto);
    }
    for (const name of names) {
      const handler = (impl as Record<string, unknown>)[name];
      if (name === "constructor" || typeof handler !== "function") continue;
      wrapped[name] = function (this: unknown, call: unknown, callback: (...args: unknown[]) => void) {
        const start = process.hrtime.bigint();
        return (handler as (...args: unknown[]) => unknown).call(impl, call, (...args: unknown[]) => {
          record("rpc", name, elapsed(start));
          const answered = callback(...args);
          // The answer is serialized by now: the peak includes it.
          record("rss", name, peakRssMb());
          return answered;
        });
      };
    }
    return addService.call(this, service, wrapped);
  };

  // Our provider: the module the serialized stub loads by package name
  // (self-reference or node_modules) is this file's sibling, so the module
  // cache hands the stub the wrapped object.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { provider } = require("../provider/dynamic/index") as { provider: Record<string, (...args: unknown[]) => Promise<unknown>> };
  for (const method of Object.keys(provider)) {
    const original = provider[method]!;
    provider[method] = async function (...args: unknown[]) {
      const start = process.hrtime.bigint();
      try {
        return await original.apply(provider, args);
      } finally {
        record("provider", method, elapsed(start));
      }
    };
  }
}
