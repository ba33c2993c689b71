#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 480), one at a
# time, on one core, and prints libFuzzer's execution count per target.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`). Corpora grow in fuzz/corpus/<target>; minimise them before
# committing with `cargo +nightly fuzz cmin -s none <target>`. A crash
# leaves its input in fuzz/artifacts/<target>/ and makes this script fail.
# No sanitizer (-s none): the code under test is safe Rust, and debug
# assertions (overflow checks) stay on.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-480}"
logs="${FUZZ_LOG_DIR:-$(mktemp -d)}"
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -s none
status=0
for t in $targets; do
  mkdir -p "corpus/$t"
  if cargo +nightly fuzz run -s none "$t" "corpus/$t" -- \
      -max_total_time="$secs" -jobs=1 -workers=1 -rss_limit_mb=2048 \
      -max_len=16384 -print_final_stats=1 >"$logs/$t.log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  printf 'fuzz %-20s %-6s %12s executions in %ss (log %s)\n' "$t" "$result" "${execs:-?}" "$secs" "$logs/$t.log"
done
exit $status
