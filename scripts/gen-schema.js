#!/usr/bin/env node
// Generates schema.json, the Pulumi package schema of ebpf:index:PinnedMap,
// from the compiled library (run `npm run gen:schema`, which builds first):
//  - inputs, their optionality and nested types: the zod schema
//    PinnedMapSpecInputSchema (the core's public entry, provider/core/index.ts),
//    the one source of the input shape, less what the provider records itself;
//  - the outputs a PinnedMap adds and the LiveAbi type: the SDK class and the
//    LiveAbi interface as declared in dist/sdk/index.d.ts and dist/provider/core/abi.d.ts;
//  - descriptions: the doc comments of the SDK class and of the zod schemas.
// `node scripts/gen-schema.js --check` exits 1 when schema.json is not what
// it would generate. tests/schema.test.ts runs the same comparison.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const DIST = path.join(ROOT, "dist");
const PACKAGE = "ebpf";
const TOKEN = `${PACKAGE}:index:PinnedMap`;
const ANY = { $ref: "pulumi.json#/Any" };

// Nested objects become named types; every object in the input schema needs a
// name here (a new one fails generation until it is named).
const TYPE_NAMES = {
  innerMap: "InnerMap",
  permissions: "Permissions",
  "contents[]": "ContentEntry",
  codec: "StructCodec", // the { struct: [...] } alternative of a codec declaration
  "codec.struct[]": "StructField",
};
// The declaration whose doc comment describes each named type.
const TYPE_DOCS = {
  InnerMap: ["provider/core/schema.d.ts", "InnerMapSchema"],
  Permissions: ["provider/core/schema.d.ts", "PermissionsSchema"],
  ContentEntry: ["provider/core/schema.d.ts", "ContentEntrySchema"],
  LiveAbi: ["provider/core/abi.d.ts", "LiveAbi"],
  ContentsDrift: ["provider/core/drift.d.ts", "ContentsDrift"],
};
// Descriptions written here rather than taken from a declaration.
const TYPE_TEXT = {
  StructCodec: "A C struct codec: { struct: [fields] }, laid out with natural alignment unless offsets are given, zero padding.",
  StructField: "One field of a struct codec: its name (a C identifier), its codec, and optionally its offset and size in bytes.",
};
// Properties the dynamic provider records in the state by itself: outputs,
// never declared, even where the core's input schema still lists them.
const PROVIDER_RECORDED = new Set(["contentsFileDigest", "contentsFileKeys"]);
// The contents a keyed map records (provider/dynamic/keyed.ts): the core checks
// an array of entries, the provider records, reads back and also accepts an
// object keyed by each key's notation, so the CLI diffs entries by key.
const KEYED_CONTENTS_TEXT = "Maps with keys record the contents as an object keyed by each key's canonical notation " +
  "(strings as they are, numbers and structs as JSON, e.g. {\"10.0.0.1\": 1, \"7\": 2, \"{\\\"port\\\":80}\": 3}) whose values are the values " +
  "(per-CPU values that differ between CPUs: { perCpuValues: [...] }); either form may be declared. " +
  "queue, stack and bloom_filter keep the array (no keys; their order is the push order).";

/** The contents property: the core's array of entries, or the keyed object the provider records. */
function keyedContents(arraySpec) {
  const { description, ...array } = arraySpec;
  return { oneOf: [array, { type: "object", additionalProperties: ANY }], description: [description, KEYED_CONTENTS_TEXT].filter(Boolean).join(" ") };
}
// TypeScript `number` properties of the outputs that are integers.
const INTEGERS = new Set(["mapId", "entryCount", "keySize", "valueSize", "maxEntries"]);
// Outputs whose types are declared in TypeScript rather than by zod.
const TS_TYPES = { LiveAbi: ["provider/core/abi.d.ts", "LiveAbi"], ContentsDrift: ["provider/core/drift.d.ts", "ContentsDrift"] };

function ts() {
  return require("typescript");
}

function parseDts(rel) {
  const file = path.join(DIST, rel);
  return ts().createSourceFile(file, fs.readFileSync(file, "utf8"), ts().ScriptTarget.Latest, true);
}

function docOf(node) {
  const docs = (node.jsDoc ?? []).map((d) => (typeof d.comment === "string" ? d.comment : ts().getTextOfJSDocComment(d.comment) ?? ""));
  return docs.join("\n").trim() || undefined;
}

function findDeclaration(rel, name) {
  const t = ts();
  let found;
  const visit = (node) => {
    if (found) return;
    if ((t.isInterfaceDeclaration(node) || t.isClassDeclaration(node) || t.isTypeAliasDeclaration(node)) && node.name?.text === name) found = node;
    else if (t.isVariableStatement(node) && node.declarationList.declarations.some((d) => d.name.getText() === name)) found = node;
    else t.forEachChild(node, visit);
  };
  visit(parseDts(rel));
  if (!found) throw new Error(`gen-schema: ${name} is not declared in dist/${rel}`);
  return found;
}

/**
 * The properties the SDK class PinnedMap declares, from dist/sdk/index.d.ts:
 * name, doc comment, the TypeScript text inside Output<…>, and whether it may be undefined.
 */
