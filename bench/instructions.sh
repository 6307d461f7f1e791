#!/usr/bin/env bash
# Instructions per gateway check, two servers compared: the release build run under
# valgrind's callgrind, which counts instructions executed, not seconds, so the figure
# does not move with whatever else the machine is doing (the shared machines' rates
# do). Each side serves N1 and then, in a second process, N2 checks of one token (seen
# before after the first); the difference of the two totals over N2 - N1 is the cost of
# a check, with start-up and shutdown cancelled out.
#
#   B_ARGS="--usage-analytics false" bench/instructions.sh   # one build, two sets of flags
#   A_BIN=/tmp/before B_BIN=/tmp/after bench/instructions.sh # a change, before and after
#
# Settings (environment): A_BIN, B_BIN (default: this tree's release build), A_ARGS,
# B_ARGS (extra `serve` flags), N1 (2000), N2 (6000), PORT (18877). Needs valgrind,
# curl, jq and python3. Background tasks (flushes, resyncs) run on timers, and the
# server is slower under valgrind: their instructions are counted too, for the seconds
# the run takes, so keep N2 - N1 large against them.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-2000}
N2=${N2:-6000}
PORT=${PORT:-18877}
API=http://127.0.0.1:$PORT
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
work=$(mktemp -d)
if [ -z "${A_BIN:-}" ] || [ -z "${B_BIN:-}" ]; then
  target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
  cargo build --release --locked -p portcullis >&2
  cp "$target/release/portcullis" "$work/this"
fi
A_BIN=${A_BIN:-$work/this}
B_BIN=${B_BIN:-$work/this}
read -r -a a_args <<< "${A_ARGS:-}"
read -r -a b_args <<< "${B_ARGS:-}"
ADMIN=instructions-bench-admin-token-0123456789
PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

# start [valgrind OUT] BIN [FLAG...]: serve the data directory, logs to $work/log.
start() {
  local wrap=()
  if [ "$1" = valgrind ]; then wrap=(valgrind --tool=callgrind --callgrind-out-file="$2"); shift 2; fi
  local bin=$1; shift
  PORTCULLIS_ADMIN_TOKEN=$ADMIN "${wrap[@]}" "$bin" serve --listen "127.0.0.1:$PORT" \
    --data-dir "$work/data" --log-level warn "$@" 2> "$work/log" &
  PID=$!
  for _ in $(seq 1 1200); do curl -sf "$API/readyz" >/dev/null && return 0; sleep 0.1; done
  echo "the server did not start: $(cat "$work/log")" >&2; exit 1
}
stop() { kill -INT "$PID"; wait "$PID" || true; PID=""; }

# The data, written once by A: one org, one resource, one app with a secret, a token.
start "$A_BIN" "${a_args[@]}"
admin() { curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' "$@"; }
ORG=$(admin -X POST "$API/admin/v1/orgs" -d '{"name":"Bench","products":["p"],"sandboxes":["prod"]}' | jq -r .id)
RES=$(admin -X POST "$API/admin/v1/orgs/$ORG/resources" -d '{"name":"API","sandbox":"prod","product":"p","scopes":["s"]}' | jq -r .id)
CID=$(admin -X POST "$API/admin/v1/apps" -d "{\"org_id\":\"$ORG\",\"name\":\"a\",\"products\":[\"p\"],\"scopes\":[\"s\"],\"sandboxes\":{\"prod\":\"read\"}}" | jq -r .client_id)
SECRET=$(admin -X POST "$API/admin/v1/apps/$CID/secrets" | jq -r .secret)
TOKEN=$(curl -sf -u "$CID:$SECRET" -d grant_type=client_credentials "$API/oauth/token" | jq -r .access_token)
stop

# checks N: N gateway checks on one keep-alive connection, each of which must be a 200.
checks() {
  python3 - "$PORT" "$1" "$RES" "$TOKEN" "$CID" "$ORG" <<'PY'
import http.client, sys
port, n, res, token, cid, org = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
headers = {"Authorization": f"Bearer {token}", "x-api-key": cid, "x-gw-ims-org-id": org}
for _ in range(n):
    c.request("GET", f"/gateway/v1/check?resource={res}", headers=headers)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"a check answered {r.status}")
PY
}

# total OUT: the instructions callgrind counted in OUT.
total() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

declare -A per
for side in A B; do
  if [ "$side" = A ]; then bin=$A_BIN; args=("${a_args[@]}"); else bin=$B_BIN; args=("${b_args[@]}"); fi
  for n in "$N1" "$N2"; do
    start valgrind "$work/$side.$n.out" "$bin" "${args[@]}"
    checks "$n"
    stop
  done
  a=$(total "$work/$side.$N1.out"); b=$(total "$work/$side.$N2.out")
  per[$side]=$(( (b - a) / (N2 - N1) ))
  echo "$side: $a instructions for $N1 checks, $b for $N2: ${per[$side]} a check" >&2
done
echo "instructions a gateway check: A ${per[A]}, B ${per[B]}, B/A $(awk -v a="${per[A]}" -v b="${per[B]}" 'BEGIN { printf "%.4f", b / a }')"
