// The engine shows a resource plugin's stderr only in its debug log (unlike a
// dynamic provider's), so what the provider prints for the user (why a new
// kernel map is built, what an update applied, drift) is sent to the engine's
// Log service instead, attributed to the resource the request is about.
import { AsyncLocalStorage } from "node:async_hooks";

import { EngineClient, engineMessages, grpc } from "./grpc";

/** The request a piece of output belongs to: its resource, and the last of its log calls (they go one after another, in order). */
interface RequestScope {
  urn: string;
  sent: Promise<void>;
}

const scope = new AsyncLocalStorage<RequestScope>();

/**
 * Routes this process's stderr to the engine at `engineAddress` (host:port):
 * each line becomes an info message attributed to the resource of the
 * request that wrote it (see inRequest). Output outside a request, or that
 * the engine does not take, stays on stderr (the engine's debug log).
 */
export function logToEngine(engineAddress: string): void {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const engine: any = new EngineClient(engineAddress, grpc.credentials.createInsecure());
  const writeStderr = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    const current = scope.getStore();
    if (current === undefined) return (writeStderr as (...args: unknown[]) => boolean)(chunk, ...rest);
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    for (const line of text.split("\n").filter((part) => part.trim() !== "")) {
      const request = new engineMessages.LogRequest();
      request.setSeverity(engineMessages.LogSeverity.INFO);
      request.setMessage(line);
      request.setUrn(current.urn);
      current.sent = current.sent.then(() => new Promise<void>((resolve) => {
        engine.log(request, (error: Error | null) => {
          if (error) writeStderr(`${line}\n`);
          resolve();
        });
      }));
    }
    return true;
  }) as typeof process.stderr.write;
}

/**
 * Runs `body` as the handling of a request about resource `urn`, and waits
 * until what it printed has reached the engine, so the messages appear with
 * the step they belong to.
 */
export async function inRequest<T>(urn: string, body: () => Promise<T>): Promise<T> {
  const current: RequestScope = { urn, sent: Promise.resolve() };
  try {
    return await scope.run(current, body);
  } finally {
    await current.sent;
  }
}
