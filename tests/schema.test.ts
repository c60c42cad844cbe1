// schema.json, the Pulumi package schema of ebpf:index:PinnedMap: generated
// by scripts/gen-schema.js from the zod input schema and the SDK's
// declarations, so these tests check that the committed file is current, that
// its inputs and outputs match the zod schema and the SDK class, and that
// Pulumi accepts it and generates a Node.js SDK from it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { liveAbi, PinnedMapSpecInputSchema } from "../provider/core";
import { REPO_ROOT, run, runOk } from "./fixtures/pulumi";
import { buildGoFixture } from "./fixtures/gobuild";

interface PropertySpec { type?: string; $ref?: string; oneOf?: PropertySpec[]; items?: PropertySpec; description?: string }
interface ObjectTypeSpec { type: string; properties: Record<string, PropertySpec>; required?: string[] }
interface PackageSchema {
  name: string;
  resources: Record<string, {
    properties: Record<string, PropertySpec>;
    required: string[];
    inputProperties: Record<string, PropertySpec>;
    requiredInputs: string[];
  }>;
  types: Record<string, ObjectTypeSpec>;
}

const SCHEMA_PATH = path.join(REPO_ROOT, "schema.json");
const TOKEN = "ebpf:index:PinnedMap";
/** docs/design.md: the outputs a PinnedMap adds to its inputs. */
// docs/design.md's outputs, drift (the per-key difference a refresh found), and
// what the provider records for a contents file (its digest; in merge mode, its keys).
const ADDED_OUTPUTS = ["pinPath", "mapId", "abi", "frozen", "entryCount", "contentsDigest", "drift", "contentsFileDigest", "contentsFileKeys"];

// eslint-disable-next-line @typescript-eslint/no-require-imports
const generator = require(path.join(REPO_ROOT, "scripts", "gen-schema.js")) as { generateText(): string; PROVIDER_RECORDED: Set<string> };

/** The zod input schema's keys a user declares (not those the provider records itself). */
const declaredKeys = () => Object.keys(PinnedMapSpecInputSchema.shape).filter((key) => !generator.PROVIDER_RECORDED.has(key));

function readSchema(): PackageSchema {
  return JSON.parse(fs.readFileSync(SCHEMA_PATH, "utf8")) as PackageSchema;
}