function sdkOutputs() {
  const t = ts();
  const cls = findDeclaration("sdk/index.d.ts", "PinnedMap");
  return cls.members.filter((m) => t.isPropertyDeclaration(m) && !m.modifiers?.some((x) => x.kind === t.SyntaxKind.StaticKeyword))
    .map((m) => {
      const type = m.type;
      const inner = type && t.isTypeReferenceNode(type) && type.typeArguments?.length === 1 ? type.typeArguments[0] : type;
      const parts = inner && t.isUnionTypeNode(inner) ? inner.types : [inner];
      const optional = parts.some((p) => p && p.kind === t.SyntaxKind.UndefinedKeyword);
      const rest = parts.filter((p) => p && p.kind !== t.SyntaxKind.UndefinedKeyword);
      return { name: m.name.getText(), doc: docOf(m), typeNodes: rest, optional };
    });
}

// A TypeScript type annotation (string, number, boolean, X[], a named TS_TYPES interface) as a Pulumi type.
function tsTypeToPulumi(node, ctx, name) {
  const t = ts();
  switch (node.kind) {
    case t.SyntaxKind.StringKeyword: return { type: "string" };
    case t.SyntaxKind.NumberKeyword: return { type: INTEGERS.has(name) ? "integer" : "number" };
    case t.SyntaxKind.BooleanKeyword: return { type: "boolean" };
    // A key in declared notation: a number, a string or a struct object.
    case t.SyntaxKind.UnknownKeyword: return { $ref: "pulumi.json#/Any" };
    default: break;
  }
  if (t.isArrayTypeNode(node)) return { type: "array", items: tsTypeToPulumi(node.elementType, ctx) };
  if (t.isTypeReferenceNode(node) && TS_TYPES[node.typeName.getText()]) return tsInterfaceType(node.typeName.getText(), ctx);
  throw new Error(`gen-schema: cannot express the TypeScript type ${node.getText()} in the schema; add it to TS_TYPES`);
}

function tsInterfaceType(name, ctx) {
  const t = ts();
  if (!ctx.types[`${PACKAGE}:index:${name}`]) {
    const decl = findDeclaration(...TS_TYPES[name]);
    const properties = {};
    const required = [];
    for (const m of decl.members.filter((x) => t.isPropertySignature(x))) {
      const prop = { ...tsTypeToPulumi(m.type, ctx, m.name.getText()) };
      const doc = docOf(m);
      if (doc) prop.description = doc;
      properties[m.name.getText()] = prop;
      if (!m.questionToken) required.push(m.name.getText());
    }
    addType(ctx, name, properties, required);
  }
  return { $ref: `#/types/${PACKAGE}:index:${name}` };
}

function addType(ctx, name, properties, required) {
  const spec = { type: "object" };
  const doc = TYPE_TEXT[name] ?? (TYPE_DOCS[name] && docOf(findDeclaration(...TYPE_DOCS[name])));
  if (doc) spec.description = doc;
  spec.properties = properties;
  if (required.length) spec.required = required;
  ctx.types[`${PACKAGE}:index:${name}`] = spec;
}

