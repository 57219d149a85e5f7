#!/usr/bin/env bash
# Container smoke test (ctest docker_smoke_test): assembles the runtime image
# from BUILD_DIR's binaries (build-prebuilt.sh), starts compose.yaml's
# cluster (2 NameServers, broker-a master + slave, each with its store
# sidecar on a shared unix socket, sync replication and sync flush), waits
# for every container's HEALTHCHECK (apogee-probe), produces and consumes
# through the NameServers with apogee-bench, SIGKILLs the master's broker
# and store containers, and consumes the rest from the slave: every
# acknowledged message must come back.
#
# usage: deploy/docker/smoke-test.sh BUILD_DIR
#   APOGEE_SMOKE_IMAGE=apogee:full  test that image instead of assembling one
#                                   (e.g. the output of build.sh; kept)
# Exit status: 0 passed, 1 failed, 77 skipped (podman or podman-compose
# missing, or podman cannot run containers on this machine; the reason is
# printed). Everything it creates carries a per-run name and is removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build_dir=$(cd "${1:?usage: smoke-test.sh BUILD_DIR}" && pwd)
readonly MESSAGES=2000        # produced before the kill
readonly BEFORE_KILL=500      # consumed (at least) from the master
readonly NAMESERVERS="nameserver-0:9876;nameserver-1:9876"
start=$(date +%s)

skip() { echo "SKIP: docker smoke test: $*"; exit 77; }
fail() { echo "FAIL: docker smoke test: $*" >&2; exit 1; }
step() { echo "smoke: +$(($(date +%s) - start))s $*"; }

command -v podman >/dev/null || skip "podman is not installed (apt-get install podman)"
command -v podman-compose >/dev/null || skip "podman-compose is not installed (apt-get install podman-compose)"
# shellcheck source=podman-env.sh
. "$here/podman-env.sh"
work=$(mktemp -d)
podman info >"$work/info" 2>&1 || skip "podman does not work here: $(tail -n 1 "$work/info")"

project="apogeesmoke$$"
image=${APOGEE_SMOKE_IMAGE:-localhost/apogee:smoke-$$}
network="${project}_default"
cleanup() {
  podman ps -aq --filter "label=io.podman.compose.project=$project" | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
  podman volume ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  podman network rm -f "$network" >/dev/null 2>&1 || true
  [ -n "${APOGEE_SMOKE_IMAGE:-}" ] || podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${APOGEE_SMOKE_IMAGE:-}" ]; then
  bash "$here/build-prebuilt.sh" "$build_dir" "$image"
  step "image built"
fi
# Can this machine run a container and give it a network? If not, skip
# (naming why); anything else going wrong later is a failure.
if ! podman run --rm --network none --health-cmd none "$image" apogee-nameserver --version >"$work/run" 2>&1; then
  skip "podman cannot run a container here: $(grep -v '^$' "$work/run" | tail -n 1)"
fi
if ! podman network create "$network" >"$work/net" 2>&1; then
  skip "podman cannot create a network here: $(tail -n 1 "$work/net")"
fi

# A tool (apogee-bench, apogee-admin) in a throwaway container on the
# cluster's network, where the brokers' advertised names resolve.
tool() { podman run --rm --network "$network" --health-cmd none "$image" "$@"; }
container() { echo "${project}_$1_1"; }
json_field() { grep -o "\"$1\":[0-9]*" | tail -n 1 | cut -d: -f2; }

APOGEE_IMAGE=$image podman-compose -p "$project" -f "$here/compose.yaml" up -d >"$work/up" 2>&1 ||
  { cat "$work/up"; fail "podman-compose up failed"; }
step "cluster started"

# Every container healthy (its image HEALTHCHECK: apogee-probe), bounded.
for service in nameserver-0 nameserver-1 store-0 store-1 broker-0 broker-1; do
  deadline=$(($(date +%s) + 60))
  until podman healthcheck run "$(container "$service")" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      podman logs "$(container "$service")" 2>&1 | tail -n 20
      fail "$service not healthy within 60s"
    fi
    sleep 0.2
  done
done
step "all 6 containers healthy"
# Both brokers registered with both NameServers (the slave's route is what
# consumers fall back to).
for ns in nameserver-0:9876 nameserver-1:9876; do
  deadline=$(($(date +%s) + 60))
  until tool apogee-admin --nameservers="$ns" cluster list >"$work/cluster" 2>&1 &&
    grep -q broker-0:8081 "$work/cluster" && grep -q broker-1:8081 "$work/cluster"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      cat "$work/cluster"
      fail "$ns does not list broker-0 and broker-1 within 60s"
    fi
    sleep 0.5
  done
done
step "master and slave registered with both NameServers"

tool apogee-bench produce --endpoints="$NAMESERVERS" --topic=SmokeTopic --size=256 \
  --count=$MESSAGES --concurrency=4 --json >"$work/produce" 2>"$work/produce.err" ||
  { cat "$work/produce.err"; fail "apogee-bench produce failed"; }
produced=$(json_field messages <"$work/produce")
errors=$(json_field errors <"$work/produce")
[ "$produced" = "$MESSAGES" ] && [ "$errors" = 0 ] ||
  fail "produced $produced of $MESSAGES with $errors errors: $(cat "$work/produce")"
step "produced $produced through the NameServers (sync replication)"

consume() {
  tool apogee-bench consume --endpoints="$NAMESERVERS" --topic=SmokeTopic --group=SmokeGroup \
    --count="$1" --timeout=20s --json 2>"$work/consume.err" | json_field messages
}
first=$(consume $BEFORE_KILL) || { cat "$work/consume.err"; fail "consume from the master failed"; }
[ "${first:-0}" -ge $BEFORE_KILL ] || fail "consumed ${first:-0} of $BEFORE_KILL from the master"
step "consumed $first from the master"

podman kill --signal KILL "$(container broker-0)" "$(container store-0)" >/dev/null
kill_time=$(date +%s)
step "SIGKILLed broker-0 and store-0 (the master)"
rest=$((MESSAGES - first))
second=$(consume "$rest") || { cat "$work/consume.err"; fail "consume from the slave failed"; }
[ "${second:-0}" -ge "$rest" ] ||
  fail "after the kill consumed ${second:-0} of the $rest acknowledged messages left"
step "consumed the other $second from the slave, $(($(date +%s) - kill_time))s after the kill"
echo "PASS: docker smoke test in $(($(date +%s) - start))s"