/** The properties the SDK class declares (sdk/index.ts source): name → may be undefined. */
function sdkDeclaredOutputs(): Map<string, boolean> {
  const source = fs.readFileSync(path.join(REPO_ROOT, "sdk", "index.ts"), "utf8");
  const out = new Map<string, boolean>();
  for (const m of source.matchAll(/declare public readonly (\w+): pulumi\.Output<(.+)>;/g)) out.set(m[1]!, /\bundefined\b/.test(m[2]!));
  return out;
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

describe("schema.json (Pulumi package schema of ebpf:index:PinnedMap)", function () {
  it("is what scripts/gen-schema.js generates from the current sources (else: npm run gen:schema)", function () {
    const generated = generator.generateText();
    const committed = fs.readFileSync(SCHEMA_PATH, "utf8");
    assert.ok(committed === generated, "schema.json is out of date: run `npm run gen:schema` and commit the result");
  });

  it("names the package ebpf and the resource ebpf:index:PinnedMap", function () {
    const schema = readSchema();
    assert.equal(schema.name, "ebpf");
    assert.deepEqual(Object.keys(schema.resources), [TOKEN]);
  });

  it("has the zod input schema's keys as inputProperties and its required keys as requiredInputs", function () {
    const resource = readSchema().resources[TOKEN]!;
    const shape = PinnedMapSpecInputSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
    assert.deepEqual(sorted(Object.keys(resource.inputProperties)), sorted(declaredKeys()));
    for (const recorded of generator.PROVIDER_RECORDED) assert.ok(!(recorded in resource.inputProperties), `${recorded} is recorded by the provider, not an input`);
    const required = declaredKeys().filter((k) => !shape[k]!.safeParse(undefined).success);
    assert.deepEqual(sorted(resource.requiredInputs), sorted(required));
  });

  it("has outputs = inputs + pinPath, mapId, abi, frozen, entryCount, contentsDigest, drift, contentsFileDigest, contentsFileKeys = the SDK class's declared outputs", function () {
    const resource = readSchema().resources[TOKEN]!;
    const outputs = Object.keys(resource.properties);
    assert.deepEqual(sorted(outputs), sorted(new Set([...Object.keys(resource.inputProperties), ...ADDED_OUTPUTS])));
    const sdk = sdkDeclaredOutputs();
    assert.deepEqual(sorted(outputs), sorted(sdk.keys()), "schema outputs vs `declare public readonly` properties of PinnedMap in sdk/index.ts");
    const alwaysPresent = [...sdk].filter(([, mayBeUndefined]) => !mayBeUndefined).map(([name]) => name);
    assert.deepEqual(sorted(resource.required), sorted(alwaysPresent), "schema required outputs vs SDK outputs that are never undefined");
  });

  it("describes nested objects as named types: innerMap, permissions, contents entries, codecs, abi", function () {
    const schema = readSchema();
    const resource = schema.resources[TOKEN]!;
    const ref = (p: PropertySpec | undefined) => p?.$ref?.replace("#/types/", "");
    assert.equal(ref(resource.inputProperties.innerMap), "ebpf:index:InnerMap");
    assert.equal(ref(resource.inputProperties.permissions), "ebpf:index:Permissions");
    // contents: the array of entries, or the object keyed by key notation the provider records.
    assert.equal(ref(resource.inputProperties.contents?.oneOf?.[0]?.items), "ebpf:index:ContentEntry");
    assert.deepEqual(resource.inputProperties.contents?.oneOf?.[1], { type: "object", additionalProperties: { $ref: "pulumi.json#/Any" } });
    assert.equal(ref(resource.properties.abi), "ebpf:index:LiveAbi");
    assert.ok(resource.inputProperties.keyType?.oneOf?.some((alt) => ref(alt) === "ebpf:index:StructCodec"), "keyType: a codec name or a struct codec");
    for (const p of Object.values(resource.properties)) {
      for (const r of [p.$ref, p.items?.$ref, ...(p.oneOf ?? []).map((a) => a.$ref)]) {
        if (r?.startsWith("#/types/")) assert.ok(schema.types[r.slice(8)], `${r} is defined`);
      }
    }
    // The nested input types have the zod sub-schemas' keys.
    const shape = PinnedMapSpecInputSchema.shape;
    const keysOf = (s: unknown) => sorted(Object.keys((s as { unwrap(): { shape: object } }).unwrap().shape));
    assert.deepEqual(sorted(Object.keys(schema.types["ebpf:index:InnerMap"]!.properties)), keysOf(shape.innerMap));
    assert.deepEqual(sorted(Object.keys(schema.types["ebpf:index:Permissions"]!.properties)), keysOf(shape.permissions));
    // LiveAbi has what liveAbi() returns.
    const abi = liveAbi({
      type: 1, id: 1, keySize: 4, valueSize: 4, maxEntries: 1, mapFlags: 0, name: "", ifindex: 0, btfVmlinuxValueTypeId: 0,
      netnsDev: 0n, netnsIno: 0n, btfId: 0, btfKeyTypeId: 0, btfValueTypeId: 0, btfVmlinuxId: 0, mapExtra: 0n, infoLength: 0,
    });
    assert.deepEqual(sorted(Object.keys(schema.types["ebpf:index:LiveAbi"]!.properties)), sorted(Object.keys(abi)));
  });

  describe("accepted by Pulumi", function () {
    let tmp: string;
    before(function () {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-ebpf-schema-"));
    });
    after(function () {
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    // `pulumi package gen-sdk` through the CLI cannot run here: since v3.69 the
    // CLI delegates SDK generation to the language host (GeneratePackage), and
    // the toolchain's Node.js host is v3.68.0 (see scripts/pulumi-toolchain.sh
    // and the README). The same v3.248.0 codegen runs directly instead:
    it("binds (metaschema + semantic validation) and generates a Node.js SDK that compiles, with pulumi/pkg v3.248.0's codegen", function () {
      this.timeout(180_000);
      const checker = buildSchemaCheck();
      const out = path.join(tmp, "codegen-sdk");
      const r = run(checker, [SCHEMA_PATH, out]);
      assert.equal(r.code, 0, `schema did not bind or generate:\n${r.stderr}`);
      const generated = fs.readFileSync(path.join(out, "pinnedMap.ts"), "utf8");
      for (const name of ADDED_OUTPUTS.filter((n) => n !== "pinPath")) {
        assert.match(generated, new RegExp(`/\\*out\\*/ readonly ${name}:`), `generated SDK declares output ${name}`);
      }
      // The generated SDK type-checks against this checkout's @pulumi/pulumi.
      fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(out, "node_modules"));
      runOk(path.join(REPO_ROOT, "node_modules", ".bin", "tsc"), ["-p", path.join(out, "tsconfig.json"), "--noEmit"]);
      // And the checker does reject a broken schema (a dangling type reference).
      const broken = path.join(tmp, "broken.json");
      fs.writeFileSync(broken, fs.readFileSync(SCHEMA_PATH, "utf8").replace("#/types/ebpf:index:LiveAbi", "#/types/ebpf:index:Missing"));
      const bad = run(checker, [broken, path.join(tmp, "broken-sdk")]);
      assert.notEqual(bad.code, 0, "a dangling $ref must not bind");
      assert.match(bad.stderr, /ebpf:index:Missing not found/);
    });
  });
});

/**
 * Builds tests/fixtures/schemacheck (a Go program over github.com/pulumi/pulumi/pkg
 * v3.248.0, the module the Pulumi CLI here is built from) once into the
 * toolchain cache, keyed by its sources, and returns the binary's path.
 */
function buildSchemaCheck(): string {
  return buildGoFixture("schemacheck", ["-e"]);
}
