#!/usr/bin/env bash
# The HTTP load benchmark of BENCHMARKS.md, in one command: builds release, seeds a store
# (1,000 orgs, 100,000 apps), runs Portcullis pinned to CPU 0, drives it from CPU 1 with
# wrk (and portcullis-load for the fixed-rate p99), then does the same for the peer
# (oidc-provider, token and introspection loads), and prints one table.
#
#   bench/load.sh                       # the full run (10 s a load)
#   DURATION=2 APPS=1000 bench/load.sh  # a quick check that everything works
#
# Settings (environment): DURATION (seconds a load, 10), ORGS (1000), APPS (100000),
# SAMPLE (apps whose credentials drive the load, 300), CONNECTIONS (64), NEVER_SEEN
# (tokens minted for the never-seen load, 20000 x DURATION), PORT (18080), PEER_PORT
# (18090), SKIP_PEER=1 (Portcullis only), SERVER_CPU (0), LOAD_CPU (1), USAGE_ROUNDS
# (alternating rounds of load (a) with usage analytics on and off, 3; 0 skips them).
# Every process it starts is stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

DURATION=${DURATION:-10}
ORGS=${ORGS:-1000}
APPS=${APPS:-100000}
SAMPLE=${SAMPLE:-300}
CONNECTIONS=${CONNECTIONS:-64}
NEVER_SEEN=${NEVER_SEEN:-$((20000 * DURATION))}
PORT=${PORT:-18080}
PEER_PORT=${PEER_PORT:-18090}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_PEER=${SKIP_PEER:-}
USAGE_ROUNDS=${USAGE_ROUNDS:-3}
ADMIN_TOKEN=bench-admin-token-0123456789abcdefghijklmn

