#!/usr/bin/env bash
# Builds the Bazel mirror offline with Debian's bazel (every target), and runs
# its unit tests plus two integration tests that prove the runfiles wiring of
# apogee_test(integration_binaries) and apogee_cluster_test. The whole
# integration suite runs once, in the CMake build (scripts/test-all.sh), so CI
# does not pay for it twice; `bazel test //...` runs everything locally.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
bazel build --config=werror --jobs="$JOBS" //...
bazel test --config=werror --jobs="$JOBS" --test_output=errors \
  --test_tag_filters=unit,integration-smoke //...
