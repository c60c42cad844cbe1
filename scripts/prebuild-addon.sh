#!/usr/bin/env bash
# Builds the prebuilt addon that the npm package carries:
# prebuilds/<platform>-<arch>/pulumi-ebpf.node (N-API, stripped), which
# node-gyp-build loads in an installed package without running any install
# script (npm 11 runs a dependency's scripts only when the user approves them).
#
# prebuildify runs `node-gyp rebuild` in its working directory, which would
# wipe this checkout's build/ (the development addon other processes may be
# loading), so it runs in a staging copy of the sources and writes only
# prebuilds/ here. Used by `npm pack` / `npm publish` (prepack).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/pulumi-ebpf-prebuild.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$root/package.json" "$root/binding.gyp" "$stage/"
mkdir -p "$stage/native"
cp -r "$root/native/src" "$stage/native/src"
# node-addon-api (binding.gyp's include dir) and node-gyp resolve from here.
ln -s "$root/node_modules" "$stage/node_modules"
# Headers: the machine's npm config may point node-gyp at installed ones
# (nodedir=/usr); npm passes that on to scripts, a plain shell does not.
if [[ -z "${npm_config_nodedir:-}" ]]; then
  nodedir=$(npm config get nodedir 2>/dev/null || true)
  [[ -n "$nodedir" && "$nodedir" != undefined && "$nodedir" != null ]] && export npm_config_nodedir=$nodedir
fi
# N-API: one build serves every Node.js version; built against the running one.
"$root/node_modules/.bin/prebuildify" --napi --strip --target "node@$(node -p process.versions.node)" \
  --out "$stage/out" "$stage" >&2
# Into place without a moment where prebuilds/ lacks the addon (a concurrent
# pack may be reading it): copy beside, then rename over.
for built in "$stage"/out/prebuilds/*/*.node; do
  dir=$root/prebuilds/$(basename "$(dirname "$built")")
  mkdir -p "$dir"
  install -m 0755 "$built" "$dir/.$(basename "$built").$$"
  mv -f "$dir/.$(basename "$built").$$" "$dir/$(basename "$built")"
done
ls "$root"/prebuilds/*/*.node >/dev/null
