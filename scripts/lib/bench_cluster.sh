# Sourced by the bench-*.sh scripts. open_bench_home NAME makes the run's
# temp dir ($HOME_DIR, kept with KEEP=1), sources lib/processes.sh (its
# messages say NAME) and stops every started process on exit. Then
# start_bench_cluster starts a private
# NameServer + store (--flush=$FLUSH) + broker on free ports under
# $HOME_DIR, with extra broker flags as arguments. Sets ns (NameServer
# address), broker (broker address), store_pid and broker_pid. Also
# helpers for the figures: cpu_ticks PID (utime+stime) and loadavg.
# STORE_METRICS=HOST:PORT serves the store's Prometheus metrics there
# (request counts per method), BROKER_METRICS=HOST:PORT the broker's (RPC
# latency per method); both off by default. STORE_FLAGS: extra store flags
# (word-split; e.g. --flush_interval=60s for an A/B run).
open_bench_home() {
  HOME_DIR=$(mktemp -d /tmp/apogee-bench.XXXXXX)
  mkdir -p "$HOME_DIR/logs"
  SCRIPT=$1
  # shellcheck source=lib/processes.sh
  source scripts/lib/processes.sh
  trap 'stop; [ -n "${KEEP:-}" ] || rm -rf "$HOME_DIR"' EXIT INT TERM
}

start_bench_cluster() {
  "$BUILD_DIR/services/nameserver/apogee-nameserver" --listen=127.0.0.1:0 --metrics_listen= \
    --address_file="$HOME_DIR/nameserver.address" >"$HOME_DIR/logs/nameserver.log" 2>&1 &
  pids+=($!)
  wait_for nameserver "$HOME_DIR/nameserver.address"
  ns=$(sed -n 's/^grpc=//p' "$HOME_DIR/nameserver.address")
  "$BUILD_DIR/services/store/apogee-store" --data_dir="$HOME_DIR/store" \
    --listen="unix:$HOME_DIR/store.sock" --flush="$FLUSH" --metrics_listen=${STORE_METRICS:-} \
    --address_file="$HOME_DIR/store.address" ${STORE_FLAGS:-} >"$HOME_DIR/logs/store.log" 2>&1 &
  store_pid=$!
  pids+=($store_pid)
  wait_for store "$HOME_DIR/store.address"
  "$BUILD_DIR/services/broker/apogee-broker" --nameservers="$ns" \
    --store="unix:$HOME_DIR/store.sock" --listen=127.0.0.1:0 --metrics_listen=${BROKER_METRICS:-} \
    --address_file="$HOME_DIR/broker.address" "$@" >"$HOME_DIR/logs/broker.log" 2>&1 &
  broker_pid=$!
  pids+=($broker_pid)
  wait_for broker "$HOME_DIR/broker.address"
  broker=$(sed -n 's/^grpc=//p' "$HOME_DIR/broker.address")
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "loadavg=1m,5m,15m": printed with each figure, the machine being shared.
loadavg() { echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"; }
