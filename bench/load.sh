#!/usr/bin/env bash
# The HTTP load benchmark of BENCHMARKS.md, in one command: builds release, seeds a store
# (1,000 orgs, 100,000 apps), runs Portcullis pinned to CPU 0, drives it from CPU 1 with
# wrk (and portcullis-load for the fixed-rate p99) through loads (a)-(g) ((g): (a) with
# DPoP, a fresh proof each request, given as a share of (a)), then does the same, one after
# the other on the same core, for
# - the peers: oidc-provider twice, issuing opaque tokens (token and introspection loads)
#   and issuing ES256 JWTs as Portcullis does (token load); the token row compares
#   Portcullis with the faster of the two;
# - the controls: Apache httpd with mod_auth_openidc validating the very ES256 tokens
#   Portcullis issued (the gateway loads' peer: a bearer check, nothing more), and nginx
#   answering an empty 200 to the same request (the machine's HTTP ceiling: every gateway
#   load is also given as a fraction of it, and (e)'s p99 over nginx's at the same rate);
# and prints one table. Only ratios within one run mean anything: the machines are shared.
#
#   bench/load.sh                       # the full run (10 s a load)
#   DURATION=2 APPS=1000 bench/load.sh  # a quick check that everything works
#
# Settings (environment): DURATION (seconds a load, 10), ORGS (1000), APPS (100000),
# SAMPLE (apps whose credentials drive the load, 300), CONNECTIONS (64), NEVER_SEEN
# (tokens minted for the never-seen load, 20000 x DURATION), DPOP_PROOFS (requests with a
# fresh DPoP proof each for (g)'s warm-up and load, 25000 x (DURATION + 2); made right
# before (g), and the server takes a proof for 60 s: keep DURATION at 30 or below),
# DPOP_PATH (the client path (g)'s proofs name, /api), PORT (18080; PORT+1 for (f)),
# PEER_PORT (18090; PEER_PORT+1 for the JWT peer), APACHE_PORT (18092), NGINX_PORT
# (18093), JWKS_PORT (18094, the https copy of Portcullis's JWKS Apache reads),
# SKIP_PEER=1 (no oidc-provider), SKIP_CONTROLS=1 (no Apache, no nginx), SERVER_CPU (0),
# LOAD_CPU (1), USAGE_ROUNDS (alternating rounds of load (a) with usage analytics on and
# off, 3; 0 skips them).
#
# Missing tools are installed with apt-get (wrk; node and npm for the peers; apache2,
# libapache2-mod-auth-openidc, nginx and openssl for the controls). If the controls'
# packages cannot be installed the run goes on without them and says so above the table.
# On a host that starts services on install, installing apache2 or nginx also starts their
# system services (idle, port 80): stop those before measuring.
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
DPOP_PROOFS=${DPOP_PROOFS:-$((25000 * (DURATION + 2)))}
DPOP_PATH=${DPOP_PATH:-/api}
PORT=${PORT:-18080}
PEER_PORT=${PEER_PORT:-18090}
APACHE_PORT=${APACHE_PORT:-18092}
NGINX_PORT=${NGINX_PORT:-18093}
JWKS_PORT=${JWKS_PORT:-18094}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_PEER=${SKIP_PEER:-}
SKIP_CONTROLS=${SKIP_CONTROLS:-}
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
  # shellcheck disable=SC2086 # a list of package names, split on purpose
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt >/dev/null
fi

# The controls (Apache httpd + mod_auth_openidc, nginx), Debian's packages. SKIP_CONTROLS
# ends up holding why they did not run, which the output states.
export PATH=$PATH:/usr/sbin
apache_modules=/usr/lib/apache2/modules
have_controls() {
  command -v apache2 >/dev/null && command -v nginx >/dev/null && command -v openssl >/dev/null \
    && [ -f "$apache_modules/mod_auth_openidc.so" ]
}
if [ -n "$SKIP_CONTROLS" ]; then
  SKIP_CONTROLS="SKIP_CONTROLS is set"
