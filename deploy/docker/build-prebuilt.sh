#!/usr/bin/env bash
# Assembles the runtime image from binaries already built (CI's build tree)
# with Dockerfile.prebuilt: a few seconds, no compiler, no base image, no
# network. The host must be Debian bookworm (the libraries are copied from
# it, see collect-runtime.sh).
#
# usage: deploy/docker/build-prebuilt.sh [BUILD_DIR] [IMAGE]
#   BUILD_DIR  CMake build directory (default: build); needs the targets
#              apogee-nameserver apogee-broker apogee-store apogee-admin
#              apogee-bench apogee-probe
#   IMAGE      tag to build (default: apogee:latest)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build_dir=${1:-build}
image=${2:-apogee:latest}
# shellcheck source=podman-env.sh
. "$here/podman-env.sh"

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
bash "$here/collect-runtime.sh" "$build_dir" "$context"
cp "$here/Dockerfile.prebuilt" "$context/Dockerfile"
# docker format: OCI images drop HEALTHCHECK.
podman build --quiet --format docker --tag "$image" "$context" >/dev/null
echo "build-prebuilt: $image $(podman image inspect --format '{{.Size}}' "$image" |
  awk '{printf "%.1f MB", $1 / 1e6}')"
