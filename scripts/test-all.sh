#!/usr/bin/env bash
# Everything CI runs, in order, each stage timed:
#   deps, format check, Release build with -Werror, one clang ASan+UBSan
#   build (scripts/fuzz-build.sh) running the unit tests and a short run of
#   each fuzz target (fuzz/README.md), Bazel build + unit tests
#   (scripts/bazel-ci.sh), the CMake/Bazel sync check, and all tests of the
#   Release build through ctest.
# One sanitizer build for both: a second one (gcc, for the unit tests alone)
# took 23 of CI's 52 minutes on two cores.
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

stage "asan+ubsan build (clang): unit tests and fuzz targets"
# apogee_unit_tests: only what `ctest -L unit` runs (no integration tests).
JOBS="$JOBS" bash scripts/fuzz-build.sh apogee_unit_tests

stage "unit tests under asan+ubsan"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-fuzz -L unit -j"$JOBS"

stage "fuzz targets: smoke runs"
ctest --test-dir build-fuzz -L fuzz -j"$JOBS"

stage "bazel build + test"
bash scripts/bazel-ci.sh

stage "build sync (cmake vs bazel)"
bash scripts/check-build-sync.sh build-ci

stage "all tests (release; $(( $(date +%s) - start ))s so far)"
ctest --test-dir build-ci -j"$JOBS"
