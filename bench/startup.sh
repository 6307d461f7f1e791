#!/usr/bin/env bash
# The startup benchmark of BENCHMARKS.md: seeds a store with 1,000,000 apps (1,000 orgs,
# one secret each), then starts Portcullis pinned to CPU 0 and measures the time from
# process start to the first `/readyz` 200, and the server's RSS once ready (VmRSS) and
# at its peak so far (VmHWM), from /proc/<pid>/status. Prints one table row.
#
#   bench/startup.sh                # 1,000,000 apps
#   APPS=1000 bench/startup.sh      # a quick check that everything works
#
# Settings (environment): APPS (1000000), ORGS (1000), RUNS (starts measured on the same
# store, 3), PORT (18080), SERVER_CPU (0). Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

APPS=${APPS:-1000000}
ORGS=${ORGS:-1000}
RUNS=${RUNS:-3}
PORT=${PORT:-18080}
SERVER_CPU=${SERVER_CPU:-0}
ADMIN_TOKEN=bench-admin-token-0123456789abcdefghijklmn

say() { printf '== %s\n' "$*" >&2; }

for tool in curl taskset; do
  command -v "$tool" >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl util-linux >/dev/null
  }
done

say "building release (portcullis)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release -q -p portcullis

work=$(mktemp -d /tmp/portcullis-startup.XXXXXX)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cp "$CARGO_TARGET_DIR/release/portcullis" "$work/portcullis"
pc="$work/portcullis"

say "seeding $ORGS orgs, $APPS apps"
seed_start=$(date +%s.%N)
"$pc" bench-seed --orgs "$ORGS" --apps "$APPS" --data-dir "$work/data" >&2
seed_s=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
db_mib=$(du -m "$work/data/portcullis.db" | cut -f1)

status() { awk -v k="$2:" '$1 == k { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

echo
echo "| apps | seed | db size | run | time to /readyz 200 | RSS when ready | peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for run in $(seq "$RUNS"); do
  start=$(date +%s.%N)
  PORTCULLIS_ADMIN_TOKEN=$ADMIN_TOKEN taskset -c "$SERVER_CPU" "$pc" serve \
    --data-dir "$work/data" --listen "127.0.0.1:$PORT" --log-level warn 2> "$work/server.log" &
  server=$!
  # Poll every 10 ms for at most 120 s.
  ready=""
  for _ in $(seq 12000); do
    if curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; then ready=1; break; fi
    kill -0 "$server" 2>/dev/null || { say "the server exited:"; cat "$work/server.log" >&2; exit 1; }
    sleep 0.01
  done
  [ -n "$ready" ] || { say "no /readyz 200 within 120 s"; cat "$work/server.log" >&2; exit 1; }
  took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  echo "| $APPS | ${seed_s} s | ${db_mib} MiB | $run | ${took} s | $(status "$server" VmRSS) MiB | $(status "$server" VmHWM) MiB |"
  kill "$server"; wait "$server" 2>/dev/null || true
  server=""
done
