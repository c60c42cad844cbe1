#!/usr/bin/env bash
# `npm run bench:fleet`: a simulated fleet on this machine. Each host is a
# mount namespace with its own bpffs at /sys/fs/bpf; the backend is a real
# PostgreSQL server started here on 127.0.0.1 (a temporary cluster, run as
# the postgres user), with a file:// backend as the baseline. bench/fleet.ts
# runs `pulumi-ebpf agent --once` on every host in parallel and measures the
# time for the fleet to converge from empty and for a 1% contents change to
# reach every host. Everything it makes is removed on exit.
#
# Knobs (environment): BENCH_FLEET_SIZES (default 1,2,4,8,16),
# BENCH_FLEET_ENTRIES (1000), BENCH_FLEET_BACKENDS (postgres,file),
# BENCH_FLEET_BASELINE_SIZES (the sizes the file:// baseline runs at; default all),
# BENCH_FLEET_BUDGET_S (540: no larger N is started when it would not finish
# within this many seconds), PG_BIN (/usr/lib/postgresql/15/bin),
# BENCH_FLEET_AGENT (the agent executable; default bin/pulumi-ebpf).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { echo "bench:fleet: $*" >&2; }

[[ $(id -u) -eq 0 ]] || { log "needs root (mount namespaces, bpffs, starting PostgreSQL as the postgres user)"; exit 1; }
agent=${BENCH_FLEET_AGENT:-bin/pulumi-ebpf}
[[ -f $agent ]] || { log "$agent is missing: this checkout has no fleet agent"; exit 1; }

toolchain=$(bash scripts/pulumi-toolchain.sh)
log "compiling TypeScript"
npx --no-install tsc -p tsconfig.json >&2
[[ -f dist/bench/fleet.js ]] || { log "the TypeScript build has no bench/fleet.js"; exit 1; }

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[[ -x $PG_BIN/postgres ]] || { log "no PostgreSQL server at $PG_BIN (Debian: apt-get install postgresql)"; exit 1; }

work=$(mktemp -d /tmp/pulumi-ebpf-fleet-XXXXXX)
chmod 0755 "$work"
pg_pid=
cleanup() {
  # Namespaces bench/fleet.ts left behind (it unmounts its own; this is for an interrupted run).
  if [[ -d $work/ns ]]; then
    for ns in "$work"/ns/*; do [[ -e $ns ]] && umount "$ns" 2>/dev/null || true; done
    umount "$work/ns" 2>/dev/null || true
  fi
  if [[ -n $pg_pid ]]; then
    kill -INT "$pg_pid" 2>/dev/null || true # fast shutdown
    wait "$pg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A temporary PostgreSQL cluster on 127.0.0.1 (trust authentication on that
# address only), defaults otherwise: fsync and synchronous_commit on.
mkdir -p "$work/pg"
chown postgres:postgres "$work/pg"
runuser -u postgres -- "$PG_BIN/initdb" -D "$work/pg/data" -U postgres -A trust --no-instructions >/dev/null
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
# setpriv execs (runuser would fork), so $! is the server itself and the
# SIGINT of cleanup reaches it.
setpriv --reuid=postgres --regid=postgres --init-groups -- \
  "$PG_BIN/postgres" -D "$work/pg/data" -h 127.0.0.1 -p "$port" -k "$work/pg" >"$work/pg/server.log" 2>&1 &
pg_pid=$!
for _ in $(seq 1 100); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && break
  sleep 0.2
done
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" || { log "PostgreSQL did not start:"; cat "$work/pg/server.log" >&2; exit 1; }
"$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres fleet
log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"

# The namespaces' files live on a private bind mount (a persistent mount
# namespace cannot be bound onto a shared mount).
mkdir -p "$work/ns"
mount --bind "$work/ns" "$work/ns"
mount --make-private "$work/ns"

export PATH="$toolchain:$PATH"
export BENCH_FLEET_WORK=$work
export BENCH_FLEET_PG_URL="postgres://postgres@127.0.0.1:$port/fleet?sslmode=disable"
export BENCH_FLEET_PG_PORT=$port
export BENCH_FLEET_PG_BIN=$PG_BIN
node dist/bench/fleet.js