elif ! have_controls; then
  say "installing apache2 libapache2-mod-auth-openidc nginx openssl (the controls)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    apache2 libapache2-mod-auth-openidc nginx openssl >/dev/null; } || ! have_controls; then
    SKIP_CONTROLS="apache2, libapache2-mod-auth-openidc or nginx could not be installed"
    say "WARNING: no controls in this run: $SKIP_CONTROLS"
  fi
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
  rm -rf "$work" ${apache_dir:+"$apache_dir"}
}
trap cleanup EXIT
# The shared target dir may be rebuilt by someone else meanwhile: run private copies.
mkdir "$work/bin"
cp "$CARGO_TARGET_DIR/release/portcullis" "$CARGO_TARGET_DIR/release/portcullis-load" "$work/bin/"
pc="$work/bin/portcullis"
load="taskset -c $LOAD_CPU $work/bin/portcullis-load"
wrk_run="taskset -c $LOAD_CPU wrk -t1 -c$CONNECTIONS --latency"

# Poll a URL until it answers 2xx, at most 60 s; fail with the process's log otherwise.
# Further arguments go to curl (-k for a self-signed certificate).
wait_ready() {
  local url=$1 log=$2 pid=$3
  shift 3
  for _ in $(seq 600); do
    if curl -sf "$@" -o /dev/null "$url"; then return 0; fi
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

# The JOSE header of a compact JWS, decoded (empty if it is not one).
jwt_header() {
  local seg=${1%%.*}
  [ "$(printf '%s' "$1" | tr -cd . | wc -c)" -eq 2 ] || return 0
  seg=$(printf '%s' "$seg" | tr '_-' '/+')
  case $(( ${#seg} % 4 )) in 2) seg="$seg==" ;; 3) seg="$seg=" ;; esac
  printf '%s' "$seg" | base64 -d 2>/dev/null || true
}
# Fail unless a token is a JWS signed with ES256.
must_be_es256() {
  local what=$1 header
  header=$(jwt_header "$2")
  if ! printf '%s' "$header" | grep -Eq '"alg" *: *"ES256"'; then
    say "$what is not an ES256 JWT (header: ${header:-none}): ${2:0:60}…"; exit 1
  fi
  say "$what: JWT, header $header"
}

declare -A rps p50 p99 p99us errs busy lbusy cpu
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
must_be_es256 "Portcullis's access token" "$tok"
# Apache validates the same tokens later, against a copy of this key set.
if [ -z "$SKIP_CONTROLS" ]; then
  mkdir "$work/jwks"
  must "Portcullis's JWKS" "$api/.well-known/jwks.json" > "$work/jwks/jwks.json"
fi

export CREDENTIALS_FILE="$work/creds.tsv" TOKENS_FILE="$work/tokens.tsv"
say "(a) gateway check, tokens seen before: warm-up, then $DURATION s"
wrk_load warmup gateway.lua "$api" 2
wrk_load gateway_seen gateway.lua "$api" "$DURATION"; record gateway_seen
peak=$RPS

# (g) runs right after (a), on the same server, since it is stated as a share of (a).
# portcullis-load makes one key and one DPoP-bound token per app, then one request line
# per proof: GET /gateway/v1/check/<resource>$DPOP_PATH with the app's token (seen before
# after the first round) and a proof of its own (a new jti, iat now) for
# http://<Host>$DPOP_PATH. The first line is checked by hand: 200, then 401 when replayed.
# The warm-up starts at the second, the load where the warm-up stopped: no proof is sent
# twice.
say "(g) gateway check with DPoP: $DPOP_PROOFS fresh proofs, warm-up, then $DURATION s"
dpop_made=$(date +%s)
$load dpop --url "$api" --credentials "$work/creds.tsv" --count "$DPOP_PROOFS" \
  --path "$DPOP_PATH" --out "$work/dpop.tsv"
IFS=$'\t' read -r dtok dcid dorg dres dproof < <(first_row "$work/dpop.tsv")
dpop_headers=(-H "Authorization: DPoP $dtok" -H "DPoP: $dproof" -H "x-api-key: $dcid" -H "x-gw-ims-org-id: $dorg")
must "a gateway check with DPoP" -o /dev/null "$api/gateway/v1/check/$dres$DPOP_PATH" "${dpop_headers[@]}"
replayed=$(curl -s -o /dev/null -w '%{http_code}' "$api/gateway/v1/check/$dres$DPOP_PATH" "${dpop_headers[@]}")
if [ "$replayed" = 200 ]; then say "a replayed DPoP proof was accepted: the load would not check proofs"; exit 1; fi
say "DPoP: the first proof passed, and answered $replayed when replayed"
export DPOP_FILE="$work/dpop.tsv" DPOP_PATH
DPOP_FROM=2 wrk_load dpop_warmup dpop.lua "$api" 2
next=$(awk '/^next line:/ { print $NF }' "$work/dpop_warmup.wrk")
DPOP_FROM=${next:?the warm-up did not say where it stopped} wrk_load dpop dpop.lua "$api" "$DURATION"; record dpop
passes=$(awk '/^proofs file passes:/ { print $NF }' "$work/dpop.wrk")
if [ "${passes:-1}" -gt 1 ]; then
  say "warning: the $DPOP_PROOFS proofs ran out (passes: $passes): raise DPOP_PROOFS"
  errs[dpop]="${errs[dpop]} (proofs replayed)"
fi
dpop_age=$(( $(date +%s) - dpop_made ))
if [ "$dpop_age" -gt 60 ]; then
  say "warning: (g) ended $dpop_age s after its proofs were made; the server takes them for 60 s"
  errs[dpop]="${errs[dpop]} (proofs aged out)"
fi

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

# One open-loop run of portcullis-load: gateway checks (the same request as load (a)) at a
# fixed rate; sets the row's figures, p99 in microseconds too.
us() { awk -v u="$1" 'BEGIN { if (u >= 1000) printf "%.2fms", u / 1000; else printf "%dus", u }'; }
rate_load() {
  local name=$1 url=$2 line
  line=$($load rate --url "$url" --tokens "$work/tokens.tsv" --rate "$target" \
    --duration "$DURATION" --connections "$CONNECTIONS")
  say "$name: $line"
  field() { printf '%s\n' "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
  rps[$name]=$(field achieved); p50[$name]=$(us "$(field p50_us)"); p99[$name]=$(us "$(field p99_us)")
  errs[$name]=$(field errors); p99us[$name]=$(field p99_us)
}

target=$(( peak * 80 / 100 ))
say "(e) gateway check, tokens seen before, open loop at $target req/s (80 % of $peak)"
rate_load rate "$api"

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

# --- the peers: oidc-provider with opaque tokens, then with ES256 JWTs -------------------
# Each is started alone on the server core after Portcullis has stopped, and given the same
# 2 s warm-up as Portcullis had before its loads (node compiles its hot paths meanwhile).
start_peer() {
  local format=$1 port=$2
  NODE_ENV=production CREDENTIALS_FILE="$work/creds.tsv" PORT=$port ACCESS_TOKEN_FORMAT=$format \
    taskset -c "$SERVER_CPU" node "$repo/bench/peer/oidc-provider.mjs" > "$work/peer-$format.log" 2>&1 &
  peer_pid=$!
  pids+=("$peer_pid")
  target_pid=$peer_pid
  wait_ready "http://127.0.0.1:$port/.well-known/openid-configuration" "$work/peer-$format.log" "$peer_pid"
}
if [ -z "$SKIP_PEER" ]; then
  say "installing the peer (bench/peer, npm)"
  (cd "$repo/bench/peer" && npm install --no-audit --no-fund --silent >&2)
  peer_version="oidc-provider $(node -p "require('$repo/bench/peer/node_modules/oidc-provider/package.json').version") on node $(node --version)"
  say "$peer_version"
  IFS=$'\t' read -r ccid csecret _ _ < <(first_row "$work/creds.tsv")

  say "peer, opaque tokens: (c) client_credentials tokens"
  peer="http://127.0.0.1:$PEER_PORT"
  start_peer opaque "$PEER_PORT"
  wrk_load peer_warmup token.lua "$peer/oauth/token" 2
  wrk_load peer_token token.lua "$peer/oauth/token" "$DURATION"; record peer_token
  # Minted after the token load: the peer keeps its tokens in a bounded in-memory store.
  $load mint --url "$peer" --credentials "$work/creds.tsv" --out "$work/peer_tokens.tsv"
  IFS=$'\t' read -r ptok pcid _ _ < <(first_row "$work/peer_tokens.tsv")
  intro=$(must "a peer introspection" -u "$pcid:$(awk -F'\t' -v c="$pcid" '$1 == c { print $2 }' "$work/creds.tsv")" \
    -d "token=$ptok" "$peer/oauth/introspect")
  case $intro in *'"active":true'*) ;; *) say "peer introspection is not active: $intro"; exit 1 ;; esac
  say "peer, opaque tokens: (d) introspection"
  TOKENS_FILE="$work/peer_tokens.tsv" wrk_load peer_introspect introspect.lua "$peer/oauth/introspect" "$DURATION"
  record peer_introspect
  kill "$peer_pid"; wait "$peer_pid" 2>/dev/null || true

  say "peer, ES256 JWT access tokens: (c) client_credentials tokens"
  peer_jwt="http://127.0.0.1:$((PEER_PORT + 1))"
  start_peer jwt "$((PEER_PORT + 1))"
  answer=$(must "a token from the JWT peer" -u "$ccid:$csecret" -d grant_type=client_credentials "$peer_jwt/oauth/token")
  must_be_es256 "the JWT peer's access token" "$(printf '%s' "$answer" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')"
  wrk_load peer_jwt_warmup token.lua "$peer_jwt/oauth/token" 2
  wrk_load peer_jwt_token token.lua "$peer_jwt/oauth/token" "$DURATION"; record peer_jwt_token
  kill "$peer_pid"; wait "$peer_pid" 2>/dev/null || true

  # Load (c)'s peer is the faster of the two.
  fast_peer=peer_token; fast_label="oidc-provider, opaque"
  if [ "${rps[peer_jwt_token]}" -gt "${rps[peer_token]}" ]; then
    fast_peer=peer_jwt_token; fast_label="oidc-provider, ES256 JWT"
  fi
fi

# --- the controls: Apache httpd + mod_auth_openidc, and nginx's empty 200 -----------------
# nginx, one worker process pinned to a core, running the `server` block of its third
# argument; sets nginx_pid (the master) and nginx_worker.
start_nginx() {
  local name=$1 core=$2 server_block=$3 dir="$work/nginx-$1" user_line=""
  mkdir -p "$dir/tmp"
  [ "$(id -u)" = 0 ] && user_line="user root;"
  cat > "$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
$user_line
pid $dir/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000000;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  $server_block
}
EOF
  taskset -c "$core" nginx -p "$dir" -c "$dir/nginx.conf" -e stderr > "$work/nginx-$name.log" 2>&1 &
  nginx_pid=$!
  pids+=("$nginx_pid")
}
child_of() {
  local child
  for _ in $(seq 50); do
    child=$(pgrep -P "$1" | head -1) && [ -n "$child" ] && { echo "$child"; return 0; }
    sleep 0.1
  done
  say "process $1 has no child process"; exit 1
}

if [ -z "$SKIP_CONTROLS" ]; then
  apache_version="$(apache2 -v | sed -n 's/^Server version: //p'), mod_auth_openidc $(dpkg-query -W -f '${Version}' libapache2-mod-auth-openidc 2>/dev/null || echo '?')"
  nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //')
  say "controls: $apache_version; $nginx_version"

  # mod_auth_openidc fetches a JWKS over https only: a copy of Portcullis's, served by an
  # nginx on the load core with a throwaway self-signed certificate.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
  start_nginx jwks "$LOAD_CPU" "server {
    listen 127.0.0.1:$JWKS_PORT ssl;
    ssl_certificate $work/tls.crt;
    ssl_certificate_key $work/tls.key;
    location = /jwks.json { default_type application/json; root $work/jwks; }
  }"
  jwks_pid=$nginx_pid
  wait_ready "https://127.0.0.1:$JWKS_PORT/jwks.json" "$work/nginx-jwks.log" "$jwks_pid" -k

  # Apache httpd, one process: the event MPM with a single child (ServerLimit 1) and its
  # threads. Prefork would need a process per connection to hold 64 keep-alive
  # connections at once (or serve one connection at a time with one process); event's
  # single child is the one-process server that Portcullis and nginx are here. Twice as
  # many threads as connections: with exactly one each, the event MPM counts itself full
  # and now and then drops a keep-alive connection (wrk's read errors).
  # Its files live in a directory of their own that its workers (www-data) can read.
  apache_dir=$(mktemp -d /tmp/portcullis-load-httpd.XXXXXX)
  chmod 755 "$apache_dir"
  : > "$apache_dir/empty"
  chmod 644 "$apache_dir/empty"
  user_lines=""
  [ "$(id -u)" = 0 ] && user_lines=$'User www-data\nGroup www-data'
  cat > "$apache_dir/httpd.conf" <<EOF
ServerRoot $apache_dir
ServerName 127.0.0.1
Listen 127.0.0.1:$APACHE_PORT
PidFile $apache_dir/httpd.pid
DefaultRuntimeDir $apache_dir
ErrorLog /dev/stderr
LogLevel warn
$user_lines
LoadModule mpm_event_module $apache_modules/mod_mpm_event.so
LoadModule authn_core_module $apache_modules/mod_authn_core.so
LoadModule authz_core_module $apache_modules/mod_authz_core.so
LoadModule authz_user_module $apache_modules/mod_authz_user.so
LoadModule alias_module $apache_modules/mod_alias.so
LoadModule auth_openidc_module $apache_modules/mod_auth_openidc.so
StartServers 1
ServerLimit 1
ThreadLimit $((2 * CONNECTIONS))
ThreadsPerChild $((2 * CONNECTIONS))
MaxRequestWorkers $((2 * CONNECTIONS))
MinSpareThreads 1
MaxSpareThreads $((4 * CONNECTIONS))
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
DocumentRoot $apache_dir
# The gateway check's own path, so that the same wrk script and request drive it: the
# bearer token is checked, the other headers and the query are ignored.
Alias /gateway/v1/check $apache_dir/empty
<Location /gateway/v1/check>
  AuthType oauth20
  Require valid-user
</Location>
OIDCOAuthVerifyJwksUri https://127.0.0.1:$JWKS_PORT/jwks.json
OIDCOAuthSSLValidateServer Off
EOF
  cp "$apache_dir/httpd.conf" "$work/httpd.conf"
  say "Apache httpd + mod_auth_openidc on CPU $SERVER_CPU (event MPM, one process, $((2 * CONNECTIONS)) threads)"
  apache="http://127.0.0.1:$APACHE_PORT"
  taskset -c "$SERVER_CPU" apache2 -f "$apache_dir/httpd.conf" -DFOREGROUND > "$work/apache.log" 2>&1 &
  apache_pid=$!
  pids+=("$apache_pid")
  wait_ready "$apache/empty" "$work/apache.log" "$apache_pid"
  target_pid=$(child_of "$apache_pid")

  # It must accept Portcullis's token and refuse garbage and a forged signature.
  check_status() {
    local what=$1 want=$2 token=$3 got
    got=$(curl -s -o /dev/null -w '%{http_code}' "$apache/gateway/v1/check?resource=$res" \
      -H "Authorization: Bearer $token" -H "x-api-key: $cid" -H "x-gw-ims-org-id: $org")
    if [ "$got" != "$want" ]; then
      say "Apache answered $got, not $want, to $what:"; cat "$work/apache.log" >&2; exit 1
    fi
    say "Apache: $what -> $got"
  }
  check_status "a token Portcullis issued" 200 "$tok"
  check_status "a garbage token" 401 "not-a-token"
  check_status "Portcullis's token with its signature reversed" 401 "${tok%.*}.$(printf '%s' "${tok##*.}" | rev)"

  say "Apache (a) tokens seen before: warm-up, then $DURATION s"
  wrk_load apache_warmup gateway.lua "$apache" 2
  wrk_load apache_seen gateway.lua "$apache" "$DURATION"; record apache_seen
  say "Apache (b) every token never seen before"
  TOKENS_FILE="$work/fresh.tsv" wrk_load apache_fresh gateway.lua "$apache" "$DURATION"
  record apache_fresh
  passes=$(awk '/^tokens file passes:/ { print $NF }' "$work/apache_fresh.wrk")
  [ "${passes:-1}" -gt 1 ] && errs[apache_fresh]="${errs[apache_fresh]} (tokens reused)"
  kill "$apache_pid"; wait "$apache_pid" 2>/dev/null || true
  kill "$jwks_pid"; wait "$jwks_pid" 2>/dev/null || true

  say "nginx, an empty 200 on CPU $SERVER_CPU (one worker): closed loop, then open loop at $target req/s"
  nginx_url="http://127.0.0.1:$NGINX_PORT"
  start_nginx ceiling "$SERVER_CPU" "server { listen 127.0.0.1:$NGINX_PORT; location / { return 200; } }"
  ceiling_pid=$nginx_pid
  wait_ready "$nginx_url/" "$work/nginx-ceiling.log" "$ceiling_pid"
  target_pid=$(child_of "$ceiling_pid")
  wrk_load nginx_warmup gateway.lua "$nginx_url" 2
  wrk_load nginx_closed gateway.lua "$nginx_url" "$DURATION"; record nginx_closed
  rate_load nginx_rate "$nginx_url"
  kill "$ceiling_pid"; wait "$ceiling_pid" 2>/dev/null || true
fi

# --- the table ---------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2fx", a / b; else print "-" }'; }
share() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "-" }'; }
of_nginx() {
  if [ -n "${rps[nginx_closed]:-}" ]; then
    awk -v a="${rps[$1]}" -v b="${rps[nginx_closed]}" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "-" }'
  else echo "-"; fi
}
cells() {
  local key=$1 cpu_cell="-"
  [ -n "${cpu[$key]:-}" ] && [ "${cpu[$key]}" != "-" ] && cpu_cell="${cpu[$key]} us"
  printf '%s | %s | %s | %s | %s | %s | %s' "${rps[$key]}" "${p50[$key]}" "${p99[$key]}" \
    "${errs[$key]}" "${busy[$key]:--}" "$cpu_cell" "${lbusy[$key]:--}"
}
# A Portcullis row: its figures, its share of nginx's closed-loop rate (gateway loads), and
# its peer's req/s, p50, p99 and Portcullis / peer (req/s, or p99 for (e), as the cell says).
row() {
  local label=$1 key=$2 gateway=$3 peer_key=${4:-} peer_label=${5:-} how=${6:-rps}
  local share="-" prps="-" pp50="-" pp99="-" r="-"
  [ "$gateway" = gateway ] && share=$(of_nginx "$key")
  if [ -n "$peer_key" ] && [ -n "${rps[$peer_key]:-}" ]; then
    prps=${rps[$peer_key]}; pp50=${p50[$peer_key]}; pp99=${p99[$peer_key]}
    if [ "$how" = p99 ]; then
      r="p99 $(ratio "${p99us[$key]}" "${p99us[$peer_key]}")"
    else
      r=$(ratio "${rps[$key]}" "$prps")
    fi
  else
    peer_label="-"
  fi
  echo "| $label | $(cells "$key") | $share | $peer_label | $prps | $pp50 | $pp99 | $r |"
}

