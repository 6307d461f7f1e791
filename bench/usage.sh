#!/usr/bin/env bash
# What usage analytics hold when the gateway is flooded with made-up credentials: a
# release server (pinned to CPU 0, usage analytics on, the failure limit off so every
# request reaches the decision) answers gateway checks that each name a random api key
# and a random resource id (bench/wrk/garbage.lua, wrk on CPU 1) for DURATION seconds.
# It prints the rate, the server's resident memory before and after, the usage rows in
# the database, and the counter's folded total: made-up ids must make no rows of their
# own, so rows grow with minutes, not with requests.
#
#   bench/usage.sh                 # 60 s
#   DURATION=10 bench/usage.sh     # a quick check
#
# The memory of many *real* keys (apps x resources) is measured in process:
#   cargo run --release -p portcullis-core --example usage_memory -- 100000 10
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
DURATION=${DURATION:-60}
PORT=${PORT:-18180}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ADMIN_TOKEN=bench-admin-token-0123456789abcdefghijklmn
say() { printf '== %s\n' "$*" >&2; }

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
say "building release (portcullis, portcullis-load)"
cargo build --release -q -p portcullis -p portcullis-load

work=$(mktemp -d /tmp/portcullis-usage.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
cp "$CARGO_TARGET_DIR/release/portcullis" "$CARGO_TARGET_DIR/release/portcullis-load" "$work/"

"$work/portcullis" bench-seed --orgs 10 --apps 1000 --sample 10 \
  --credentials-out "$work/creds.tsv" --data-dir "$work/data" >&2
api="http://127.0.0.1:$PORT"
PORTCULLIS_ADMIN_TOKEN=$ADMIN_TOKEN taskset -c "$SERVER_CPU" "$work/portcullis" serve \
  --data-dir "$work/data" --listen "127.0.0.1:$PORT" --log-level warn --failure-limit 0 \
  2> "$work/server.log" &
server=$!
for _ in $(seq 600); do curl -sf -o /dev/null "$api/readyz" && break; sleep 0.1; done
"$work/portcullis-load" mint --url "$api" --credentials "$work/creds.tsv" --out "$work/tokens.tsv"

rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }
hwm() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }
metric() { curl -s "$api/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# A warm-up, so that the memory before is that of a server that has answered.
TOKENS_FILE="$work/tokens.tsv" taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s \
  -s "$repo/bench/wrk/garbage.lua" "$api" > /dev/null
rss0=$(rss)
TOKENS_FILE="$work/tokens.tsv" taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${DURATION}s" \
  -s "$repo/bench/wrk/garbage.lua" "$api" > "$work/garbage.wrk"
rate=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$work/garbage.wrk")
total=$(awk '/requests in/ { print $1 }' "$work/garbage.wrk")
rss1=$(rss); peak=$(hwm)
folded=$(metric portcullis_usage_folded_total)
# Stopping flushes what is left, so the database then holds every count.
kill "$server"; wait "$server" 2>/dev/null || true; server=""
echo
echo "$total gateway checks with a random api key and resource id in $DURATION s ($rate a second), after a 2 s warm-up"
echo "server RSS: $rss0 MiB before, $rss1 MiB after, $peak MiB at most"
echo "portcullis_usage_folded_total: ${folded:-?}"
echo "usage rows in the database after the run (every request since the start):"
python3 - "$work/data/portcullis.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for table, at in (("usage_minute", "minute"), ("usage_hour", "hour")):
    n, total = db.execute(f"SELECT COUNT(*), SUM(count) FROM {table}").fetchone()
    print(f"  {table}: {n} rows holding {total} requests")
print("  minute rows by what they count (subject, id, app, outcome):")
for row in db.execute(
    "SELECT subject, subject_id = '', client_id = '', outcome, COUNT(*), SUM(count) "
    "FROM usage_minute GROUP BY 1, 2, 3, 4 ORDER BY 6 DESC"
):
    subject, no_id, no_app, outcome, n, total = row
    print(f"    {subject}{' (none)' if no_id else ''}, {'no app' if no_app else 'an app'}, {outcome}: {n} rows, {total} requests")
PY