say() { printf '== %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------
need_apt=""
command -v wrk >/dev/null || need_apt="$need_apt wrk"
command -v curl >/dev/null || need_apt="$need_apt curl"
command -v taskset >/dev/null || need_apt="$need_apt util-linux"
if [ -z "$SKIP_PEER" ] && ! command -v npm >/dev/null; then need_apt="$need_apt nodejs npm"; fi
if [ -n "$need_apt" ]; then
  say "installing$need_apt"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt >/dev/null
fi

say "building release (portcullis, portcullis-load)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release -q -p portcullis -p portcullis-load

work=$(mktemp -d /tmp/portcullis-load.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
# The shared target dir may be rebuilt by someone else meanwhile: run private copies.
mkdir "$work/bin"
cp "$CARGO_TARGET_DIR/release/portcullis" "$CARGO_TARGET_DIR/release/portcullis-load" "$work/bin/"
pc="$work/bin/portcullis"
load="taskset -c $LOAD_CPU $work/bin/portcullis-load"
wrk_run="taskset -c $LOAD_CPU wrk -t1 -c$CONNECTIONS --latency"

# Poll a URL until it answers 2xx, at most 60 s; fail with the process's log otherwise.
wait_ready() {
  local url=$1 log=$2 pid=$3
  for _ in $(seq 600); do
    if curl -sf -o /dev/null "$url"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "the process exited before $url answered:"; cat "$log" >&2; exit 1
    fi
    sleep 0.1
  done
  say "$url did not answer within 60 s:"; cat "$log" >&2; exit 1
}

# One wrk load: run it, keep its output in $work/<name>.wrk, and set RPS, P50, P99 and
# ERRORS (non-2xx responses plus socket errors) from it.
#
# It also says which side bounds the figure: the CPU time the server (process $target_pid)
# and wrk each used over the load's wall time (SERVER_BUSY, LOAD_BUSY: 100 % is one
# core saturated) and the server's CPU time per request (CPU_US). A server core below
# ~95 % busy while wrk's is near 100 % means the load generator, not the server, is the
# limit.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wrk_load() {
  local name=$1 script=$2 url=$3 seconds=$4
  local hz t0 w0 w1 s0 s1
  hz=$(getconf CLK_TCK)
  s0=$(cpu_ticks "$target_pid"); t0=$(date +%s.%N)
  # bash's `times` (run in this shell, not a subshell): its children's CPU time.
  times > "$work/times0"
  $wrk_run -d"${seconds}s" -s "$repo/bench/wrk/$script" "$url" > "$work/$name.wrk" 2>&1 || {
    say "wrk failed for $name:"; cat "$work/$name.wrk" >&2; exit 1
  }
  times > "$work/times1"; s1=$(cpu_ticks "$target_pid")
  w0=$(child_cpu "$work/times0"); w1=$(child_cpu "$work/times1")
  local wall
  wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  SERVER_BUSY=$(awk -v d=$((s1 - s0)) -v hz="$hz" -v w="$wall" 'BEGIN { printf "%.0f%%", 100 * d / hz / w }')
  LOAD_BUSY=$(awk -v a="$w0" -v b="$w1" -v w="$wall" 'BEGIN { printf "%.0f%%", 100 * (b - a) / w }')
  RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$work/$name.wrk")
  P50=$(awk '$1 == "50%" { print $2 }' "$work/$name.wrk")
  P99=$(awk '$1 == "99%" { print $2 }' "$work/$name.wrk")
  local non2xx socket
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$work/$name.wrk")
  socket=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$work/$name.wrk")
  ERRORS=$(( ${non2xx:-0} + ${socket:-0} ))
  local total
  total=$(awk '/requests in/ { print $1 }' "$work/$name.wrk")
  CPU_US=$(awk -v d=$((s1 - s0)) -v hz="$hz" -v n="${total:-0}" 'BEGIN { if (n > 0) printf "%.1f", 1e6 * d / hz / n; else print "-" }')
  say "$name: $RPS req/s, p50 $P50, p99 $P99, $ERRORS errors; server core $SERVER_BUSY busy, $CPU_US us CPU a request; wrk core $LOAD_BUSY busy"
}

# User + system seconds of the shell's finished children, from `times` output (line 2).
child_cpu() {
  awk 'NR == 2 { gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }' "$1"
}

# A request that must succeed before a load is measured: shows the answer otherwise.
must() {
  local what=$1; shift
  local out
  if ! out=$(curl -sS -f "$@" 2>&1); then
    say "$what failed: $out"; exit 1
  fi
  printf '%s' "$out"
}

first_row() { grep -v '^#' "$1" | head -1; }

declare -A rps p50 p99 errs busy lbusy cpu
record() {
  rps[$1]=$RPS; p50[$1]=$P50; p99[$1]=$P99; errs[$1]=$ERRORS
  busy[$1]=$SERVER_BUSY; lbusy[$1]=$LOAD_BUSY; cpu[$1]=$CPU_US
}

# --- Portcullis ------------------------------------------------------------------------
say "seeding $ORGS orgs, $APPS apps (credentials of $SAMPLE)"
$pc bench-seed --orgs "$ORGS" --apps "$APPS" --sample "$SAMPLE" \
  --credentials-out "$work/creds.tsv" --data-dir "$work/data" >&2
# The store of load (f)'s second server, copied before either server writes to it.
[ "$USAGE_ROUNDS" -gt 0 ] && cp -a "$work/data" "$work/data-off"

say "starting Portcullis on CPU $SERVER_CPU"
api="http://127.0.0.1:$PORT"
PORTCULLIS_ADMIN_TOKEN=$ADMIN_TOKEN taskset -c "$SERVER_CPU" "$pc" serve \
  --data-dir "$work/data" --listen "127.0.0.1:$PORT" --log-level warn 2> "$work/server.log" &
server=$!
pids+=("$server")
target_pid=$server
wait_ready "$api/readyz" "$work/server.log" "$server"

say "minting one token per sampled app, and $NEVER_SEEN tokens for the never-seen load"
$load mint --url "$api" --credentials "$work/creds.tsv" --out "$work/tokens.tsv"
$load mint --url "$api" --credentials "$work/creds.tsv" --count "$NEVER_SEEN" --out "$work/fresh.tsv"

IFS=$'\t' read -r tok cid org res < <(first_row "$work/tokens.tsv")
must "a gateway check" -o /dev/null "$api/gateway/v1/check?resource=$res" \
  -H "Authorization: Bearer $tok" -H "x-api-key: $cid" -H "x-gw-ims-org-id: $org"

export CREDENTIALS_FILE="$work/creds.tsv" TOKENS_FILE="$work/tokens.tsv"
say "(a) gateway check, tokens seen before: warm-up, then $DURATION s"
wrk_load warmup gateway.lua "$api" 2
wrk_load gateway_seen gateway.lua "$api" "$DURATION"; record gateway_seen
peak=$RPS

say "(b) gateway check, every token never seen before"
TOKENS_FILE="$work/fresh.tsv" wrk_load gateway_fresh gateway.lua "$api" "$DURATION"
record gateway_fresh
passes=$(awk '/^tokens file passes:/ { print $NF }' "$work/gateway_fresh.wrk")
if [ "${passes:-1}" -gt 1 ]; then
  say "warning: the $NEVER_SEEN fresh tokens ran out (passes: $passes): raise NEVER_SEEN"
  errs[gateway_fresh]="${errs[gateway_fresh]} (tokens reused)"
fi

say "(c) client_credentials tokens"
wrk_load token token.lua "$api/oauth/token" "$DURATION"; record token

say "(d) introspection"
intro=$(must "an introspection" -u "$cid:$(awk -F'\t' -v c="$cid" '$1 == c { print $2 }' "$work/creds.tsv")" \
  -d "token=$tok" "$api/oauth/introspect")
case $intro in *'"active":true'*) ;; *) say "introspection is not active: $intro"; exit 1 ;; esac
wrk_load introspect introspect.lua "$api/oauth/introspect" "$DURATION"; record introspect

