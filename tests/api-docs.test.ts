// docs/api.md against the core's public entry (provider/core/index.ts, the
// package's `pulumi-ebpf/provider`): every export is documented, in the
// order of the entry, and every example imports only what the entry exports.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const API_DOC = fs.readFileSync(path.join(REPO_ROOT, "docs", "api.md"), "utf8");
const ENTRY = fs.readFileSync(path.join(REPO_ROOT, "provider", "core", "index.ts"), "utf8");

/** The names `source` exports (values and types), in source order. */
function exportedNames(source = ENTRY): string[] {
  const names: string[] = [];
  for (const match of source.matchAll(/^export (?:type )?\{([^}]*)\} from/gm)) {
    for (const part of match[1]!.split(",")) {
      const name = part.trim().replace(/^type\s+/, "");
      if (name) names.push(name);
    }
  }
  return names;
}

/** Where docs/api.md first names `name` as a word; -1 if it does not. */
const mentionAt = (name: string) => API_DOC.search(new RegExp(`\\b${name}\\b`));

describe("docs/api.md documents the core's public entry", function () {
  it("mentions every export, sections in the order of provider/core/index.ts", () => {
    const names = exportedNames();
    assert.ok(names.length > 30, `parsed ${names.length} exports`);
    const missing = names.filter((name) => mentionAt(name) < 0);
    assert.deepEqual(missing, [], "exports docs/api.md does not mention");
    // Each group of the entry (a `// Heading.` comment and its exports) is
    // first mentioned, by its first export, after the group before it.
    const leaders = ENTRY.split(/^\/\/ [A-Z].*\.$/m).slice(1).map((group) => exportedNames(group)[0]!);
    // Where each is described: a heading, a list item, a table row or a line that starts with it.
    const positions = leaders.map((name) => API_DOC.search(new RegExp(`^(?:#+ |- |\\| )?\`${name}\\b`, "m")));
    assert.ok(positions.every((position) => position >= 0), `described at ${positions.join(", ")}`);
    assert.ok(leaders.length >= 8, `parsed ${leaders.length} groups`);
    assert.deepEqual(positions, [...positions].sort((a, b) => a - b), `groups led by ${leaders.join(", ")} are documented in another order`);
  });

  it("imports in its examples only what pulumi-ebpf/provider exports", () => {
    const exported = new Set(exportedNames());
    const imported = [...API_DOC.matchAll(/import \{([^}]*)\} from "pulumi-ebpf\/provider"/g)]
      .flatMap((match) => match[1]!.split(",").map((name) => name.trim()).filter(Boolean));
    assert.ok(imported.length > 10, `found ${imported.length} imports`);
    assert.deepEqual(imported.filter((name) => !exported.has(name)), [], "examples import names the entry does not export");
  });

  it("does not present internals (map handles, delta planning, pin staging, fault hooks) as exports", () => {
    const internals = ["buildMap", "createKernelMap", "dumpEntries", "writeEntries", "applyDelta", "planDelta", "pinInto", "faultPoint", "kernelError", "PULUMI_EBPF_FAULT"];
    const exported = new Set(exportedNames());
    for (const name of internals) {
      assert.ok(!exported.has(name), `${name} is exported`);
      assert.equal(mentionAt(name), -1, `docs/api.md still mentions ${name}`);
    }
  });
});
