#!/usr/bin/env bash
# Soak: a private NameServer + store + broker on free ports under steady
# produce + push consume (`apogee-bench e2e`) and an admin query every 10 s,
# for --duration (default 1h). Every minute it samples each server's RSS,
# open fds and threads (/proc); at the end it prints the samples, whether
# each series stayed flat once the cluster reached its steady state (every
# 10-minute mean of its samples within 10 % of the first one; RSS is VmRSS;
# RssAnon, the heap part, is shown too; fds: or within --fd_slack, default
# 8: the store keeps each RocksDB file open until compaction replaces it),
# and whether there were errors (bench errors, consumed < produced, failed
# admin queries, a process that died); and, for information, each series'
# single-sample range and trend (the mean of the last third of the judged
# samples against the first).
# Exit status 0 only when all is flat and error-free. Results of a run:
# docs/soak.md.
#
#   scripts/soak.sh [--duration=1h] [--rate=N] [--size=1024] [--interval=60] [--fd_slack=8]
#                   [--retention=10m]
#
# The store keeps --retention of data in 256 MiB segments (older segments
# are deleted, so disk use and the store's files reach a steady state: at
# 10k msgs/s of 1 KiB about 6 GiB).
# Steady state: the store keeps --retention of data, so its commit-log
# segments (one open fd each) and its indexes grow until retention starts
# deleting; the samples are judged from the first one after --retention plus
# the warm-up interval.
# --rate: messages/s; default half the maximum sustained rate, measured
# first on the same cluster (not counted): a 20 s unthrottled run of the
# same `apogee-bench e2e --window=1000` gives the burst rate B (consumed
# messages/s), then 30 s runs throttled to B*0.8, B*0.64, ... until one
# keeps up (all produced messages consumed without errors, both sides
# within 2 % of the target rate); that rate is the maximum. A burst
# overstates what the cluster sustains: throttled, each call carries fewer
# messages and costs more per message (docs/soak.md). --rate=max runs
# unthrottled (full rate).
# KEEP=1 keeps the temp dir (logs, samples).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DURATION=1h
RATE=0
SIZE=1024
INTERVAL=60
FD_SLACK=8
RETENTION=10m
for arg in "$@"; do
  case "$arg" in
    --duration=*) DURATION=${arg#--duration=} ;;
    --rate=*) RATE=${arg#--rate=} ;;
    --size=*) SIZE=${arg#--size=} ;;
    --interval=*) INTERVAL=${arg#--interval=} ;;
    --fd_slack=*) FD_SLACK=${arg#--fd_slack=} ;;
    --retention=*) RETENTION=${arg#--retention=} ;;
    *) echo "soak: unknown argument $arg (see the header of $0)" >&2; exit 2 ;;
  esac
done
seconds() {  # 90s, 5m, 1h, or plain seconds
  case "$1" in
    *h) echo $((${1%h} * 3600)) ;;
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}
TOTAL=$(seconds "$DURATION")
if ! [[ "$INTERVAL" =~ ^[0-9]+$ ]] || [ "$INTERVAL" -lt 5 ]; then
  echo "soak: --interval=$INTERVAL must be a whole number of at least 5 (s)" >&2
  exit 2
fi
RETENTION_S=$(seconds "$RETENTION")
# The first judged sample: past the retention period and the warm-up.
STEADY=$(((RETENTION_S + INTERVAL - 1) / INTERVAL + 1))
if ! [[ "$TOTAL" =~ ^[0-9]+$ ]] || [ "$TOTAL" -lt $(((STEADY + 2) * INTERVAL)) ]; then
  echo "soak: --duration=$DURATION must cover --retention=$RETENTION plus three sample" \
    "intervals ($(((STEADY + 2) * INTERVAL))s): samples are judged once retention deletes" >&2
  exit 2
fi
if ! [[ "$FD_SLACK" =~ ^[0-9]+$ ]]; then
  echo "soak: --fd_slack=$FD_SLACK must be a whole number" >&2
  exit 2
fi
if ! [[ "$RATE" =~ ^[0-9]+$ ]] && [ "$RATE" != max ]; then
  echo "soak: --rate=$RATE is neither a whole number of messages/s nor max" >&2
  exit 2
