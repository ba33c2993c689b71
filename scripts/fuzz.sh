#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ one at a time, in one libFuzzer process
# each (one core), and prints libFuzzer's execution count per target.
#
#   scripts/fuzz.sh [SECONDS]          every target for SECONDS (default 480)
#   scripts/fuzz.sh --runs N           every target until N executions,
#                                      capped at --max-time (default 1800 s)
#   options:  --max-time SECONDS       the time cap of --runs
#             --grow                   add new inputs to the committed
#                                      corpus fuzz/corpus/<target>
#             --cmin                   minimise fuzz/corpus/<target> after
#                                      its run (`cargo fuzz cmin`)
#             TARGET...                only these targets (default: all)
#
# The campaign in docs/FUZZING.md is `scripts/fuzz.sh --runs 10000000
# --grow --cmin`; CI's smoke run (scripts/test.sh) is `scripts/fuzz.sh 20`.
# Every run starts from the committed corpus fuzz/corpus/<target>. Without
# --grow the new inputs go to a temporary directory (libFuzzer writes to
# the first corpus directory it is given), so a smoke run leaves the
# working tree clean. A crash leaves its input in fuzz/artifacts/<target>/
# and makes this script fail. Logs go to $FUZZ_LOG_DIR (default: a
# temporary directory). Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). No sanitizer (-s none): the code
# under test is safe Rust, and debug assertions (overflow checks) stay on.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../fuzz"

secs=480
runs=
max_time=1800
grow=0
cmin=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs|--max-time)
      case "${2:-}" in
        ''|*[!0-9]*) echo "fuzz.sh: $1 needs a number" >&2; exit 2 ;;
      esac
      if [ "$1" = --runs ]; then runs="$2"; else max_time="$2"; fi
      shift 2 ;;
    --grow) grow=1; shift ;;
    --cmin) cmin=1; shift ;;
    -h|--help) sed -n '2,24p' "$self"; exit 0 ;;
    -*|'') echo "fuzz.sh: unknown option '$1'" >&2; exit 2 ;;
    *[!0-9]*) only+=("$1"); shift ;;
    *) secs="$1"; shift ;;
  esac
done
if [ -n "$runs" ]; then
  limits=(-runs="$runs" -max_total_time="$max_time")
else
  limits=(-max_total_time="$secs")
fi

logs="${FUZZ_LOG_DIR:-$(mktemp -d)}"
mkdir -p "$logs"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ ${#only[@]} -gt 0 ]; then
  targets="${only[*]}"
else
  targets=$(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -s none
status=0
for t in $targets; do
  mkdir -p "corpus/$t"
  if [ "$grow" = 1 ]; then
    dirs=("corpus/$t")
  else
    mkdir -p "$scratch/$t"
    dirs=("$scratch/$t" "corpus/$t")
  fi
  start=$(date +%s)
  if cargo +nightly fuzz run -s none "$t" "${dirs[@]}" -- \
      "${limits[@]}" -rss_limit_mb=2048 -max_len=16384 \
      -print_final_stats=1 >"$logs/$t.log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
  fi
  wall=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  line=$(printf 'fuzz %-20s %-6s %12s executions in %5ss' "$t" "$result" "${execs:-?}" "$wall")
  if [ "$cmin" = 1 ] && [ "$result" = ok ]; then
    cargo +nightly fuzz cmin -s none "$t" "corpus/$t" -- \
      -rss_limit_mb=2048 -max_len=16384 >"$logs/$t.cmin.log" 2>&1
    files=$(find "corpus/$t" -type f | wc -l)
    bytes=$(find "corpus/$t" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    line="$line, corpus after cmin $files files, $bytes bytes"
  fi
  printf '%s (log %s)\n' "$line" "$logs/$t.log"
done
exit $status
