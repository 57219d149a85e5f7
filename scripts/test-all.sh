#!/usr/bin/env bash
# Everything CI runs, in order, each stage timed:
#   deps, Release build with -Werror, all tests through ctest, an ASan+UBSan
#   build running the unit tests, a clang build of the fuzz targets with a
#   short run of each (fuzz/README.md), format check, Bazel build + unit tests
#   (scripts/bazel-ci.sh), and
#   the CMake/Bazel sync check.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
export CTEST_OUTPUT_ON_FAILURE=1

stage() { echo; echo "=== $1 ($(date -u +%H:%M:%S))"; }
start=$(date +%s)

stage "deps"
bash scripts/install-deps.sh

stage "format"
bash scripts/check-format.sh

stage "release build (-Werror)"
cmake -S . -B build-ci -G Ninja -DCMAKE_BUILD_TYPE=Release -DAPOGEE_WERROR=ON >/dev/null
ninja -C build-ci -j"$JOBS"

stage "asan+ubsan build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAPOGEE_SANITIZE=ON \
  -DAPOGEE_WERROR=ON -DCMAKE_CXX_FLAGS="-O1" >/dev/null
ninja -C build-asan -j"$JOBS" apogee_unit_tests  # only what `ctest -L unit` runs

stage "unit tests under asan+ubsan"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -L unit -j"$JOBS"

stage "fuzz targets: clang build + smoke runs (asan+ubsan)"
JOBS="$JOBS" bash scripts/fuzz-build.sh
ctest --test-dir build-fuzz -L fuzz -j"$JOBS"

stage "bazel build + test"
bash scripts/bazel-ci.sh

stage "build sync (cmake vs bazel)"
bash scripts/check-build-sync.sh build-ci

stage "all tests (release; $(( $(date +%s) - start ))s so far)"
ctest --test-dir build-ci -j"$JOBS"
