#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS on its seeds, without touching them:
# new inputs go to WORK_DIR (default: a temporary directory, removed after).
# A crash, leak, timeout or sanitizer report fails the run; the input that
# caused it is kept in $FUZZ_ARTIFACTS (default: the current directory's
# fuzz-artifacts/) and printed.
# usage: fuzz/run.sh FUZZER SEED_DIR SECONDS [WORK_DIR]
#   env FUZZ_RUNS: stop after this many executions too (whichever comes first)
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3 work=${4:-}
runs=()
[[ -n "${FUZZ_RUNS:-}" ]] && runs=(-runs="$FUZZ_RUNS")
artifacts=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
mkdir -p "$artifacts"
if [[ -z "$work" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
name=$(basename "$fuzzer")
# -timeout: one input taking this long is a finding; -rss_limit_mb bounds
# memory on a shared machine; the seeds are read-only inputs.
status=0
"$fuzzer" -max_total_time="$seconds" "${runs[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$work" "$seeds" \
  >"$work.log" 2>&1 || status=$?
grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)|^#[0-9]+.*DONE' \
  "$work.log" | sed "s/^/$name: /" || true
if [[ $status -ne 0 ]]; then
  tail -60 "$work.log"
  echo "$name: FAILED (exit $status); artifacts in $artifacts" >&2
fi
rm -f "$work.log"
exit $status
