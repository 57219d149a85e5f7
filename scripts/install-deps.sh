#!/usr/bin/env bash
# Installs every Debian package the build, tests and tools need. Idempotent:
# packages already present are skipped, so a warm machine returns in a second.
# --build-only: just what the CMake build of the binaries needs (the build
# stage of deploy/docker/Dockerfile): no linters, Bazel, etcd or Node.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev prometheus-cpp-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libjemalloc-dev  # the server allocator (APOGEE_MALLOC)
)
PACKAGES=(
  "${BUILD_PACKAGES[@]}" git
  clang-format clang-tidy
  clang libclang-rt-14-dev ccache  # fuzz targets: libFuzzer + sanitizer runtimes (fuzz/README.md)
  bazel-bootstrap bazel-rules-java
  curl etcd-server
  # container images and their smoke test (deploy/docker/)
  podman podman-compose netavark aardvark-dns iptables
  prometheus unzip  # promtool (deploy/prometheus rule tests); unzip (Helm, tests/deploy/tools.sh)
)
build_only=false
if [ "${1:-}" = "--build-only" ]; then
  build_only=true
  PACKAGES=("${BUILD_PACKAGES[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node and npm (interop tests with the official RocketMQ client): machines
# may carry a nodejs that bundles npm, which conflicts with Debian's npm
# package, so ask for each only when its command is missing.
if [ "$build_only" = false ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
