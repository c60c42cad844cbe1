#!/usr/bin/env bash
# `npm test`: set up what is missing (scripts/setup.sh), then run the mocha
# suites against the real kernel and the real Pulumi CLI.
#
#   npm test                              every suite (dist/tests/*.test.js)
#   npm test -- native examples           only these suites; a suite is named by
#                                         its name, tests/<name>.test.ts or
#                                         dist/tests/<name>.test.js
#   npm test -- --grep 'pin → get'        every suite, tests matching the pattern
#   npm test -- core --grep adopt         both
#
# Other options go to mocha as they are. The run ends with the line
# `N passed, N failed` (scripts/mocha-reporter.js) and fails when no test ran.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# mocha options that take a value in the next argument (so that value is not
# mistaken for a suite).
takes_value=" --grep -g --fgrep -f --timeout -t --slow -s --reporter -R --reporter-option --reporter-options -O --ui -u
  --require -r --config --package --file --ignore --exclude --extension --retries --jobs -j --node-option -n --spec "

suites=()
options=()
while [[ $# -gt 0 ]]; do
  arg=$1
  shift
  case $arg in
    --spec)
      [[ $# -gt 0 ]] || { echo "test: --spec needs a value" >&2; exit 2; }
      suites+=("$1")
      shift
      ;;
    --spec=*) suites+=("${arg#--spec=}") ;;
    -*)
      options+=("$arg")
      if [[ $takes_value == *" $arg "* && $# -gt 0 ]]; then
        options+=("$1")
        shift
      fi
      ;;
    *) suites+=("$arg") ;;
  esac
done

bash scripts/setup.sh

# A suite name, tests/<name>.test.ts or dist/tests/<name>.test.js means its
# compiled file; a glob goes to mocha as it is.
specs=()
for suite in ${suites[@]+"${suites[@]}"}; do
  case $suite in
    *[*?]*) spec=$suite ;;
    *)
      name=$(basename "$suite")
      name=${name%.ts}
      name=${name%.js}
      spec=dist/tests/${name%.test}.test.js
      ;;
  esac
  if [[ $spec != *[*?]* && ! -f $spec ]]; then
    echo "test: no suite $suite ($spec does not exist; the suites are: $(cd dist/tests && ls -- *.test.js | sed 's/\.test\.js$//' | tr '\n' ' '))" >&2
    exit 2
  fi
  specs+=("$spec")
done
# No suite named: every suite. (The default is here, not in .mocharc.json,
# because mocha adds the config's spec list to the files given on the command line.)
[[ ${#specs[@]} -gt 0 ]] || specs=("dist/tests/*.test.js")

toolchain=$(bash scripts/pulumi-toolchain.sh)
# The toolchain directory also holds our dynamic provider plugin script.
export PATH="$toolchain:$PATH"
exec npx --no-install mocha ${options[@]+"${options[@]}"} "${specs[@]}"