// A JSON Schema (zod's z.toJSONSchema of the input schema) as a Pulumi type spec.
// `at` names the position, for TYPE_NAMES.
function jsonToPulumi(js, at, ctx) {
  if (js.$ref) {
    const def = js.$ref.replace(/^#\/\$defs\//, "");
    if (!ctx.defs[def]) throw new Error(`gen-schema: unresolved ${js.$ref}`);
    return jsonToPulumi(ctx.defs[def], ctx.defNames[def] ?? at, ctx);
  }
  const doc = js.description;
  const withDoc = (spec) => (doc ? { ...spec, description: doc } : spec);
  if (js.anyOf || js.oneOf) {
    const alternatives = (js.anyOf ?? js.oneOf).map((alt, i) => jsonToPulumi(alt, `${at}|${i}`, ctx));
    const unique = [...new Map(alternatives.map((a) => [JSON.stringify(a), a])).values()];
    if (unique.length === 1) return withDoc(unique[0]);
    const all = unique.every((a) => a.type && !a.$ref && a.type !== "array" && a.type !== "object") ? unique.map((a) => a.type) : undefined;
    // Pulumi schema has no union of primitives other than oneOf.
    return withDoc({ oneOf: unique, ...(all && all.every((x) => x === all[0]) && { type: all[0] }) });
  }
  if (js.enum) {
    const type = typeof js.enum[0] === "number" ? "number" : "string";
    return withDoc({ type, ...(js.enum.length <= 40 && { description: [doc, `One of: ${js.enum.join(", ")}.`].filter(Boolean).join(" ") }) });
  }
  switch (js.type) {
    case "string": return withDoc({ type: "string" });
    case "integer": return withDoc({ type: "integer" });
    case "number": return withDoc({ type: "number" });
    case "boolean": return withDoc({ type: "boolean" });
    case "array": return withDoc({ type: "array", items: js.items ? jsonToPulumi(js.items, `${at}[]`, ctx) : ANY });
    case "object": {
      // Strip the union branch indices: "keyType|1" is the codec's object alternative.
      const key = at.replace(/\|\d+/g, "");
      const name = TYPE_NAMES[key];
      if (!name) throw new Error(`gen-schema: the object at ${at} needs a type name in TYPE_NAMES (scripts/gen-schema.js)`);
      const token = `${PACKAGE}:index:${name}`;
      if (!ctx.types[token]) {
        ctx.types[token] = {}; // reserve: recursive types refer to themselves
        const properties = {};
        for (const [prop, sub] of Object.entries(js.properties ?? {})) {
          const spec = jsonToPulumi(sub, `${key}.${prop}`.replace(/^codec\.struct\[\]\.type$/, "codec"), ctx);
          properties[prop] = name === "StructField" ? spec : withSdkDoc(spec, ctx.docs[prop]);
        }
        addType(ctx, name, properties, js.required ?? []);
      }
      return { $ref: `#/types/${token}` };
    }
    case undefined:
      if (Object.keys(js).filter((k) => k !== "description").length === 0) return withDoc(ANY);
      break;
    default: break;
  }
  throw new Error(`gen-schema: cannot express ${JSON.stringify(js)} at ${at}`);
}

// The SDK's doc comment of a property first, then what the type adds (the allowed values).
function withSdkDoc(spec, doc) {
  if (!doc) return spec;
  return { ...spec, description: spec.description ? `${doc} ${spec.description}` : doc };
}

/** Returns the Pulumi package schema (an object) generated from the compiled library. */
function generate() {
  const { z } = require("zod");
  const { PinnedMapSpecInputSchema } = require(path.join(DIST, "provider", "core", "index.js"));
  // The codec schema is internal to the core: read from its own module.
  const { CodecSchema } = require(path.join(DIST, "provider", "core", "codecs.js"));
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));

  const json = z.toJSONSchema(PinnedMapSpecInputSchema, { io: "input", unrepresentable: "any", cycles: "ref", reused: "inline" });
  const defs = json.$defs ?? {};
  // The recursive codec declaration is the only $def zod emits here; its object alternative is the struct codec.
  const codecJson = JSON.stringify(z.toJSONSchema(CodecSchema, { io: "input", unrepresentable: "any", cycles: "ref", reused: "inline" }).anyOf);
  const defNames = {};
  for (const [k, v] of Object.entries(defs)) if (JSON.stringify(v.anyOf) === codecJson || v.anyOf?.some((a) => a.properties?.struct)) defNames[k] = "codec";

  const outputs = sdkOutputs();
  const ctx = { types: {}, defs, defNames, docs: Object.fromEntries(outputs.map((o) => [o.name, o.doc])) };
  const inputProperties = {};
  for (const [name, sub] of Object.entries(json.properties)) {
    if (PROVIDER_RECORDED.has(name)) continue;
    const at = name === "keyType" || name === "valueType" ? "codec" : name;
    const spec = jsonToPulumi(sub, at, ctx);
    inputProperties[name] = withSdkDoc(spec, ctx.docs[name]);
  }
  if (inputProperties.contents) inputProperties.contents = keyedContents(inputProperties.contents);
  const requiredInputs = (json.required ?? []).filter((name) => !PROVIDER_RECORDED.has(name));

  const properties = {};
  const required = [];
  for (const o of outputs) {
    properties[o.name] = inputProperties[o.name]
      ?? { ...(o.typeNodes.length === 1 ? tsTypeToPulumi(o.typeNodes[0], ctx, o.name) : { oneOf: o.typeNodes.map((n) => tsTypeToPulumi(n, ctx, o.name)) }), ...(o.doc && { description: o.doc }) };
    if (!o.optional) required.push(o.name);
  }

  const types = Object.fromEntries(Object.entries(ctx.types).sort(([a], [b]) => a.localeCompare(b)));
  return {
    name: PACKAGE,
    displayName: "eBPF",
    version: pkg.version,
    description: pkg.description,
    keywords: ["pulumi", "ebpf", "bpf", "linux", "category/infrastructure"],
    license: pkg.license,
    meta: { moduleFormat: "(.*)" },
    language: { nodejs: { packageName: pkg.name, packageDescription: pkg.description } },
    resources: {
      [TOKEN]: {
        description: docOf(findDeclaration("sdk/index.d.ts", "PinnedMap")),
        properties,
        required,
        inputProperties,
        requiredInputs,
      },
    },
    types,
  };
}

/** The text of schema.json as generated. */
function generateText() {
  return `${JSON.stringify(generate(), null, 2)}\n`;
}

module.exports = { generate, generateText, TOKEN, PROVIDER_RECORDED };

if (require.main === module) {
  const target = path.join(ROOT, "schema.json");
  const text = generateText();
  if (process.argv.includes("--check")) {
    const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
    if (current !== text) {
      console.error("schema.json is out of date: run `npm run gen:schema`");
      process.exit(1);
    }
  } else {
    fs.writeFileSync(target, text);
    console.error(`wrote ${path.relative(process.cwd(), target)}`);
  }
}
