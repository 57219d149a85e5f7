#!/usr/bin/env bash
# Every binary's --help lists its own flags, each with its help line and its
# default, and not those of the libraries it links (absl, gRPC).
#   help_test.sh NAMESERVER BROKER STORE BENCH ADMIN
set -uo pipefail
[ $# -eq 5 ] || { echo "usage: $0 NAMESERVER BROKER STORE BENCH ADMIN" >&2; exit 2; }
failures=0

# expect BINARY FLAG DEFAULT WORDS: `--FLAG (WORDS...); default: DEFAULT;`
expect() {
  local bin="$1" flag="$2" default="$3" words="$4" out
  out="$("$bin" --help 2>&1)"
  # One line: absl wraps long help texts.
  local flat segment
  flat="$(tr -s ' \n' ' ' <<<"$out")"
  # From "--FLAG (" to the next flag.
  segment="$(grep -oE -- "--$flag \(.*" <<<"$flat" | sed -E 's/ --[a-z_0-9]+ \(.*//')"
  if ! grep -qF -- "--$flag ($words" <<<"$segment"; then
    echo "FAIL: $(basename "$bin") --help does not describe --$flag (\"$words...\")"
    failures=$((failures + 1))
  elif ! grep -qF -- "; default: $default;" <<<"$segment"; then
    echo "FAIL: $(basename "$bin") --help does not give --$flag's default $default: $segment"
    failures=$((failures + 1))
  fi
  if grep -qE -- "--(flagfile|fromenv|tryfromenv|undefok) " <<<"$out"; then
    echo "FAIL: $(basename "$bin") --help lists absl's own flags (filter broken)"
    failures=$((failures + 1))
  fi
  if grep -q "No flags matched" <<<"$out"; then
    echo "FAIL: $(basename "$bin") --help says \"No flags matched\""
    failures=$((failures + 1))
  fi
}

expect "$1" broker_expiry 2m "Drop a broker not refreshed"
expect "$1" config '""' "Optional file of"
expect "$2" broker_id 0 "0 for the master"
expect "$2" auto_create_topic true "Create unknown topics"
expect "$2" admin_listen '""' "Separate address (host:port) for the admin API"
expect "$2" max_push_streams 10000 "Open push Consume streams"
expect "$1" max_streams_per_connection 1000 "Concurrent calls (HTTP/2 streams)"
expect "$3" flush '"async"' "sync: acknowledge appends"
expect "$3" ha_listen '"0.0.0.0:10912"' "Replication (HA) address"
expect "$4" endpoints '"127.0.0.1:9876"' "NameServer host:port list"

# apogee-admin has subcommands; its --help is its usage text.
admin_out="$("$5" --help 2>&1)"
for word in "--nameservers" "--json" "topic create"; do
  grep -qF -- "$word" <<<"$admin_out" ||
    { echo "FAIL: apogee-admin --help does not mention $word"; failures=$((failures + 1)); }
done

if [ "$failures" -ne 0 ]; then
  echo "$failures failures"
  exit 1
fi
echo "--help of 5 binaries: own flags with defaults and help lines"
