#!/usr/bin/env bash
# Runs a Node interop script against the unmodified official RocketMQ 5 Node
# client. Usage: run.sh SCRIPT.js [args...]
# The package is installed once into a cache dir outside the repo (never copied
# into the tree) and shared by concurrent test runs under an flock.
set -euo pipefail

PKG_NAME=rocketmq-client-nodejs
PKG_VERSION=1.0.8

if [[ $# -lt 1 ]]; then
  echo "usage: $0 SCRIPT.js [args...]" >&2
  exit 2
fi
script=$1
shift

command -v node >/dev/null 2>&1 || { echo "run.sh: node not found in PATH" >&2; exit 127; }

CACHE_DIR=${APOGEE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-node}
MARKER="$CACHE_DIR/.installed-$PKG_NAME-$PKG_VERSION"
PKG_JSON="$CACHE_DIR/node_modules/$PKG_NAME/package.json"

installed() {
  [[ -f "$MARKER" && -f "$PKG_JSON" ]] &&
    [[ "$(node -p "require(process.argv[1]).version" "$PKG_JSON" 2>/dev/null)" == "$PKG_VERSION" ]]
}

install_pkg() {
  command -v npm >/dev/null 2>&1 || { echo "run.sh: npm not found in PATH" >&2; return 127; }
  rm -f "$MARKER"
  cat > "$CACHE_DIR/package.json" <<JSON
{
  "name": "apogee-node-interop-cache",
  "private": true,
  "description": "Cache of the official RocketMQ Node client for Apogee interop tests",
  "dependencies": { "$PKG_NAME": "$PKG_VERSION" }
}
JSON
  echo "run.sh: installing $PKG_NAME@$PKG_VERSION into $CACHE_DIR" >&2
  # Explicit checks: errexit is off inside a function called from `a || b`.
  (cd "$CACHE_DIR" && npm install --no-audit --no-fund --save-exact \
      "$PKG_NAME@$PKG_VERSION" >&2) || { echo "run.sh: npm install failed" >&2; return 1; }
  touch "$MARKER" || return 1
}

if ! installed; then
  mkdir -p "$CACHE_DIR"
  if command -v flock >/dev/null 2>&1; then
    # Re-check under the lock: another test may have installed it meanwhile.
    (
      flock -w 600 9 || { echo "run.sh: timed out waiting for $CACHE_DIR/.install.lock" >&2; exit 1; }
      installed || install_pkg
    ) 9>"$CACHE_DIR/.install.lock"
  else
    echo "run.sh: flock not found; installing without a lock" >&2
    install_pkg
  fi
  installed || { echo "run.sh: $PKG_NAME@$PKG_VERSION not installed in $CACHE_DIR" >&2; exit 1; }
fi

export NODE_PATH="$CACHE_DIR/node_modules${NODE_PATH:+:$NODE_PATH}"
exec node "$script" "$@"