target=$(( peak * 80 / 100 ))
say "(e) gateway check, tokens seen before, open loop at $target req/s (80 % of $peak)"
line=$($load rate --url "$api" --tokens "$work/tokens.tsv" --rate "$target" \
  --duration "$DURATION" --connections "$CONNECTIONS")
say "$line"
field() { printf '%s\n' "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
us() { awk -v u="$1" 'BEGIN { if (u >= 1000) printf "%.2fms", u / 1000; else printf "%dus", u }'; }
rps[rate]=$(field achieved); p50[rate]=$(us "$(field p50_us)"); p99[rate]=$(us "$(field p99_us)")
errs[rate]=$(field errors)

# (f) What counting usage costs: a second server on a copy of the seeded store with
# `--usage-analytics false`, pinned to the same core, and load (a) alternating between the
# two, so that both see the same machine. The idle one waits on its sockets meanwhile.
if [ "$USAGE_ROUNDS" -gt 0 ]; then
  off_port=$((PORT + 1))
  api_off="http://127.0.0.1:$off_port"
  say "(f) starting a second Portcullis with usage analytics off on CPU $SERVER_CPU"
  PORTCULLIS_ADMIN_TOKEN=$ADMIN_TOKEN taskset -c "$SERVER_CPU" "$pc" serve \
    --data-dir "$work/data-off" --listen "127.0.0.1:$off_port" --log-level warn \
    --usage-analytics false 2> "$work/server-off.log" &
  server_off=$!
  pids+=("$server_off")
  wait_ready "$api_off/readyz" "$work/server-off.log" "$server_off"
  $load mint --url "$api_off" --credentials "$work/creds.tsv" --out "$work/tokens-off.tsv"
  target_pid=$server_off
  TOKENS_FILE="$work/tokens-off.tsv" wrk_load warmup_off gateway.lua "$api_off" 2
  on_sum=0; off_sum=0; rounds=""
  for r in $(seq "$USAGE_ROUNDS"); do
    target_pid=$server
    wrk_load "usage_on_$r" gateway.lua "$api" "$DURATION"; record usage_on
    on=$RPS
    target_pid=$server_off
    TOKENS_FILE="$work/tokens-off.tsv" wrk_load "usage_off_$r" gateway.lua "$api_off" "$DURATION"
    record usage_off
    on_sum=$((on_sum + on)); off_sum=$((off_sum + RPS))
    rounds="$rounds $(awk -v a="$on" -v b="$RPS" 'BEGIN { printf "%.3f", a / b }')"
  done
  rps[usage_on]=$((on_sum / USAGE_ROUNDS)); rps[usage_off]=$((off_sum / USAGE_ROUNDS))
  usage_ratio=$(awk -v a="$on_sum" -v b="$off_sum" 'BEGIN { printf "%.3f", a / b }')
  say "(f) usage analytics on / off: $usage_ratio (rounds:$rounds)"
  kill "$server_off"; wait "$server_off" 2>/dev/null || true
fi

kill "$server"; wait "$server" 2>/dev/null || true

# --- the peer ----------------------------------------------------------------------------
if [ -z "$SKIP_PEER" ]; then
  say "installing the peer (bench/peer, npm)"
  (cd "$repo/bench/peer" && npm install --no-audit --no-fund --silent >&2)
  say "node $(node --version), oidc-provider $(node -p "require('$repo/bench/peer/node_modules/oidc-provider/package.json').version")"
  peer="http://127.0.0.1:$PEER_PORT"
  NODE_ENV=production CREDENTIALS_FILE="$work/creds.tsv" PORT=$PEER_PORT \
    taskset -c "$SERVER_CPU" node "$repo/bench/peer/oidc-provider.mjs" > "$work/peer.log" 2>&1 &
  peer_pid=$!
  pids+=("$peer_pid")
  target_pid=$peer_pid
  wait_ready "$peer/.well-known/openid-configuration" "$work/peer.log" "$peer_pid"

  say "peer (c) client_credentials tokens"
  wrk_load peer_token token.lua "$peer/oauth/token" "$DURATION"; record peer_token
  # Minted after the token load: the peer keeps its tokens in a bounded in-memory store.
  $load mint --url "$peer" --credentials "$work/creds.tsv" --out "$work/peer_tokens.tsv"
  IFS=$'\t' read -r ptok pcid _ _ < <(first_row "$work/peer_tokens.tsv")
  intro=$(must "a peer introspection" -u "$pcid:$(awk -F'\t' -v c="$pcid" '$1 == c { print $2 }' "$work/creds.tsv")" \
    -d "token=$ptok" "$peer/oauth/introspect")
  case $intro in *'"active":true'*) ;; *) say "peer introspection is not active: $intro"; exit 1 ;; esac
  say "peer (d) introspection"
  TOKENS_FILE="$work/peer_tokens.tsv" wrk_load peer_introspect introspect.lua "$peer/oauth/introspect" "$DURATION"
  record peer_introspect
  kill "$peer_pid"; wait "$peer_pid" 2>/dev/null || true
