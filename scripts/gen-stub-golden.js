#!/usr/bin/env node
// Writes tests/fixtures/stub.golden.js: the text Pulumi stores in the state of
// every PinnedMap as its serialized dynamic provider (inputs.__provider), made
// by @pulumi/pulumi's own closure serializer from the built sdk/stub.ts,
// exactly as `pulumi up` makes it. tests/package.test.ts compares a real
// deployment's stored text with this file and never writes it: regenerating is
// this explicit step (`npm run gen:stub-golden`), to be taken only with a
// migration plan for the stacks that store the old text.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const golden = path.join(root, "tests", "fixtures", "stub.golden.js");
const { stubProvider } = require(path.join(root, "dist", "sdk", "stub.js"));
const { serializeFunction } = require(require.resolve("@pulumi/pulumi/runtime/closure/serializeClosure", { paths: [root] }));

// The same call as @pulumi/pulumi/dynamic's serializeProvider.
const provider = stubProvider;
serializeFunction(() => provider, { allowSecrets: true }).then(
  (serialized) => {
    const before = fs.existsSync(golden) ? fs.readFileSync(golden, "utf8") : undefined;
    fs.writeFileSync(golden, serialized.text);
    console.log(`${path.relative(root, golden)}: ${before === serialized.text ? "unchanged" : "written"}`);
  },
  (error) => {
    console.error(`gen-stub-golden: ${error.stack || error}`);
    process.exit(1);
  },
);
