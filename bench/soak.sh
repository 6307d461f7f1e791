#!/usr/bin/env bash
# The soak test: holds 80 % of the peak gateway throughput (tokens seen before)
# for a long time and reports, every INTERVAL seconds, the rate achieved, the errors, the
# p99 latency and the server's RSS, so that a leak, a slowdown or errors that only appear
# after minutes show up as a trend. Same store and pinning as bench/load.sh.
#
#   bench/soak.sh                          # 10 minutes at 80 % of a measured peak
#   DURATION=60 APPS=1000 bench/soak.sh    # a quick check that everything works
#   RATE=20000 bench/soak.sh               # a fixed rate instead of 80 % of the peak
#
# Settings (environment): DURATION (seconds in all, 600), INTERVAL (seconds a sample, 10),
# RATE (requests/s; default 80 % of a 5 s wrk peak), ORGS (1000), APPS (100000), SAMPLE
# (apps driving the load, 300), CONNECTIONS (64), PORT (18080), SERVER_CPU (0), LOAD_CPU (1),
# SERVER_ARGS (extra `serve` flags, e.g. "--resync-interval 60" for a full view rebuild every
# minute instead of every five, so that a 10-minute run crosses ten of them).
# Exits non-zero if any request failed. Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-10}
RATE=${RATE:-}
ORGS=${ORGS:-1000}
APPS=${APPS:-100000}
SAMPLE=${SAMPLE:-300}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18080}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SERVER_ARGS=${SERVER_ARGS:-}
ADMIN_TOKEN=bench-admin-token-0123456789abcdefghijklmn

say() { printf '== %s\n' "$*" >&2; }

need_apt=""
for tool in wrk curl taskset; do command -v "$tool" >/dev/null || need_apt="$need_apt $tool"; done
if [ -n "$need_apt" ]; then
  say "installing$need_apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${need_apt/taskset/util-linux} >/dev/null
fi

say "building release (portcullis, portcullis-load)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release -q -p portcullis -p portcullis-load

work=$(mktemp -d /tmp/portcullis-soak.XXXXXX)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/bin"
cp "$CARGO_TARGET_DIR/release/portcullis" "$CARGO_TARGET_DIR/release/portcullis-load" "$work/bin/"
pc="$work/bin/portcullis"
load="taskset -c $LOAD_CPU $work/bin/portcullis-load"

say "seeding $ORGS orgs, $APPS apps (credentials of $SAMPLE)"
$pc bench-seed --orgs "$ORGS" --apps "$APPS" --sample "$SAMPLE" \
  --credentials-out "$work/creds.tsv" --data-dir "$work/data" >&2

api="http://127.0.0.1:$PORT"
PORTCULLIS_ADMIN_TOKEN=$ADMIN_TOKEN taskset -c "$SERVER_CPU" "$pc" serve \
  --data-dir "$work/data" --listen "127.0.0.1:$PORT" --log-level warn $SERVER_ARGS 2> "$work/server.log" &
server=$!
for _ in $(seq 600); do
  curl -sf -o /dev/null "$api/readyz" && break
  kill -0 "$server" 2>/dev/null || { say "the server exited:"; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf -o /dev/null "$api/readyz" || { say "the server did not become ready"; exit 1; }

rss() { awk '$1 == "VmRSS:" { printf "%.0f", $2 / 1024 }' "/proc/$server/status"; }

say "minting one token per sampled app"
$load mint --url "$api" --credentials "$work/creds.tsv" --out "$work/tokens.tsv"

if [ -z "$RATE" ]; then
  say "measuring the peak (wrk, 5 s, after a 2 s warm-up)"
  export TOKENS_FILE="$work/tokens.tsv"
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s -s "$repo/bench/wrk/gateway.lua" "$api" >/dev/null
  peak=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d5s -s "$repo/bench/wrk/gateway.lua" "$api" \
    | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
  RATE=$(( peak * 80 / 100 ))
  say "peak $peak req/s: holding $RATE req/s"
fi

field() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

echo
echo "Portcullis $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'), $APPS apps, $RATE req/s for $DURATION s, a sample every $INTERVAL s"
echo
echo "| t (s) | achieved req/s | errors | p50 | p99 | max | server RSS (MiB) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
echo "| 0 | - | - | - | - | - | $(rss) |"
total_errors=0 total_requests=0 elapsed=0 rss_first=$(rss)
while [ "$elapsed" -lt "$DURATION" ]; do
  step=$INTERVAL
  [ $((elapsed + step)) -gt "$DURATION" ] && step=$((DURATION - elapsed))
  line=$($load rate --url "$api" --tokens "$work/tokens.tsv" --rate "$RATE" \
    --duration "$step" --connections "$CONNECTIONS")
  elapsed=$((elapsed + step))
  errors=$(field "$line" errors); requests=$(field "$line" requests)
  total_errors=$((total_errors + errors)); total_requests=$((total_requests + requests))
  kill -0 "$server" 2>/dev/null || { say "the server died:"; tail -20 "$work/server.log" >&2; exit 1; }
  echo "| $elapsed | $(field "$line" achieved) | $errors | $(field "$line" p50_us) us | $(field "$line" p99_us) us | $(field "$line" max_us) us | $(rss) |"
done
echo
echo "requests: $total_requests, errors: $total_errors, RSS: $rss_first MiB at the start, $(rss) MiB at the end"
[ "$total_errors" -eq 0 ]