echo
echo "Portcullis $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
echo "$ORGS orgs, $APPS apps, $SAMPLE apps driving the load, $CONNECTIONS connections, $DURATION s a load"
if [ -z "$SKIP_PEER" ]; then echo "Peer: $peer_version"; else echo "Peer: skipped (SKIP_PEER)"; fi
if [ -z "$SKIP_CONTROLS" ]; then
  echo "Controls: $apache_version (event MPM, one process); $nginx_version (one worker)"
else
  echo "Controls (Apache, nginx): skipped: $SKIP_CONTROLS"
fi
echo
echo "| load | req/s | p50 | p99 | errors | server core busy | server CPU a request | load core busy | of nginx's empty 200 | peer | peer req/s | peer p50 | peer p99 | Portcullis / peer |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
row "(a) gateway check, ES256 bearer + x-api-key + org + resource, token seen before" gateway_seen gateway \
  apache_seen "Apache mod_auth_openidc, same tokens"
row "(b) same, every token never seen (signature verified)" gateway_fresh gateway \
  apache_fresh "Apache mod_auth_openidc, same tokens"
row "(c) client_credentials token (client_secret_basic)" token - \
  "${fast_peer:-}" "${fast_label:-} (the faster)"
row "(d) introspection" introspect - peer_introspect "oidc-provider, opaque"
row "(e) (a) open loop at 80 % of its peak (portcullis-load, latency from due time)" rate gateway \
  nginx_rate "nginx empty 200, same rate" p99
