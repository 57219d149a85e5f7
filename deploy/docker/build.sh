#!/usr/bin/env bash
# The full multi-stage build of the image from source (Dockerfile), timed.
# Imports the Debian base first when no registry can provide it
# (base-image.sh). Takes long (a Release build of the shipped binaries on
# JOBS cores; README.md has a measured time); CI uses build-prebuilt.sh.
#
# usage: deploy/docker/build.sh [IMAGE]     (default apogee:latest)
#   JOBS=N  compile jobs in the build stage (default 2)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
image=${1:-apogee:latest}
# shellcheck source=podman-env.sh
. "$here/podman-env.sh"

start=$(date +%s)
bash "$here/base-image.sh"
base_done=$(date +%s)
# --pull=never: the base is local (imported or pulled before); docker
# format keeps the HEALTHCHECK.
podman build --pull=never --format docker --build-arg JOBS="${JOBS:-2}" \
  -f "$here/Dockerfile" -t "$image" "$repo"
end=$(date +%s)
size=$(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}')
echo "build: $image ($size) in $((end - start))s: base image $((base_done - start))s," \
  "multi-stage build $((end - base_done))s"
