// Validation of the names and addresses that cross Apogee's APIs. Every error
// names the field, the offending value and the rule, e.g.
//   topic "a b" has invalid character ' ' at 1 (allowed: [%|a-zA-Z0-9_-], max 127)
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apogee {

inline constexpr int kMaxTopicNameLength = 127;
inline constexpr int kMaxGroupNameLength = 120;
inline constexpr int kMaxNodeNameLength = 127;

// Per-message limits the store enforces on every record; the broker checks
// them first so clients get the v2 code for the field, not the store's error.
inline constexpr int kMaxMessageIdLength = 128;
inline constexpr int kMaxMessageKeys = 32;
inline constexpr int kMaxMessageKeyLength = 255;
inline constexpr int kMaxMessageTagLength = 1024;

// Message size limits apply to the body (what clients are told, e.g. 4 MiB).
// A stored message also carries its properties, keys, topic and ids, so the
// store accepts records up to the body limit plus kRecordHeadroomBytes; the
// broker admits a message only when that rest is at most
// kMaxSendHeadroomBytes, keeping the difference for the properties it adds
// on retry and dead-lettering.
inline constexpr int64_t kRecordHeadroomBytes = 32 << 10;
inline constexpr int64_t kMaxSendHeadroomBytes = kRecordHeadroomBytes - (4 << 10);

// The store's system topic of pending delayed messages (RocketMQ's name):
// one queue, never configured, neither sent to nor read by clients
// (docs/design/message-types.md §1.1).
inline constexpr char kTimerTopic[] = "rmq_sys_wheel_timer";
// Transactions (§3), implicit one-queue topics like kTimerTopic: pending
// half messages; their rollbacks and checks; those discarded after the
// maximum number of checks (an operator reads them with apogee-admin).
inline constexpr char kTransHalfTopic[] = "RMQ_SYS_TRANS_HALF_TOPIC";
inline constexpr char kTransOpTopic[] = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
inline constexpr char kTransCheckMaxTopic[] = "TRANS_CHECK_MAX_TIME_TOPIC";
// The store's implicit system topics above (queue 0 only, no config).
inline bool IsImplicitTopic(absl::string_view topic) {
  return topic == kTimerTopic || topic == kTransHalfTopic || topic == kTransOpTopic ||
         topic == kTransCheckMaxTopic;
}

// RocketMQ's system topics (its TopicValidator): every name starting with
// "rmq_sys_" and a fixed set (TBW102, SCHEDULE_TOPIC_XXXX,
// RMQ_SYS_TRANS_HALF_TOPIC, ...). They belong to the store and the broker:
// clients neither send to nor read from them, admin tools read them.
bool IsSystemTopic(absl::string_view topic);

// A topic a client may name: ValidateTopicName, then PERMISSION_DENIED for a
// system topic, naming `field` and the topic.
absl::Status ValidateClientTopic(absl::string_view field, absl::string_view topic);

// RocketMQ's topic rule: [%|a-zA-Z0-9_-], 1..127 chars. `field` names the
// input in the error ("topic", "registration.topics[3].name").
absl::Status ValidateTopicName(absl::string_view field, absl::string_view name);

// Consumer group: same characters as topics, at most 120 chars.
absl::Status ValidateGroupName(absl::string_view field, absl::string_view name);

// Cluster and broker names: [a-zA-Z0-9_.-], 1..127 chars.
absl::Status ValidateNodeName(absl::string_view field, absl::string_view name);

// Message id (v2 `system_properties.message_id`, the store's id index key):
// visible ASCII [!-~], 1..128 chars. RocketMQ's proxy only asks for a
// non-blank id; its clients send 32-34 hex digits, so this stricter rule
// costs no real client and keeps control characters and blanks out of logs
// and indexes.
absl::Status ValidateMessageId(absl::string_view field, absl::string_view id);

// True for RocketMQ's system property keys (MessageConst.STRING_HASH_SET:
// "KEYS", "TAGS", "UNIQ_KEY", ...), which user properties may not use.
bool IsReservedPropertyKey(absl::string_view key);

// A parsed host:port. The host is an IPv4 literal or a DNS name.
struct HostPort {
  std::string host;
  int port = 0;
  bool host_is_ipv4 = false;
};

// Parses "host:port" where host is an IPv4 literal or a DNS name (RFC 1123
// labels) and port is 1..65535. `field` names the input in errors.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view field, absl::string_view endpoint);

}  // namespace apogee