if [ "$USAGE_ROUNDS" -gt 0 ]; then
  row "(f) (a) with usage analytics on (mean of $USAGE_ROUNDS rounds; p50/p99 of the last)" usage_on gateway
  row "(f) (a) with usage analytics off, same rounds alternating" usage_off gateway
fi
row "(g) (a) with DPoP: fresh proof each request, token seen before ($(share "${rps[dpop]}" "${rps[gateway_seen]}") of (a))" dpop gateway

if [ -z "$SKIP_PEER" ] || [ -z "$SKIP_CONTROLS" ]; then
  echo
  echo "Peers and controls, same run, same core, same wrk settings:"
  echo
  echo "| run | req/s | p50 | p99 | errors | server core busy | server CPU a request | load core busy | of nginx's empty 200 |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  if [ -z "$SKIP_PEER" ]; then
    echo "| oidc-provider, opaque tokens: (c) client_credentials | $(cells peer_token) | - |"
    echo "| oidc-provider, ES256 JWT access tokens: (c) client_credentials | $(cells peer_jwt_token) | - |"
    echo "| oidc-provider, opaque tokens: (d) introspection | $(cells peer_introspect) | - |"
  fi
  if [ -z "$SKIP_CONTROLS" ]; then
    echo "| Apache httpd + mod_auth_openidc: (a)'s requests and tokens, seen before | $(cells apache_seen) | $(of_nginx apache_seen) |"
    echo "| Apache httpd + mod_auth_openidc: (b)'s never-seen tokens | $(cells apache_fresh) | $(of_nginx apache_fresh) |"
    echo "| nginx, empty 200 to (a)'s request, closed loop (the ceiling) | $(cells nginx_closed) | 100 % |"
    echo "| nginx, empty 200, open loop at (e)'s rate ($target req/s) | $(cells nginx_rate) | - |"
  fi
