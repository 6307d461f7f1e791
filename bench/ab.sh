#!/usr/bin/env bash
# Two servers compared in one run: A and B serve the same data alternately, ROUNDS times
# each, and wrk drives the gateway check (a token seen before) and the client_credentials
# grant against each (server on CPU 0, wrk on CPU 1). On these shared machines only a
# ratio measured in one run means anything: this prints each round and B/A.
#
#   A_BIN=/tmp/before B_BIN=/tmp/after bench/ab.sh   # two builds (a change, before/after)
#   B_ARGS=--access-log bench/ab.sh                  # this tree's build, two sets of flags
#   ROUNDS=5 DURATION=10 LOADS=check bench/ab.sh
#
# Settings (environment): A_BIN, B_BIN (default: this tree's release build, built here),
# A_ARGS, B_ARGS (extra `serve` flags), ROUNDS (3), DURATION (8 s a load), LOADS
# ("check token"), PORT (18777). Needs wrk, curl and jq. Every process it starts is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
LOADS=${LOADS:-check token}
PORT=${PORT:-18777}
API=http://127.0.0.1:$PORT
work=$(mktemp -d)
if [ -z "${A_BIN:-}" ] || [ -z "${B_BIN:-}" ]; then
  target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
  cargo build --release --locked -p portcullis >&2
  # A private copy: the target directory may be rebuilt meanwhile.
  cp "$target/release/portcullis" "$work/this"
fi
A_BIN=${A_BIN:-$work/this}
B_BIN=${B_BIN:-$work/this}
read -r -a a_args <<< "${A_ARGS:-}"
read -r -a b_args <<< "${B_ARGS:-}"
ADMIN=ab-bench-admin-token-0123456789abcdef
PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

# start BIN [FLAG...]: serve the shared data directory, logs to $work/log.
start() {
  local bin=$1; shift
  PORTCULLIS_ADMIN_TOKEN=$ADMIN taskset -c 0 "$bin" serve --listen "127.0.0.1:$PORT" \
    --data-dir "$work/data" --log-level warn "$@" 2> "$work/log" &
  PID=$!
  for _ in $(seq 1 200); do curl -sf "$API/readyz" >/dev/null && return 0; sleep 0.05; done
  echo "the server did not start: $(cat "$work/log")" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" || true; PID=""; }

# The data, written once by A: one org, one resource, one app with a secret.
start "$A_BIN" "${a_args[@]}"
admin() { curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' "$@"; }
ORG=$(admin -X POST "$API/admin/v1/orgs" -d '{"name":"Bench","products":["p"],"sandboxes":["prod"]}' | jq -r .id)
RES=$(admin -X POST "$API/admin/v1/orgs/$ORG/resources" -d '{"name":"API","sandbox":"prod","product":"p","scopes":["s"]}' | jq -r .id)
CID=$(admin -X POST "$API/admin/v1/apps" -d "{\"org_id\":\"$ORG\",\"name\":\"a\",\"products\":[\"p\"],\"scopes\":[\"s\"],\"sandboxes\":{\"prod\":\"read\"}}" | jq -r .client_id)
SECRET=$(admin -X POST "$API/admin/v1/apps/$CID/secrets" | jq -r .secret)
TOKEN=$(curl -sf -u "$CID:$SECRET" -d grant_type=client_credentials "$API/oauth/token" | jq -r .access_token)
check=("$API/gateway/v1/check?resource=$RES" -H "Authorization: Bearer $TOKEN" -H "x-api-key: $CID" -H "x-gw-ims-org-id: $ORG")
[ "$(curl -s -o /dev/null -w '%{http_code}' "${check[@]}")" = 200 ] || { echo "the check is not allowed" >&2; exit 1; }
stop
printf '%s\t%s\t%s\t%s\n' "$CID" "$SECRET" "$ORG" "$RES" > "$work/creds.tsv"

# load NAME: requests a second from wrk for DURATION seconds.
load() {
  case $1 in
    check) taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" "${check[@]}" ;;
    token) CREDENTIALS_FILE="$work/creds.tsv" taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" \
             -s bench/wrk/token.lua "$API/oauth/token" ;;
    *) echo "unknown load '$1' (check, token)" >&2; exit 2 ;;
  esac | awk '/Requests\/sec/ {print $2}'
}

echo "A: $A_BIN ${A_ARGS:-}"
echo "B: $B_BIN ${B_ARGS:-}"
echo
echo "| round | load | A /s | B /s | B/A |"
echo "| --- | --- | --- | --- | --- |"
declare -A sum_a sum_b
for round in $(seq 1 "$ROUNDS"); do
  for l in $LOADS; do
    start "$A_BIN" "${a_args[@]}"; ra=$(load "$l"); stop
    start "$B_BIN" "${b_args[@]}"; rb=$(load "$l"); stop
    sum_a[$l]=$(echo "${sum_a[$l]:-0} + $ra" | bc -l)
    sum_b[$l]=$(echo "${sum_b[$l]:-0} + $rb" | bc -l)
    printf '| %s | %s | %.0f | %.0f | %.3f |\n' "$round" "$l" "$ra" "$rb" "$(echo "$rb / $ra" | bc -l)"
  done
done
for l in $LOADS; do
  printf '| all | %s | %.0f | %.0f | %.3f |\n' "$l" "$(echo "${sum_a[$l]} / $ROUNDS" | bc -l)" \
    "$(echo "${sum_b[$l]} / $ROUNDS" | bc -l)" "$(echo "${sum_b[$l]} / ${sum_a[$l]}" | bc -l)"
done
