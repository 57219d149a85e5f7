#!/usr/bin/env bash
# Builds and tests the Bazel mirror offline with Debian's bazel.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
bazel build --config=werror --jobs="$JOBS" //...
bazel test --config=werror --jobs="$JOBS" --test_output=errors //...
