#!/usr/bin/env bash
# Starts a local Apogee cluster from the build tree (NameServer, store,
# broker) and keeps it in the foreground; Ctrl-C stops every process. Data and logs go to $APOGEE_HOME
# (default .apogee/ in the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
HOME_DIR=${APOGEE_HOME:-$PWD/.apogee}
mkdir -p "$HOME_DIR/logs"

SCRIPT=run-local
# shellcheck source=lib/processes.sh
source scripts/lib/processes.sh

rm -f "$HOME_DIR/nameserver.address"
"$BUILD_DIR/services/nameserver/apogee-nameserver" \
  --listen=0.0.0.0:9876 --metrics_listen=0.0.0.0:9877 \
  --address_file="$HOME_DIR/nameserver.address" \
  >"$HOME_DIR/logs/nameserver.log" 2>&1 &
pids+=($!)
wait_for nameserver "$HOME_DIR/nameserver.address"

rm -f "$HOME_DIR/store.address"
"$BUILD_DIR/services/store/apogee-store" \
  --data_dir="$HOME_DIR/store" --listen="unix:$HOME_DIR/store.sock" \
  --metrics_listen=0.0.0.0:10921 --address_file="$HOME_DIR/store.address" \
  >"$HOME_DIR/logs/store.log" 2>&1 &
pids+=($!)
wait_for store "$HOME_DIR/store.address"

rm -f "$HOME_DIR/broker.address"
"$BUILD_DIR/services/broker/apogee-broker" \
  --nameservers=127.0.0.1:9876 --store="unix:$HOME_DIR/store.sock" \
  --listen=0.0.0.0:8081 --advertise=127.0.0.1:8081 --metrics_listen=0.0.0.0:8082 \
  --address_file="$HOME_DIR/broker.address" \
  >"$HOME_DIR/logs/broker.log" 2>&1 &
pids+=($!)
wait_for broker "$HOME_DIR/broker.address"

echo "apogee: NameServer  grpc 127.0.0.1:9876  metrics http://127.0.0.1:9877/metrics"
echo "apogee: Store       unix:$HOME_DIR/store.sock  metrics http://127.0.0.1:10921/metrics"
echo "apogee: Broker      grpc 127.0.0.1:8081 (RocketMQ 5 clients)  metrics http://127.0.0.1:8082/metrics"
echo "apogee: logs in $HOME_DIR/logs; Ctrl-C stops the cluster"
wait -n "${pids[@]}"
echo "run-local: a process exited; stopping the cluster" >&2
