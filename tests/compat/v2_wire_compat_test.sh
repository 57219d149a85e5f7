#!/usr/bin/env bash
# Checks that our apache.rocketmq.v2 protos are wire-compatible with the ones
# bundled in the official Node client (rocketmq-client-nodejs@1.0.8), then
# checks that the comparator really catches breakage (mutation self-check).
#
# usage: v2_wire_compat_test.sh PROTOCOMPAT_BINARY REPO_PROTOS_DIR
# Needs: protoc on PATH (or $PROTOC), npm with access to the npm registry.
# The reference protos are fetched at test time and never stored in the repo.
set -euo pipefail

readonly REFERENCE_PACKAGE="rocketmq-client-nodejs@1.0.8"
readonly PROTO_PACKAGE="apache.rocketmq.v2"
# The files we mirror. The Node bundle also ships admin.proto (service Admin),
# which no client calls and Apogee does not implement.
readonly PROTO_FILES=(apache/rocketmq/v2/definition.proto apache/rocketmq/v2/service.proto)

fail() { echo "FAIL: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || { echo "usage: $0 PROTOCOMPAT_BINARY REPO_PROTOS_DIR" >&2; exit 2; }
protocompat="$1"
our_protos="$2"
protoc="${PROTOC:-protoc}"
[[ -x "$protocompat" ]] || fail "protocompat binary not executable: $protocompat"
for f in "${PROTO_FILES[@]}"; do
  [[ -f "$our_protos/$f" ]] || fail "missing $our_protos/$f"
done
command -v "$protoc" >/dev/null || fail "protoc not found (set \$PROTOC)"
command -v npm >/dev/null || fail "npm not found"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- Fetch the reference protos -------------------------------------------
# npm pack downloads only the package tarball (no dependencies, no scripts).
echo "fetching $REFERENCE_PACKAGE from the npm registry"
(cd "$work" && npm pack --silent "$REFERENCE_PACKAGE" >npm-pack.log 2>&1) ||
  { cat "$work/npm-pack.log" >&2; fail "npm pack $REFERENCE_PACKAGE failed"; }
tarball="$(ls "$work"/rocketmq-client-nodejs-*.tgz 2>/dev/null | head -n1)"
[[ -n "$tarball" ]] || fail "npm pack produced no tarball"
mkdir "$work/pkg"
tar -xzf "$tarball" -C "$work/pkg"

# Locate the include root: the directory that holds apache/rocketmq/v2/.
service_proto="$(find "$work/pkg" -path '*/apache/rocketmq/v2/service.proto' | head -n1)"
[[ -n "$service_proto" ]] || fail "no apache/rocketmq/v2/service.proto in $REFERENCE_PACKAGE"
their_protos="${service_proto%/apache/rocketmq/v2/service.proto}"
echo "reference protos: $(cd "$their_protos" && ls apache/rocketmq/v2/*.proto | tr '\n' ' ')"

# --- Build descriptor sets and compare --------------------------------------
describe() {  # describe INCLUDE_DIR OUTPUT
  "$protoc" -I"$1" --include_imports --descriptor_set_out="$2" "${PROTO_FILES[@]}" ||
    fail "protoc could not compile the protos in $1"
}
describe "$their_protos" "$work/theirs.pb"
describe "$our_protos" "$work/ours.pb"

compare() {  # compare CANDIDATE_PB; prints the report, returns protocompat's status
  "$protocompat" --reference="$work/theirs.pb" --candidate="$1" --package="$PROTO_PACKAGE"
}

echo "== ours vs $REFERENCE_PACKAGE"
status=0
compare "$work/ours.pb" || status=$?
[[ $status -eq 0 ]] || fail "our protos differ from $REFERENCE_PACKAGE (protocompat exit $status)"

# --- Mutation self-check ----------------------------------------------------
# Each case breaks a copy of our protos in one way; protocompat must exit 1
# and name the broken element, or the comparison above proves nothing.
mutant_count=0
check_mutant() {  # check_mutant FILE SED_EXPR EXPECTED_REPORT_TEXT
  local file="$1" expr="$2" expected="$3"
  mutant_count=$((mutant_count + 1))
  local dir="$work/mutant$mutant_count"
  mkdir -p "$dir"
  cp -r "$our_protos/apache" "$dir/"
  sed -i -e "$expr" "$dir/$file"
  cmp -s "$our_protos/$file" "$dir/$file" && fail "mutation '$expr' did not change $file"
  describe "$dir" "$dir/mutant.pb"
  local report rc=0
  report="$(compare "$dir/mutant.pb")" || rc=$?
  [[ $rc -eq 1 ]] || { echo "$report"; fail "mutation '$expr': protocompat exit $rc, want 1"; }
  grep -qF "$expected" <<<"$report" ||
    { echo "$report"; fail "mutation '$expr': report does not mention '$expected'"; }
  echo "mutant $mutant_count ($file: $expr) rejected as expected"
}

echo "== mutation self-check"
check_mutant apache/rocketmq/v2/service.proto \
  's/int32 max_delivery_attempts = 6;/int32 max_delivery_attempts = 8;/' \
  "ForwardMessageToDeadLetterQueueRequest.max_delivery_attempts: number"
check_mutant apache/rocketmq/v2/service.proto \
  's/returns (stream ReceiveMessageResponse)/returns (ReceiveMessageResponse)/' \
  "MessagingService.ReceiveMessage: server_streaming"
check_mutant apache/rocketmq/v2/service.proto \
  's/optional string attempt_id = 8;/string attempt_id = 8;/' \
  "ReceiveMessageRequest.attempt_id: proto3_optional"
check_mutant apache/rocketmq/v2/definition.proto \
  's/MESSAGE_BODY_EMPTY = 41302;/MESSAGE_BODY_EMPTY = 41303;/' \
  "Code.MESSAGE_BODY_EMPTY: number"

echo "PASS: $PROTO_PACKAGE protos are wire-compatible with $REFERENCE_PACKAGE;" \
  "$mutant_count mutants rejected"
