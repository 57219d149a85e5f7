#!/usr/bin/env bash
# A long run of one fuzz target (fuzz/README.md): builds it if needed, then
# fuzzes for SECONDS, keeping what it finds in build-fuzz/fuzz-corpus/TARGET
# (reused by the next run) and any crashing input in build-fuzz/fuzz-artifacts/.
# Prints the executions made and the time taken; record them in docs/fuzzing.md.
# Run it niced, one target at a time, on a shared machine.
# usage: scripts/fuzz-long.sh TARGET SECONDS [RUNS]   (TARGET: v2_requests, push_admin,
#   store_record, store_recovery, nameserver_registration, admin_cli; RUNS:
#   stop after that many executions, e.g. 1000000, if SECONDS have not passed)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 2 || $# -gt 3 ]]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
target=$1 seconds=$2 runs=${3:-}
dir=${FUZZ_BUILD_DIR:-build-fuzz}
[[ -d "fuzz/corpus/$target" ]] || { echo "fuzz-long: no target $target (fuzz/corpus/$target)" >&2; exit 2; }
bash scripts/fuzz-build.sh >/dev/null
started=$SECONDS
FUZZ_RUNS=$runs FUZZ_ARTIFACTS="$dir/fuzz-artifacts" bash fuzz/run.sh "$dir/fuzz/${target}_fuzzer" \
  "fuzz/corpus/$target" "$seconds" "$dir/fuzz-corpus/$target"
echo "${target}_fuzzer: took $((SECONDS - started)) s"
