# shellcheck shell=bash
# Sourced by the scripts here (and by hand before podman-compose): makes
# podman usable on machines whose hard open-files limit is below what
# podman gives containers by default (1048576), where every container
# fails with "error setting rlimit type 7". It then points CONTAINERS_CONF
# at a file whose default_ulimits are the machine's own hard limits. An
# existing CONTAINERS_CONF is left alone.
#   . deploy/docker/podman-env.sh
if [ -z "${CONTAINERS_CONF:-}" ]; then
  _apogee_nofile=$(ulimit -Hn)
  if [ "$_apogee_nofile" != unlimited ] && [ "$_apogee_nofile" -lt 1048576 ]; then
    # nproc: 4096 is plenty for one container's threads, and asking for the
    # machine's whole hard limit has been refused (rlimit type 6) here.
    _apogee_nproc=$(ulimit -Hu)
    if [ "$_apogee_nproc" = unlimited ] || [ "$_apogee_nproc" -gt 4096 ]; then _apogee_nproc=4096; fi
    CONTAINERS_CONF="${TMPDIR:-/tmp}/apogee-containers-$(id -u).conf"
    printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
      "$_apogee_nofile" "$_apogee_nofile" "$_apogee_nproc" "$_apogee_nproc" >"$CONTAINERS_CONF"
    export CONTAINERS_CONF
  fi
  unset _apogee_nofile _apogee_nproc
fi