fi
for bin in services/nameserver/apogee-nameserver services/store/apogee-store \
  services/broker/apogee-broker tools/bench/apogee-bench tools/admin/apogee-admin; do
  [ -x "$BUILD_DIR/$bin" ] || { echo "soak: $BUILD_DIR/$bin is not built" >&2; exit 2; }
done

HOME_DIR=$(mktemp -d /tmp/apogee-soak.XXXXXX)
mkdir -p "$HOME_DIR/logs"
SCRIPT=soak
# shellcheck source=lib/processes.sh
source scripts/lib/processes.sh
trap 'stop; [ -n "${KEEP:-}" ] || rm -rf "$HOME_DIR"' EXIT INT TERM

"$BUILD_DIR/services/nameserver/apogee-nameserver" --listen=127.0.0.1:0 --metrics_listen= \
  --address_file="$HOME_DIR/nameserver.address" >"$HOME_DIR/logs/nameserver.log" 2>&1 &
ns_pid=$!
pids+=("$ns_pid")
wait_for nameserver "$HOME_DIR/nameserver.address"
ns=$(sed -n 's/^grpc=//p' "$HOME_DIR/nameserver.address")
"$BUILD_DIR/services/store/apogee-store" --data_dir="$HOME_DIR/store" \
  --listen="unix:$HOME_DIR/store.sock" --metrics_listen=127.0.0.1:0 \
  --retention="$RETENTION" --segment_size=256MiB \
  --address_file="$HOME_DIR/store.address" >"$HOME_DIR/logs/store.log" 2>&1 &
store_pid=$!
pids+=("$store_pid")
wait_for store "$HOME_DIR/store.address"
store_metrics=$(sed -n 's/^metrics=//p' "$HOME_DIR/store.address")
"$BUILD_DIR/services/broker/apogee-broker" --nameservers="$ns" \
  --store="unix:$HOME_DIR/store.sock" --listen=127.0.0.1:0 --metrics_listen= \
  --address_file="$HOME_DIR/broker.address" >"$HOME_DIR/logs/broker.log" 2>&1 &
broker_pid=$!
pids+=("$broker_pid")
wait_for broker "$HOME_DIR/broker.address"
bench=("$BUILD_DIR/tools/bench/apogee-bench")
admin=("$BUILD_DIR/tools/admin/apogee-admin" --nameservers="$ns")

e2e() {  # [flags...]: the soak's load shape
  "${bench[@]}" e2e --endpoints="$ns" --size="$SIZE" --window=1000 --consumer=push --timeout=60s \
    --json "$@"
}
# A number from the bench summary line of one mode (e2e-produce|e2e-consume);
# empty when that line is missing (sed, unlike grep, does not fail then).
json_field() {  # mode field < bench json
  sed -n "/\"mode\":\"$1\"/ s/.*\"$2\":\([0-9.]*\).*/\1/p" | head -1
}
# The bench errors of both modes.
error_count() {  # < bench json
  sed -n 's/.*"errors":\([0-9]*\).*/\1/p' | awk '{n += $1} END {print n + 0}'
}
if [ "$RATE" = 0 ]; then
  out=$(e2e --topic=SoakBurst --group=SoakBurstGroup --duration=20s 2>"$HOME_DIR/logs/measure.log")
  burst=$(echo "$out" | json_field e2e-consume msgs_per_s)
  [ -n "$burst" ] || { echo "soak: measuring the burst rate failed; see $HOME_DIR/logs" >&2; exit 1; }
  echo "soak: burst rate ${burst} msgs/s (produce + push consume, unthrottled 20 s)"
  max=""
  for k in 1 2 3 4 5 6 7 8; do
    try=$(awk -v b="$burst" -v k="$k" 'BEGIN { r = int(b * 0.8 ^ k); print (r < 1 ? 1 : r) }')
    out=$(e2e --topic="SoakProbe$k" --group="SoakProbeGroup$k" --rate="$try" --duration=30s \
      2>>"$HOME_DIR/logs/measure.log") || true
    sent=$(echo "$out" | json_field e2e-produce messages)
    got=$(echo "$out" | json_field e2e-consume messages)
    sent_rate=$(echo "$out" | json_field e2e-produce msgs_per_s)
    got_rate=$(echo "$out" | json_field e2e-consume msgs_per_s)
    bad=$(echo "$out" | error_count)
    kept=$(awk -v t="$try" -v s="${sent:-0}" -v g="${got:-0}" -v sr="${sent_rate:-0}" \
      -v gr="${got_rate:-0}" -v e="$bad" \
      'BEGIN { print (s > 0 && g >= s && e == 0 && sr >= 0.98 * t && gr >= 0.98 * t) ? 1 : 0 }')
    echo "soak: probe ${try} msgs/s for 30 s: produced ${sent_rate:-?}/s, consumed ${got_rate:-?}/s" \
      "($([ "$kept" = 1 ] && echo "kept up" || echo "fell behind"))"
    if [ "$kept" = 1 ]; then
      max=$try
      break
    fi
  done
  [ -n "$max" ] || { echo "soak: no probe rate was sustained; see $HOME_DIR/logs" >&2; exit 1; }
  RATE=$(awk -v m="$max" 'BEGIN { r = int(m / 2); print (r < 1 ? 1 : r) }')
  echo "soak: measured maximum ${max} msgs/s sustained (produce + push consume); running at ${RATE} msgs/s"
