#!/usr/bin/env bash
# Delayed messages through a private NameServer + store + broker (free
# ports, a temp dir), with apogee-bench. Three measurements:
#
#   pending [COUNT]  COUNT (1 000 000) messages delayed by 1 h, so none fires
#                    during the run: the scheduling rate (acknowledged sends/s),
#                    broker and store VmRSS/RssAnon before, right after and
#                    10 s after, the index directory's size, and a consume
#                    that must find nothing (no timer fired early).
#   lateness [SECONDS] [RATE] [LOAD_RATE]
#                    e2e for SECONDS (60): RATE (200) msg/s delayed by 5 s,
#                    consumed by a PushConsumer, while another topic takes
#                    LOAD_RATE (20 000) msg/s of normal produce; prints the
#                    lateness (receipt - delivery time) and how many came early.
#   burst [COUNT] [DELAY]
#                    COUNT (200 000) messages all due DELAY (60 s) after the
#                    start, drained by a SimpleConsumer started before they
#                    are due: fired/s through the cluster = COUNT / the last
#                    message's lateness.
#
# Each figure line carries /proc/loadavg. As noisy as the machine.
#   scripts/bench-timers.sh pending 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
FLUSH=async
WHAT=${1:-pending}
# shellcheck source=lib/bench_cluster.sh
source scripts/lib/bench_cluster.sh
open_bench_home bench-timers
start_bench_cluster

bench() { "$BUILD_DIR/tools/bench/apogee-bench" "$@" --endpoints="$ns" --json; }
# "VmRSS=… RssAnon=…" in KiB of process $2, labelled $1.
rss() {
  awk -v who="$1" '/^(VmRSS|RssAnon):/ {printf "%s_%s_kib=%d ", who, $1, $2}' "/proc/$2/status" |
    tr -d ':'
}
memory() { echo "$1: $(rss broker "$broker_pid")$(rss store "$store_pid")$(loadavg)"; }

case "$WHAT" in
  pending)
    count=${2:-1000000}
    memory before
    bench produce --topic=BenchTimers --delay=1h --count="$count" --window=1000 --size=256 \
      2>"$HOME_DIR/logs/bench.log"
    memory after
    sleep 10  # the dispatcher indexes behind the acks; let it settle before the last sample
    memory after+10s
    echo "index_bytes=$(du -sb "$HOME_DIR/store/index" | cut -f1)" \
      "store_dir_bytes=$(du -sb "$HOME_DIR/store" | cut -f1)"
    echo "first pending timers:"
    "$BUILD_DIR/tools/admin/apogee-admin" --nameservers="$ns" timer list --topic=BenchTimers \
      --limit=3
    # None is due for an hour: a consumer must find nothing.
    bench consume --topic=BenchTimers --group=BenchTimersCheck --duration=3s --timeout=3s \
      2>"$HOME_DIR/logs/check.log"
    ;;
  lateness)
    seconds=${2:-60} rate=${3:-200} load_rate=${4:-20000}
    bench produce --topic=BenchLoad --window=1000 --size=1024 --rate="$load_rate" \
      --duration="$((seconds + 10))s" >"$HOME_DIR/load.json" 2>"$HOME_DIR/logs/load.log" &
    load_pid=$!
    sleep 3  # the load is running before the delayed messages start
    bench e2e --topic=BenchDelayed --delay=5s --rate="$rate" --concurrency=4 --consumer=push \
      --duration="${seconds}s" --timeout=20s 2>"$HOME_DIR/logs/bench.log"
    loadavg
    wait "$load_pid" || true
    echo "load: $(cat "$HOME_DIR/load.json")"
    ;;
  burst)
    count=${2:-200000} delay=${3:-60}
    bench produce --topic=BenchBurst --delay="${delay}s" --delay_from_start --count="$count" \
      --window=1000 --size=256 2>"$HOME_DIR/logs/produce.log"
    summary=$(bench consume --topic=BenchBurst --group=BenchBurstGroup --count="$count" \
      --concurrency=4 --receive_batch=256 --timeout="$((delay + 30))s" \
      2>"$HOME_DIR/logs/bench.log")
    echo "$summary"
    loadavg
    echo "$summary" | sed -n 's/.*"messages":\([0-9]*\).*"late_min_us":\(-*[0-9]*\),"late_max_us":\(-*[0-9]*\).*/\1 \2 \3/p' |
      awk '{ printf "fired_per_s=%.0f (messages %d, first %.3f s and last %.3f s after due)\n", $1 / ($3 / 1e6), $1, $2 / 1e6, $3 / 1e6 }'
    ;;
  *)
    echo "bench-timers: unknown measurement \"$WHAT\" (pending, lateness or burst)" >&2
    exit 2
    ;;
esac
