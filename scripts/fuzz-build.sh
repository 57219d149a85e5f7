#!/usr/bin/env bash
# Configures and builds the libFuzzer targets (fuzz/README.md) in their own
# build dir with clang (-DAPOGEE_FUZZ=ON): ASan + UBSan + coverage. Builds
# only the fuzz targets and what they link (plus any extra ninja targets
# given). Uses ccache when installed (CCACHE_DIR as set by the caller).
# usage: scripts/fuzz-build.sh [NINJA_TARGET...]   env: FUZZ_BUILD_DIR (build-fuzz), JOBS
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${JOBS:-$(nproc)}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
if [[ ! -f "$dir/build.ninja" ]]; then
  # Release with line tables: symbolized stacks at a fraction of -g's cost.
  CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS=-gline-tables-only -DAPOGEE_FUZZ=ON -DAPOGEE_WERROR=ON \
    "${launcher[@]}" >/dev/null
fi
ninja -C "$dir" -j"$jobs" apogee-fuzz "$@"
