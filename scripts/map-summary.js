"use strict";
// Prints what the kernel reports for pinned maps: `node scripts/map-summary.js PIN...`.
// Used by `npm run demo` after deploying, as an independent look at the result.
const native = require("../dist/native");
const { liveAbi } = require("../dist/provider/core/abi");
const { valueLayout } = require("../dist/provider/core/maptypes");

for (const pinPath of process.argv.slice(2)) {
  let map;
  try {
    map = native.openPinnedMap(pinPath, "ro", valueLayout);
  } catch (error) {
    console.log(`${pinPath}: ${error.code === "ENOENT" ? "not pinned" : error.message}`);
    continue;
  }
  try {
    const abi = liveAbi(map.info);
    const fdinfo = map.fdinfo();
    console.log(`${pinPath}`);
    console.log(`  id ${map.info.id}  name ${map.info.name || "-"}  type ${abi.mapType}  key ${abi.keySize}B  value ${abi.valueSize}B  max ${abi.maxEntries}`);
    console.log(`  flags [${abi.flags.join(", ")}]  frozen ${fdinfo.frozen === "1"}  memlock ${fdinfo.memlock} bytes`);
  } finally {
    map.close();
  }
}
