#!/bin/sh
echo "bazel coverage is not available in the offline Bazel mirror; use the CMake build" >&2
exit 1