fi
echo "soak: ${TOTAL}s at ${RATE} msgs/s of ${SIZE} B (produce + push consume), admin query every 10 s, samples every ${INTERVAL}s; dir $HOME_DIR"

rate_flag=(--rate="$RATE")
[ "$RATE" != max ] || rate_flag=()  # unthrottled
e2e --topic=Soak --group=SoakGroup "${rate_flag[@]}" --duration="${TOTAL}s" \
  >"$HOME_DIR/bench.json" 2>"$HOME_DIR/logs/bench.log" &
bench_pid=$!

# Admin queries in the background: broker status and the topic's stats.
(
  n=0 failed=0
  while kill -0 "$bench_pid" 2>/dev/null; do
    n=$((n + 1))
    if ! "${admin[@]}" broker status >/dev/null 2>>"$HOME_DIR/logs/admin.log"; then
      failed=$((failed + 1))
    fi
    # The topic appears with the first send: count its stats only once routed.
    if "${admin[@]}" topic route --name=Soak >/dev/null 2>&1 &&
      ! "${admin[@]}" topic stats --name=Soak >/dev/null 2>>"$HOME_DIR/logs/admin.log"; then
      failed=$((failed + 1))
    fi
    echo "$n $failed" >"$HOME_DIR/admin.count"
    sleep 10
  done
) &
admin_pid=$!

# Lines `find ARGS...` prints. `|| true`: with pipefail, find failing on an
# entry that vanished while it listed (an fd closed, a table file compacted
# away) would end the soak.
count_found() { find "$@" 2>/dev/null | wc -l || true; }