fi

echo
if [ -z "$SKIP_PEER" ]; then
  echo "(c) Portcullis / the faster peer ($fast_label): $(ratio "${rps[token]}" "${rps[$fast_peer]}"); / oidc-provider opaque: $(ratio "${rps[token]}" "${rps[peer_token]}"); / oidc-provider ES256 JWT: $(ratio "${rps[token]}" "${rps[peer_jwt_token]}")"
fi
if [ -z "$SKIP_CONTROLS" ]; then
  echo "(a) Portcullis / Apache mod_auth_openidc: $(ratio "${rps[gateway_seen]}" "${rps[apache_seen]}"); (b): $(ratio "${rps[gateway_fresh]}" "${rps[apache_fresh]}")"
  echo "Portcullis's gateway loads as a share of nginx's empty 200 (${rps[nginx_closed]} req/s): (a) $(of_nginx gateway_seen), (b) $(of_nginx gateway_fresh)"
  echo "(e) p99 / nginx's p99 at the same $target req/s: ${p99[rate]} / ${p99[nginx_rate]} = $(ratio "${p99us[rate]}" "${p99us[nginx_rate]}")"
fi
echo "(g) DPoP / (a): ${rps[dpop]} / ${rps[gateway_seen]} req/s = $(share "${rps[dpop]}" "${rps[gateway_seen]}") of (a); server CPU a request ${cpu[dpop]} us against ${cpu[gateway_seen]} us: $(awk -v g="${cpu[dpop]}" -v a="${cpu[gateway_seen]}" 'BEGIN { printf "%.1f", g - a }') us more for the proof"
if [ "$USAGE_ROUNDS" -gt 0 ]; then
  echo "Usage analytics on / off, load (a): $usage_ratio (per round:$rounds; budget: at least 0.97)"
fi
