# Sourced by run-local.sh and run-ha.sh: background processes that stop
# together. Needs HOME_DIR (logs in $HOME_DIR/logs) and SCRIPT (for errors).
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop EXIT INT TERM

wait_for() {  # name address-file: until the process published its address
  for _ in $(seq 1 200); do
    if [ -s "$2" ]; then return 0; fi
    sleep 0.05
  done
  echo "$SCRIPT: $1 did not start; see $HOME_DIR/logs/$1.log" >&2
  exit 1
}