sample() {  # index name pid -> "index name vm_rss_kib rss_anon_kib fds threads"
  local status="/proc/$3/status"
  if [ ! -r "$status" ]; then
    echo "$1 $2 dead 0 0 0"
    return
  fi
  local rss anon threads fds
  rss=$(awk '/^VmRSS:/ {print $2}' "$status")
  anon=$(awk '/^RssAnon:/ {print $2}' "$status")
  threads=$(awk '/^Threads:/ {print $2}' "$status")
  fds=$(count_found "/proc/$3/fd" -mindepth 1 -maxdepth 1)
  echo "$1 $2 $rss $anon $fds $threads"
}
# What the store's memory and files are made of (to tell a bounded cache
# filling and draining from growth): RocksDB memtables and block cache
# (its metrics; both within --rocksdb_memory_budget), the index's table
# files and the commit-log segments.
# -> "index memtables_kib block_cache_kib table_files table_mib segments"
sample_store_parts() {
  local metrics memtables cache tables table_kib segments
  metrics=$(curl -s --max-time 5 "http://$store_metrics/metrics" || true)
  memtables=$(echo "$metrics" | awk '/^apogee_store_rocksdb_memory_bytes\{.*kind="memtables"/ {print int($2 / 1024)}')
  cache=$(echo "$metrics" | awk '/^apogee_store_rocksdb_memory_bytes\{.*kind="block_cache"/ {print int($2 / 1024)}')
  tables=$(count_found "$HOME_DIR/store/index" -name '*.sst')
  table_kib=$(find "$HOME_DIR/store/index" -name '*.sst' -printf '%k\n' 2>/dev/null |
    awk '{n += $1} END {print n + 0}' || true)  # as in count_found
  segments=$(count_found "$HOME_DIR/store/commitlog" -type f)
  echo "$1 ${memtables:-?} ${cache:-?} $tables $((table_kib / 1024)) $segments"
}
samples="$HOME_DIR/samples.txt"
parts="$HOME_DIR/store-parts.txt"
: >"$samples"
: >"$parts"
start=$(date +%s)
i=0
while :; do
  for p in "nameserver $ns_pid" "store $store_pid" "broker $broker_pid"; do
    # shellcheck disable=SC2086
    sample "$i" $p >>"$samples"
  done
  sample_store_parts "$i" >>"$parts"
  i=$((i + 1))
  next=$((start + i * INTERVAL))
  [ "$next" -le $((start + TOTAL)) ] || break
  while [ "$(date +%s)" -lt "$next" ]; do sleep 1; done
done
wait "$bench_pid" && bench_ok=1 || bench_ok=0
wait "$admin_pid" || true
read -r admin_runs admin_failed <"$HOME_DIR/admin.count" || { admin_runs=0; admin_failed=0; }

produced=$(json_field e2e-produce messages <"$HOME_DIR/bench.json")
consumed=$(json_field e2e-consume messages <"$HOME_DIR/bench.json")
errors=$(error_count <"$HOME_DIR/bench.json")

echo
echo "samples every ${INTERVAL}s (VmRSS MiB / RssAnon MiB / fds / threads):"
awk '{
  key = $2; min = $1
  if (!(min in seen)) { seen[min] = 1; mins[++nm] = min }
  if (!(key in known)) { known[key] = 1; names[++nn] = key }
  v[min, key] = ($3 == "dead") ? "dead" : sprintf("%.1f/%.1f/%d/%d", $3 / 1024, $4 / 1024, $5, $6)
} END {
  printf "%-6s", "sample"; for (j = 1; j <= nn; j++) printf " %-24s", names[j]; printf "\n"
  for (m = 1; m <= nm; m++) {
    printf "%-6s", mins[m]; for (j = 1; j <= nn; j++) printf " %-24s", v[mins[m], names[j]]
    printf "\n"
  }
}' "$samples"

echo
echo "the store's parts (RocksDB memory from its metrics, MiB; the index's table files; commit-log segments):"
echo "sample memtables block_cache rss-rocksdb table_files table_MiB segments"
awk 'NR == FNR { if ($2 == "store") rss[$1] = $3; next }
  { other = ($2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/) ? sprintf("%.1f", (rss[$1] - $3) / 1024) : "?"
    printf "%-6s %-9s %-11s %-11s %-11s %-9s %s\n", $1,
      ($2 ~ /^[0-9]+$/ ? sprintf("%.1f", $2 / 1024) : "?"),
      ($3 ~ /^[0-9]+$/ ? sprintf("%.1f", $3 / 1024) : "?"), other, $4, $5, $6 }' "$samples" "$parts"

echo
# Flat: every run of WINDOW consecutive judged samples (10 minutes) has a
# mean within 10 % of the first run's mean (fds: or within FD_SLACK) and no
# process died. Single samples are printed beside it: a cache that fills
# and drains, or table files that compaction replaces, move them from one
# minute to the next without the level moving; a leak moves the means.
WINDOW=$(((600 + INTERVAL - 1) / INTERVAL))
[ "$WINDOW" -ge 3 ] || WINDOW=3
echo "flat: every ${WINDOW}-sample mean within 10 % of the first one, judged from sample $STEADY" \
  "(the first after --retention=$RETENTION and the warm-up; fds: or within $FD_SLACK); single samples for reference:"
