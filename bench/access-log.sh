#!/usr/bin/env bash
# What `--access-log` costs the gateway check: bench/ab.sh with this tree's release build
# serving the same data with the access log off (A) and on (B), alternately, each driven
# by wrk (server on CPU 0, wrk on CPU 1; the log goes to a file, as a service's would).
#
#   bench/access-log.sh                 # 3 rounds of 8 s each way
#   ROUNDS=5 DURATION=10 bench/access-log.sh
exec env LOADS="${LOADS:-check}" A_ARGS="" B_ARGS="--access-log" "$(dirname "$0")/ab.sh"
