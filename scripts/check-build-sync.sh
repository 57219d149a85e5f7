#!/usr/bin/env bash
# Checks that CMake and the Bazel mirror build the same C++ sources: every .cc file
# under services/, tools/, sdk/ and tests/ that one build compiles, the other must
# compile too. Generated code (*.pb.cc) and files outside the repo are ignored.
# fuzz/ is outside DIRS_RE on purpose: the libFuzzer targets are CMake-only
# (-DAPOGEE_FUZZ=ON with clang; the Bazel mirror has only GCC), see
# fuzz/README.md. Regression tests for their findings live in the normal tree
# and are checked like any other source.
# Also checks that both builds have the same version (CMakeLists.txt's
# project(apogee VERSION ...) and bazel/version.bzl's APOGEE_VERSION).
#
# usage: scripts/check-build-sync.sh [CMAKE_BUILD_DIR]
#   CMAKE_BUILD_DIR: an existing build dir with compile_commands.json; by default
#   CMake is configured (not built) into a temporary directory.
# Exit status: 0 in sync, 1 out of sync (the differing files or versions are
# listed), 2 error.
set -euo pipefail

readonly DIRS_RE='^(services|tools|sdk|tests)/'

die() { echo "build-sync: $*" >&2; exit 2; }

build_dir=""
if [[ $# -ge 1 ]]; then  # relative to the caller's directory
  build_dir="$(cd "$1" 2>/dev/null && pwd -P)" || die "no build directory $1"
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$root"
command -v cmake >/dev/null || die "cmake not found"
command -v bazel >/dev/null || die "bazel not found"
command -v python3 >/dev/null || die "python3 not found"

# --- Version: one per build, they must agree -----------------------------------
cmake_version="$(sed -n 's/^project(apogee VERSION \([^ )]*\).*/\1/p' CMakeLists.txt)"
bazel_version="$(sed -n 's/^APOGEE_VERSION = "\([^"]*\)".*/\1/p' bazel/version.bzl)"
[[ -n "$cmake_version" ]] || die "no project(apogee VERSION ...) in CMakeLists.txt"
[[ -n "$bazel_version" ]] || die "no APOGEE_VERSION in bazel/version.bzl"
version_error=""
if [[ "$cmake_version" != "$bazel_version" ]]; then
  version_error="build-sync: CMakeLists.txt has version $cmake_version but bazel/version.bzl has $bazel_version"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- CMake: the files compile_commands.json compiles --------------------------
if [[ -z "$build_dir" ]]; then
  build_dir="$work/cmake"
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S "$root" -B "$build_dir" "${generator[@]}" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; die "cmake configure failed"; }
fi
[[ -f "$build_dir/compile_commands.json" ]] || die "no compile_commands.json in $build_dir"

python3 - "$build_dir/compile_commands.json" "$root" >"$work/cmake.txt" <<'PY'
import json, os, sys
db, root = sys.argv[1], sys.argv[2]
for entry in json.load(open(db)):
    path = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
    if path.startswith(root + os.sep):
        print(os.path.relpath(path, root))
PY

# --- Bazel: the source files of every target ----------------------------------
bazel query --noshow_progress 'kind("source file", deps(//...))' \
  >"$work/bazel.labels" 2>"$work/bazel.log" || { cat "$work/bazel.log" >&2; die "bazel query failed"; }
# //pkg:path/in/pkg.cc -> pkg/path/in/pkg.cc; external (@repo//...) labels are skipped.
sed -n -e 's|^//:||p' -e 's|^//\([^:]*\):|\1/|p' "$work/bazel.labels" >"$work/bazel.txt"

# --- Compare --------------------------------------------------------------------
select_sources() {  # our hand-written .cc files, sorted and unique
  grep -E "$DIRS_RE" "$1" | grep -E '\.cc$' | grep -vE '\.pb\.cc$' | LC_ALL=C sort -u || true
}
select_sources "$work/cmake.txt" >"$work/cmake.cc"
select_sources "$work/bazel.txt" >"$work/bazel.cc"

only_cmake="$(LC_ALL=C comm -23 "$work/cmake.cc" "$work/bazel.cc")"
only_bazel="$(LC_ALL=C comm -13 "$work/cmake.cc" "$work/bazel.cc")"
both="$(LC_ALL=C comm -12 "$work/cmake.cc" "$work/bazel.cc" | wc -l)"

if [[ -n "$only_cmake" || -n "$only_bazel" || -n "$version_error" ]]; then
  [[ -z "$version_error" ]] || echo "$version_error"
  if [[ -n "$only_cmake" ]]; then
    echo "build-sync: built by CMake but not by Bazel (add them to a BUILD file):"
    sed 's/^/  /' <<<"$only_cmake"
  fi
  if [[ -n "$only_bazel" ]]; then
    echo "build-sync: built by Bazel but not by CMake (add them to a CMakeLists.txt):"
    sed 's/^/  /' <<<"$only_bazel"
  fi
  echo "build-sync: FAILED; $both sources in both builds"
  exit 1
fi
echo "build-sync: $both sources in both builds, version $cmake_version"