verdicts=$(awk -v slack="$FD_SLACK" -v steady="$STEADY" -v w="$WINDOW" '$1 >= steady {
  for (f = 3; f <= 6; f++) {
    k = $2 " " (f == 3 ? "vm_rss_kib" : f == 4 ? "rss_anon_kib" : f == 5 ? "fds" : "threads")
    if (!(k in seen)) { seen[k] = 1; order[++m] = k; lo[k] = $f; hi[k] = $f }
    if ($3 == "dead") { dead[k] = 1; continue }
    v[k, ++n[k]] = $f
    if ($f < lo[k]) lo[k] = $f
    if ($f > hi[k]) hi[k] = $f
  }
} END {
  ok = 1
  for (i = 1; i <= m; i++) {
    k = order[i]; c = n[k]; win = (c < w) ? c : w
    base = 0; for (j = 1; j <= win; j++) base += v[k, j]
    base = (win > 0) ? base / win : 0
    worst = 0; wlo = base; whi = base
    for (s = 1; s + win - 1 <= c; s++) {
      mean = 0; for (j = s; j < s + win; j++) mean += v[k, j]
      mean /= win
      if (mean < wlo) wlo = mean
      if (mean > whi) whi = mean
      d = mean - base; if (d < 0) d = -d
      if (d > worst) worst = d
    }
    dev = (base > 0) ? worst / base : 1
    flat = !dead[k] && win > 0 && (dev <= 0.10 || (k ~ / fds$/ && worst <= slack))
    info = (k ~ / rss_anon_kib$/)
    if (!flat && !info) ok = 0
    pdev = (base > 0) ? ((hi[k] - base > base - lo[k]) ? hi[k] - base : base - lo[k]) / base : 0
    printf "  %-24s means %.0f..%.0f (first %.0f) max_dev=%5.1f%%  %-9s samples %s..%s (%.1f%% from the first mean)%s\n",
      k, wlo, whi, base, dev * 100, (flat ? "flat" : "NOT FLAT"), lo[k], hi[k], pdev * 100,
      (info ? " (info only)" : "")
  }
  print ok
}' "$samples")
echo "$verdicts" | sed '$d'
flat=$(echo "$verdicts" | tail -1)

# Growth over the whole run (information): the mean of the last third of
# the judged samples against the first third.
echo
echo "trend: mean of the last third of the judged samples against the first third:"
awk -v steady="$STEADY" '$1 >= steady && $3 != "dead" {
  for (f = 3; f <= 6; f++) {
    k = $2 " " (f == 3 ? "vm_rss_kib" : f == 4 ? "rss_anon_kib" : f == 5 ? "fds" : "threads")
    if (!(k in n)) order[++m] = k
    v[k, ++n[k]] = $f
  }
} END {
  for (i = 1; i <= m; i++) {
    k = order[i]; t = int(n[k] / 3)
    if (t < 1) continue
    a = 0; b = 0
    for (j = 1; j <= t; j++) { a += v[k, j]; b += v[k, n[k] - t + j] }
    a /= t; b /= t
    printf "  %-24s first=%-10.0f last=%-10.0f change=%+6.1f%%\n", k, a, b, (a > 0 ? (b - a) / a * 100 : 0)
  }
}' "$samples"

echo
echo "produced=${produced:-?} consumed=${consumed:-?} bench_errors=$errors bench_exit_ok=$bench_ok admin_queries=$admin_runs admin_failures=$admin_failed"
clean=1
[ "$bench_ok" = 1 ] && [ "$errors" = 0 ] && [ "$admin_failed" = 0 ] || clean=0
[ -n "$produced" ] && [ -n "$consumed" ] && [ "$consumed" -ge "$produced" ] || clean=0
for pid in $ns_pid $store_pid $broker_pid; do kill -0 "$pid" 2>/dev/null || clean=0; done
echo "flat: $([ "$flat" = 1 ] && echo yes || echo NO)   errors: $([ "$clean" = 1 ] && echo none || echo YES)"
[ "$flat" = 1 ] && [ "$clean" = 1 ]
