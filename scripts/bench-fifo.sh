#!/usr/bin/env bash
# FIFO consume throughput: a private NameServer + store + broker (free
# ports, a temp dir), a FIFO topic (`apogee-admin topic create --type=fifo`)
# and two FIFO consumer groups (`group create --fifo=true`). Fills the topic
# with COUNT messages over GROUPS message groups (not measured), then each
# group drains the whole backlog: the SimpleConsumer's, then the
# PushConsumer's (apogee-bench consume; msg/s, /proc/loadavg after each).
#
#   scripts/bench-fifo.sh [COUNT] [GROUPS] [-- extra apogee-bench consume flags]
#   scripts/bench-fifo.sh 100000 1000
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
FLUSH=async
COUNT=${1:-100000}
NGROUPS=${2:-1000}
shift $(($# < 2 ? $# : 2))
[ "${1:-}" != -- ] || shift
EXTRA=("$@")
# shellcheck source=lib/bench_cluster.sh
source scripts/lib/bench_cluster.sh
open_bench_home bench-fifo
start_bench_cluster

admin() { "$BUILD_DIR/tools/admin/apogee-admin" --nameservers="$ns" "$@" >>"$HOME_DIR/logs/admin.log"; }
bench() { "$BUILD_DIR/tools/bench/apogee-bench" "$@" --endpoints="$ns" --topic=BenchFifo --json; }

# The broker registers with the NameServer at its first heartbeat.
for _ in $(seq 1 100); do
  admin topic create --name=BenchFifo --queues=8 --broker=broker-a --type=fifo && break
  sleep 0.1
done
admin group create --group=BenchFifoSimple --fifo=true
admin group create --group=BenchFifoPush --fifo=true
# Blocking sends (FIFO messages are not sent with SendAsync), 16 of one group a call.
bench produce --message_groups="$NGROUPS" --count="$COUNT" --concurrency=8 --batch=16 \
  --size=256 >"$HOME_DIR/fill.json" 2>"$HOME_DIR/logs/fill.log" ||
  { echo "bench-fifo: filling the topic failed; see $HOME_DIR/logs/fill.log" >&2; KEEP=1; exit 1; }
echo "fill: $(cat "$HOME_DIR/fill.json")"
hz=$(getconf CLK_TCK)
# One drain; then the broker's and the store's CPU per message and the load.
drain() {
  local b0 s0
  b0=$(cpu_ticks "$broker_pid") s0=$(cpu_ticks "$store_pid")
  bench consume --count="$COUNT" --timeout=10s "$@" 2>>"$HOME_DIR/logs/drain.log"
  awk -v b=$(($(cpu_ticks "$broker_pid") - b0)) -v s=$(($(cpu_ticks "$store_pid") - s0)) -v hz="$hz" \
    -v n="$COUNT" 'BEGIN { printf "cpu_us_per_msg: broker=%.1f store=%.1f ", b * 1e6 / hz / n, s * 1e6 / hz / n }'
  loadavg
}
drain --group=BenchFifoSimple --consumer=simple --concurrency=8 "${EXTRA[@]}"
drain --group=BenchFifoPush --consumer=push --concurrency=16 "${EXTRA[@]}"
