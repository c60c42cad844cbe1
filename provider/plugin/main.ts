// The entry of the `pulumi-resource-ebpf` plugin executable: serves
// ebpf:index:PinnedMap to the engine that started it. The engine passes its
// own address as the first argument (where the plugin sends what it prints
// for the user) and reads the port from the first line of stdout.
import * as fs from "node:fs";
import * as path from "node:path";

import { logToEngine } from "./enginelog";
import { servePlugin } from "./server";

/** The package root (this file is compiled to dist/provider/plugin/). */
export const PACKAGE_ROOT = path.resolve(__dirname, "..", "..", "..");

/** The plugin's version: the package's. Throws when package.json cannot be read. */
export function pluginVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
}

/**
 * Starts serving and prints the port; `args` are the plugin's arguments (the
 * engine's address last). Throws when schema.json cannot be read or the
 * port cannot be bound.
 */
export async function main(args: string[]): Promise<void> {
  // The engine's address is the last argument (flags such as `--tracing <endpoint>` come before it).
  const last = args[args.length - 1];
  const engineAddress = last !== undefined && !last.startsWith("-") ? last : undefined;
  if (engineAddress) logToEngine(engineAddress);
  const schema = fs.readFileSync(path.join(PACKAGE_ROOT, "schema.json"), "utf8");
  const port = await servePlugin({ version: pluginVersion(), schema });
  process.stdout.write(`${port}\n`);
}
