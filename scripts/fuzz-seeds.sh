#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/ from real messages
# (fuzz/make_seeds.cc). Run after a protocol or format change; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FUZZ_BUILD_DIR:-build-fuzz}
bash scripts/fuzz-build.sh make_seeds >/dev/null
"$dir/fuzz/make_seeds" fuzz/corpus
echo "fuzz-seeds: $(find fuzz/corpus -type f | wc -l) seeds in fuzz/corpus"
