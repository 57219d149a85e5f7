#!/usr/bin/env bash
# deploy/prometheus/apogee-rules.yaml: promtool check rules, then the unit
# tests in apogee-rules_test.yaml (each alert fires and stays quiet when it
# should). Skipped (exit 77) with the reason when promtool is missing; Debian's
# `prometheus` package has it (scripts/install-deps.sh installs it).
set -euo pipefail
dir="$(cd "$(dirname "$0")/../../deploy/prometheus" && pwd)"
if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIPPED: promtool is not installed (apt-get install prometheus)"
  exit 77
fi
cd "$dir"
promtool check rules apogee-rules.yaml
promtool test rules apogee-rules_test.yaml
