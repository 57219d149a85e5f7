#!/usr/bin/env bash
# Store memory soak: starts a real apogee-store in a temp dir, drives it with
# store_load (appends with ids and keys on 32 queues, offset commits) for N
# minutes and samples the store's RSS and its RocksDB memory gauges. Prints a
# Markdown table (docs/benchmarks.md keeps the figures).
#
#   scripts/soak-store.sh [minutes=5] [build_dir=build]
#
# Environment: STORE_FLAGS (extra apogee-store flags, e.g.
# "--rocksdb_memory_budget=32MiB"), LOAD_FLAGS (extra store_load flags, e.g.
# "--rate=20000"), SAMPLE_SECONDS (default 20).
set -euo pipefail

minutes=${1:-5}
build=${2:-build}
sample=${SAMPLE_SECONDS:-20}
store_bin=$build/services/store/apogee-store
load_bin=$build/services/store/store_load
for bin in "$store_bin" "$load_bin"; do
  if [[ ! -x $bin ]]; then
    echo "soak-store: $bin is missing; build it: ninja -C $build apogee-store store_load" >&2
    exit 2
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/apogee-soak-XXXXXX")
store_pid=""
load_pid=""
cleanup() {
  if [[ -n $load_pid ]]; then kill "$load_pid" 2>/dev/null || true; fi
  if [[ -n $store_pid ]]; then kill -KILL "$store_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086  # STORE_FLAGS / LOAD_FLAGS are word lists
"$store_bin" --data_dir="$work/data" --listen="unix:$work/store.sock" \
  --metrics_listen=127.0.0.1:0 --address_file="$work/address" ${STORE_FLAGS:-} \
  2>"$work/store.log" &
store_pid=$!
metrics=""
for _ in $(seq 1 300); do
  if [[ -s $work/address ]] && grep -q '^metrics=' "$work/address"; then
    metrics=$(sed -n 's/^metrics=//p' "$work/address")
    break
  fi
  kill -0 "$store_pid" 2>/dev/null || { cat "$work/store.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $metrics ]] || { echo "soak-store: the store did not start" >&2; exit 1; }

# shellcheck disable=SC2086
"$load_bin" --target="unix:$work/store.sock" --duration="${minutes}m" ${LOAD_FLAGS:-} \
  >"$work/load.log" 2>&1 &
load_pid=$!

gauge() {  # gauge <metrics text> <kind>: MiB of apogee_store_rocksdb_memory_bytes{kind}
  awk -v kind="$2" '$1 == "apogee_store_rocksdb_memory_bytes{kind=\"" kind "\"}" \
    { printf "%.1f", $2 / 1048576 }' <<<"$1"
}

echo "store: $(grep -o 'event=started.*' "$work/store.log")"
echo
echo "| t (s) | RSS (MiB) | memtables (MiB) | block cache (MiB) | table readers (MiB) | records stored |"
echo "|---:|---:|---:|---:|---:|---:|"
start=$(date +%s)
while kill -0 "$load_pid" 2>/dev/null; do
  rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$store_pid/status")
  text=$(curl -s "http://$metrics/metrics" || true)
  records=$(awk '$1 == "apogee_store_messages_in_total" { printf "%d", $2 }' <<<"$text")
  printf '| %d | %.1f | %s | %s | %s | %s |\n' "$(($(date +%s) - start))" \
    "$(awk -v kb="$rss_kb" 'BEGIN { print kb / 1024 }')" "$(gauge "$text" memtables)" \
    "$(gauge "$text" block_cache)" "$(gauge "$text" table_readers)" "${records:-?}"
  sleep "$sample"
done
load_status=0
wait "$load_pid" || load_status=$?
load_pid=""
echo
tail -n 1 "$work/load.log"
echo "budget: $(gauge "$(curl -s "http://$metrics/metrics")" budget) MiB;" \
  "data dir: $(du -sh "$work/data" | cut -f1)"
kill -TERM "$store_pid"
store_status=0
wait "$store_pid" || store_status=$?
store_pid=""
echo "store exit status after SIGTERM: $store_status; store_load: $load_status"
[[ $load_status -eq 0 && $store_status -eq 0 ]]
