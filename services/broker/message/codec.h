// Messages between the v2 wire and the store. A stored record's body is the
// v2 `Message` itself (system properties filled in at send time), plus a few
// internal properties under keys clients may not use (retry bookkeeping).
// Validation follows the RocketMQ proxy's rules and v2 codes.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "apogee/admin/v1/admin.pb.h"
#include "apogee/nameserver/v1/nameserver.pb.h"
#include "apogee/store/v1/store.pb.h"

namespace apogee::broker {

namespace v2 = ::apache::rocketmq::v2;

struct MessageLimits {
  int64_t max_body_bytes = 4 * 1024 * 1024;
  int max_user_properties = 128;
  int64_t max_properties_bytes = 16 * 1024;
  int max_message_group_bytes = 64;
  // Horizon of delayed messages: delivery_timestamp at most now + this.
  absl::Duration max_delivery_delay = absl::Hours(24 * 30);
};

// Internal property keys (all in RocketMQ's reserved set, so no client can
// send them).
inline constexpr char kPropReconsumeTimes[] = "RECONSUME_TIME";
inline constexpr char kPropRetryTopic[] = "RETRY_TOPIC";
inline constexpr char kPropDlqOriginTopic[] = "DLQ_ORIGIN_TOPIC";
inline constexpr char kPropDlqOriginMessageId[] = "DLQ_ORIGIN_MESSAGE_ID";

// Checks one message of a SendMessage call; errors carry the precise v2 code
// and name the message by index.
absl::Status ValidateMessage(const v2::Message& message, int index, const MessageLimits& limits,
                             absl::Time now);

// The message's type: `message_type` when set, else derived (DELAY with a
// delivery_timestamp, FIFO with a message_group, else NORMAL; TRANSACTION is
// never derived).
v2::MessageType MessageTypeOf(const v2::SystemProperties& sp);

// The topic type a topic auto-created by a message of `type` gets.
::apogee::nameserver::v1::TopicMessageType TopicTypeFor(v2::MessageType type);

// Checks the message type against what the topic accepts.
absl::Status CheckMessageType(const v2::Message& message,
                              const ::apogee::nameserver::v1::TopicConfig& topic);

// Builds the store record for `message` (fills born host when blank, store
// host, type) to be appended to `topic`/`queue_id`. The body is the message
// serialised once, without a copy of it (FromStoreRecord reads it back):
// `encoded`, when given, is `message` as the client encoded it, taken as it
// is instead of encoded again.
store::v1::AppendRecord ToStoreRecord(const v2::Message& message, const std::string& topic,
                                      int32_t queue_id, const std::string& store_host,
                                      const std::string& peer_host, absl::string_view encoded = {});

// Parses a stored record back into the v2 message a consumer sees: original
// topic, store time, queue id/offset, delivery attempt, dead-letter origin;
// internal properties removed. No body digest: SetBodyDigest adds it where a
// v2 client gets the message (push and tools do not use it).
absl::StatusOr<v2::Message> FromStoreRecord(const store::v1::StoredRecord& record);

// A delivered or stored message as tools and push consumers see it: the
// fields of `message` (as FromStoreRecord made it) without the v2 wrapping.
admin::v1::MessageView ToMessageView(v2::Message message);

// How many times the record was delivered and failed before (0 for a fresh
// message).
int ReconsumeTimes(const v2::Message& stored_message);

// MD5 of `data` as 32 uppercase hex chars (the digest official clients check).
std::string Md5Hex(const std::string& data);

// The MD5 body digest official clients require on a delivered message
// (protocol-v2.md 7.3); ~2 µs per KiB, so only on the v2 delivery paths.
void SetBodyDigest(v2::Message* message);

}  // namespace apogee::broker
