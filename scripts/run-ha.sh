#!/usr/bin/env bash
# Starts a local high-availability cluster from the build tree and keeps it
# in the foreground (Ctrl-C stops every process): 2 NameServers, etcd, and
# one broker group "broker-a" of a master (id 0) and a slave (id 1), each
# broker with its own store. The group elects its master in etcd
# (--controller), so killing the master promotes the slave within seconds.
# Data and logs go to $APOGEE_HOME (default .apogee-ha/ in the repo).
# REPLICATION=sync makes the master wait for its slave before acknowledging.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
HOME_DIR=${APOGEE_HOME:-$PWD/.apogee-ha}
REPLICATION=${REPLICATION:-async}
ETCD=${APOGEE_ETCD:-etcd}
mkdir -p "$HOME_DIR/logs"

SCRIPT=run-ha
# shellcheck source=lib/processes.sh
source scripts/lib/processes.sh

command -v "$ETCD" >/dev/null || { echo "run-ha: etcd not found (apt-get install etcd-server)" >&2; exit 1; }
"$ETCD" --name=apogee-ha --data-dir="$HOME_DIR/etcd" \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --auto-compaction-retention=1 \
  >"$HOME_DIR/logs/etcd.log" 2>&1 &
pids+=($!)

nameservers=()
for i in 0 1; do
  port=$((9876 + 10 * i))
  rm -f "$HOME_DIR/nameserver-$i.address"
  "$BUILD_DIR/services/nameserver/apogee-nameserver" \
    --listen="0.0.0.0:$port" --metrics_listen="0.0.0.0:$((port + 1))" \
    --address_file="$HOME_DIR/nameserver-$i.address" \
    >"$HOME_DIR/logs/nameserver-$i.log" 2>&1 &
  pids+=($!)
  wait_for "nameserver-$i" "$HOME_DIR/nameserver-$i.address"
  nameservers+=("127.0.0.1:$port")
done
ns_list=$(IFS=';'; echo "${nameservers[*]}")

for id in 0 1; do
  ha_port=$((10912 + id))
  rm -f "$HOME_DIR/store-$id.address" "$HOME_DIR/broker-$id.address"
  "$BUILD_DIR/services/store/apogee-store" \
    --data_dir="$HOME_DIR/store-$id" --listen="unix:$HOME_DIR/store-$id.sock" \
    --ha_listen="0.0.0.0:$ha_port" --metrics_listen="0.0.0.0:$((10921 + 10 * id))" \
    --address_file="$HOME_DIR/store-$id.address" \
    >"$HOME_DIR/logs/store-$id.log" 2>&1 &
  pids+=($!)
  wait_for "store-$id" "$HOME_DIR/store-$id.address"
  client_port=$((8081 + 10 * id))
  "$BUILD_DIR/services/broker/apogee-broker" \
    --nameservers="$ns_list" --store="unix:$HOME_DIR/store-$id.sock" \
    --broker_name=broker-a --broker_id="$id" --controller="etcd:127.0.0.1:2379" \
    --replication="$REPLICATION" --store_ha_endpoint="127.0.0.1:$ha_port" \
    --listen="0.0.0.0:$client_port" --advertise="127.0.0.1:$client_port" \
    --metrics_listen="0.0.0.0:$((client_port + 1))" \
    --address_file="$HOME_DIR/broker-$id.address" \
    >"$HOME_DIR/logs/broker-$id.log" 2>&1 &
  pids+=($!)
  wait_for "broker-$id" "$HOME_DIR/broker-$id.address"
done

echo "apogee-ha: NameServers grpc ${nameservers[*]}"
echo "apogee-ha: etcd        http://127.0.0.1:2379 (the group's controller)"
echo "apogee-ha: broker-a/0  grpc 127.0.0.1:8081  store HA 127.0.0.1:10912"
echo "apogee-ha: broker-a/1  grpc 127.0.0.1:8091  store HA 127.0.0.1:10913"
echo "apogee-ha: replication=$REPLICATION; roles: build/tools/admin/apogee-admin broker status"
echo "apogee-ha: logs in $HOME_DIR/logs; Ctrl-C stops the cluster"
# Unlike run-local.sh, one process dying does not stop the others: kill a
# master (kill -9 $(pgrep -f broker_id=0)) and watch the slave take over.
wait