fi

# --- the table ---------------------------------------------------------------------------
echo
echo "Portcullis $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
echo "$ORGS orgs, $APPS apps, $SAMPLE apps driving the load, $CONNECTIONS connections, $DURATION s a load"
echo
echo "| load | req/s | p50 | p99 | errors | server core busy | server CPU a request | load core busy | peer req/s | peer p50 | peer p99 | Portcullis / peer |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
row() {
  local label=$1 key=$2 peer_key=${3:-}
  local prps="-" pp50="-" pp99="-" ratio="-"
  if [ -n "$peer_key" ] && [ -n "${rps[$peer_key]:-}" ]; then
    prps=${rps[$peer_key]}; pp50=${p50[$peer_key]}; pp99=${p99[$peer_key]}
    ratio=$(awk -v a="${rps[$key]}" -v b="$prps" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }')
  fi
  local cpu_cell="-"
  [ -n "${cpu[$key]:-}" ] && [ "${cpu[$key]}" != "-" ] && cpu_cell="${cpu[$key]} us"
  echo "| $label | ${rps[$key]} | ${p50[$key]} | ${p99[$key]} | ${errs[$key]} | ${busy[$key]:--} | $cpu_cell | ${lbusy[$key]:--} | $prps | $pp50 | $pp99 | $ratio |"
}
row "(a) gateway check, ES256 bearer + x-api-key + org + resource, token seen before" gateway_seen
row "(b) same, every token never seen (signature verified)" gateway_fresh
row "(c) client_credentials token (client_secret_basic)" token peer_token
row "(d) introspection" introspect peer_introspect
row "(e) (a) open loop at 80 % of its peak (portcullis-load, latency from due time)" rate
if [ "$USAGE_ROUNDS" -gt 0 ]; then
  row "(f) (a) with usage analytics on (mean of $USAGE_ROUNDS rounds; p50/p99 of the last)" usage_on
  row "(f) (a) with usage analytics off, same rounds alternating" usage_off
  echo
  echo "Usage analytics on / off, load (a): $usage_ratio (per round:$rounds; budget: at least 0.97)"
fi
