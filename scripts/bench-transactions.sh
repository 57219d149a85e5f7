#!/usr/bin/env bash
# Transactional produce throughput: starts a private NameServer + store +
# broker on free ports and runs tests/interop/node/bench_transactions.js
# (the official Node client: send a half message, then commit it; a share
# rolled back) with CONCURRENCY transactions in flight. Prints the client's
# JSON summary and the CPU the broker and store spent per transaction. As
# noisy as the machine: run it when nothing else builds, and repeat.
#
#   scripts/bench-transactions.sh [--flush=async|sync] [COUNT] [CONCURRENCY] [ROLLBACK_PERCENT]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
FLUSH=async
if [[ "${1:-}" == --flush=* ]]; then FLUSH=${1#--flush=}; shift; fi
COUNT=${1:-20000}
CONCURRENCY=${2:-64}
ROLLBACK=${3:-10}
# shellcheck source=lib/bench_cluster.sh
source scripts/lib/bench_cluster.sh
open_bench_home bench-transactions
start_bench_cluster

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
b0=$(ticks $broker_pid) s0=$(ticks $store_pid)
summary=$(bash tests/interop/node/run.sh tests/interop/node/bench_transactions.js "$broker" \
  BenchTxn "$COUNT" "$CONCURRENCY" "$ROLLBACK" 2>"$HOME_DIR/logs/bench.log") ||
  { echo "bench-transactions: the client failed; see $HOME_DIR/logs/bench.log" >&2; KEEP=1; exit 1; }
b1=$(ticks $broker_pid) s1=$(ticks $store_pid)
echo "$summary"
awk -v b=$((b1 - b0)) -v s=$((s1 - s0)) -v hz="$hz" -v n="$COUNT" -v flush="$FLUSH" 'BEGIN {
  printf "flush=%s transactions=%d cpu_us_per_transaction (incl. warm-up): broker=%.1f store=%.1f\n",
    flush, n, b * 1e6 / hz / n, s * 1e6 / hz / n
}'
