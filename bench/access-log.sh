#!/usr/bin/env bash
# What `--access-log` costs the gateway check: the same release binary and the same data,
# serving with the access log off and on, alternately, each driven by wrk for DURATION
# seconds (server on CPU 0, wrk on CPU 1, the log written to a file as a service's would be).
#
#   bench/access-log.sh                 # 3 rounds of 8 s each way
#   ROUNDS=5 DURATION=10 bench/access-log.sh
#
# Needs wrk, curl and jq. Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
PORT=${PORT:-18777}
API=http://127.0.0.1:$PORT
target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
cargo build --release --locked -p portcullis >&2
work=$(mktemp -d)
cp "$target/release/portcullis" "$work/portcullis"   # a private copy: the target may be rebuilt meanwhile
ADMIN=access-log-bench-admin-token-0123456789
PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

start() {
  PORTCULLIS_ADMIN_TOKEN=$ADMIN taskset -c 0 "$work/portcullis" serve --listen "127.0.0.1:$PORT" \
    --data-dir "$work/data" --log-level warn "$@" 2> "$work/log" &
  PID=$!
  for _ in $(seq 1 200); do curl -sf "$API/readyz" >/dev/null && return 0; sleep 0.05; done
  echo "the server did not start: $(cat "$work/log")" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" || true; PID=""; }

start
admin() { curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' "$@"; }
ORG=$(admin -X POST "$API/admin/v1/orgs" -d '{"name":"Bench","products":["p"],"sandboxes":["prod"]}' | jq -r .id)
RES=$(admin -X POST "$API/admin/v1/orgs/$ORG/resources" -d '{"name":"API","sandbox":"prod","product":"p","scopes":["s"]}' | jq -r .id)
CID=$(admin -X POST "$API/admin/v1/apps" -d "{\"org_id\":\"$ORG\",\"name\":\"a\",\"products\":[\"p\"],\"scopes\":[\"s\"],\"sandboxes\":{\"prod\":\"read\"}}" | jq -r .client_id)
SECRET=$(admin -X POST "$API/admin/v1/apps/$CID/secrets" | jq -r .secret)
TOKEN=$(curl -sf -u "$CID:$SECRET" -d grant_type=client_credentials "$API/oauth/token" | jq -r .access_token)
check=("$API/gateway/v1/check?resource=$RES" -H "Authorization: Bearer $TOKEN" -H "x-api-key: $CID" -H "x-gw-ims-org-id: $ORG")
[ "$(curl -s -o /dev/null -w '%{http_code}' "${check[@]}")" = 200 ] || { echo "the check is not allowed" >&2; exit 1; }
stop

echo "| round | access log | checks/s | log lines |"
echo "| --- | --- | --- | --- |"
for round in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    if [ "$mode" = on ]; then start --access-log; else start; fi
    rate=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" "${check[@]}" | awk '/Requests\/sec/ {print $2}')
    lines=$(wc -l < "$work/log")
    stop
    echo "| $round | $mode | $rate | $lines |"
  done
done
