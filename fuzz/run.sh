#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 20), one after another on one core,
# starting from the committed seeds plus the local corpus (fuzz/corpus, not committed).
# Prints each target's executions; a crash or a broken invariant fails the script and
# leaves the input in fuzz/artifacts/<target>/ (see docs/FUZZING.md).
#
#   fuzz/run.sh 20            # the CI run
#   fuzz/run.sh 300 jwt       # five minutes of one target
#   FUZZ_SEED=0 fuzz/run.sh 60  # a random seed (the default, 1, makes CI's runs repeatable)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Only a stable toolchain is assumed:
# RUSTC_BOOTSTRAP=1 lets it pass the nightly-only sanitizer-coverage flags. No sanitizer
# (-s none): the code under test is safe Rust, and debug assertions stay on.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
shift || true
export RUSTC_BOOTSTRAP=1
targets="${*:-$(cargo fuzz list)}"
cargo fuzz build -s none
for t in $targets; do
  mkdir -p "corpus/$t" "seeds/$t"
  log=$(mktemp)
  if ! cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -seed="${FUZZ_SEED:-1}" -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $t FAILED (input in fuzz/artifacts/$t/)"
    exit 1
  fi
  execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  echo "fuzz $t: ${execs:-?} executions in ${secs} s, ${cov:-cov: ?}, corpus $(ls "corpus/$t" | wc -l) inputs"
  rm -f "$log"
done
