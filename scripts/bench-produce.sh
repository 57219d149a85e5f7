#!/usr/bin/env bash
# Starts a private NameServer + store + broker on free ports, runs one
# `apogee-bench produce` against it and prints the bench summary plus the
# CPU each process spent per produced message (utime+stime deltas from
# /proc) and its context switches per message (all threads). Figures are as
# noisy as the machine: run it when nothing else builds, and repeat.
# --consume=N: first fills the topic with N messages (not measured), then
# measures `apogee-bench consume` draining them instead. --e2e runs
# `apogee-bench e2e` (produce and push-consume at once; pass --rate=N).
#
#   scripts/bench-produce.sh [--flush=async|sync] [--consume=N] -- [apogee-bench flags]
#   scripts/bench-produce.sh -- --concurrency=64 --count=100000
#   scripts/bench-produce.sh --consume=200000 -- --consumer=push --count=200000
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
FLUSH=async
FILL=0
MODE=produce
while [ $# -gt 0 ]; do
  case "$1" in
    --flush=*) FLUSH=${1#--flush=}; shift ;;
    --consume=*) FILL=${1#--consume=}; shift ;;
    --e2e) MODE=e2e; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
# shellcheck source=lib/bench_cluster.sh
source scripts/lib/bench_cluster.sh
open_bench_home bench-produce
# BROKER_FLAGS: extra apogee-broker flags (e.g. --tail_cache_bytes=0 for an A/B run).
# shellcheck disable=SC2086
start_bench_cluster ${BROKER_FLAGS:-}

mode=$MODE
if [ "$FILL" -gt 0 ]; then
  mode=consume
  "$BUILD_DIR/tools/bench/apogee-bench" produce --endpoints="$ns" --json "$@" --count="$FILL" \
    --window=1000 >/dev/null 2>"$HOME_DIR/logs/fill.log" ||
    { echo "bench-produce: filling the topic failed; see $HOME_DIR/logs/fill.log" >&2; exit 1; }
fi

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/ctxt_switches/ {n += $2} END {print n}'
}
hz=$(getconf CLK_TCK)
# Idle wake-ups (timers, heartbeats) over 2 s, subtracted from the run's.
bi0=$(switches $broker_pid) si0=$(switches $store_pid)
sleep 2
bi=$(($(switches $broker_pid) - bi0)) si=$(($(switches $store_pid) - si0))
b0=$(ticks $broker_pid) s0=$(ticks $store_pid) bc0=$(switches $broker_pid) sc0=$(switches $store_pid)
# PERF=out.data: also sample the broker's stacks (perf record -g) during the run.
if [ -n "${PERF:-}" ]; then
  perf record -q -g -p "$broker_pid" -o "$PERF" 2>/dev/null &
  perf_pid=$!
fi
[ -z "${THREADS:-}" ] || { bash "$THREADS" $broker_pid > /tmp/hb-b0; bash "$THREADS" $store_pid > /tmp/hb-s0; }
summary=$(/usr/bin/time -f 'bench_cpu_seconds=%U %S' -o "$HOME_DIR/bench.time" \
  "$BUILD_DIR/tools/bench/apogee-bench" "$mode" \
  --endpoints="$ns" --json "$@" 2>"$HOME_DIR/logs/bench.log")
bench_cpu=$(sed -n 's/^bench_cpu_seconds=\([0-9.]*\) \([0-9.]*\)/\1 \2/p' "$HOME_DIR/bench.time" |
  awk '{print $1 + $2}')
if [ -n "${PERF:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
[ -z "${THREADS:-}" ] || { bash "$THREADS" $broker_pid > /tmp/hb-b1; bash "$THREADS" $store_pid > /tmp/hb-s1; }
b1=$(ticks $broker_pid) s1=$(ticks $store_pid) bc1=$(switches $broker_pid) sc1=$(switches $store_pid)
echo "$summary"
secs=$(echo "$summary" | sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' | head -1)
sent=$(echo "$summary" | sed -n 's/.*"messages":\([0-9]*\).*/\1/p' | head -1)
if [ -z "$sent" ] || [ "$sent" = 0 ]; then
  echo "bench-produce: no message count in the summary; see $HOME_DIR/logs" >&2
  exit 1
fi
awk -v b=$((b1 - b0)) -v s=$((s1 - s0)) -v bc=$((bc1 - bc0)) -v sc=$((sc1 - sc0)) \
  -v hz="$hz" -v n="$sent" -v flush="$FLUSH" -v c="${bench_cpu:-0}" -v bi="$bi" -v si="$si" -v t="$secs" 'BEGIN {
  bc -= bi / 2 * t; sc -= si / 2 * t
  printf "flush=%s messages=%d cpu_us_per_msg: bench=%.1f broker=%.1f store=%.1f", flush, n,
    c * 1e6 / n, b * 1e6 / hz / n, s * 1e6 / hz / n
  printf "; ctx_switches_per_msg (idle rate subtracted): broker=%.2f store=%.2f\n", bc / n, sc / n
}'
