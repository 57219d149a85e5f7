// Between the SDK's public types and the wire's messages (apache.rocketmq.v2,
// apogee.broker.v1), and the checks a message passes before anything is sent.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "apogee/broker/v1/push.pb.h"
#include "apogee/filter_expression.h"
#include "apogee/message.h"
#include "grpcpp/support/slice.h"

namespace apogee::sdk {

namespace v2 = ::apache::rocketmq::v2;

// The broker's default limits (services/broker/message MessageLimits).
inline constexpr size_t kMaxBodyBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxUserProperties = 128;
inline constexpr size_t kMaxPropertiesBytes = 16 * 1024;  // tag + keys + properties

// Checks what the broker would reject, naming the input and the limit:
// topic name, empty or too large body, tag, keys, reserved property keys,
// too many or too large properties.
// `where` prefixes errors ("message", "messages[3]").
absl::Status ValidateMessage(const Message& message, const std::string& where);

// A new unique message id (32 hex chars, RocketMQ's width).
std::string NewMessageId();

// `message` with its id and born time as it goes on the wire: one entry of
// v2::SendMessageRequest.messages (field 1's tag and length, then the
// v2::Message), written straight from `message`. A request is its entries
// one after another (StartSend in producer.cc), so a send builds, copies
// and frees no v2::Message: that was a fifth of the producer's CPU at
// window 1000 (docs/benchmarks.md, "Push frames, send requests and stored
// messages in wire format").
grpc::Slice EncodeSendEntry(const Message& message, const std::string& message_id, absl::Time born);
ReceivedMessage FromV2(v2::Message message, const std::string& broker, const std::string& endpoint);
// A message of an apogee.broker.v1 push frame or batched receive, in either
// form (PushedMessage.message or .stored_message); DATA_LOSS when a stored
// message does not parse.
absl::StatusOr<ReceivedMessage> FromPushed(const ::apogee::broker::v1::PushedMessage& pushed,
                                           const std::string& broker, const std::string& endpoint);

// A tag ("TagA||TagB", "*"; empty is "*") or SQL filter as its v2 form.
v2::FilterExpression ToV2Filter(const FilterExpression& filter);

}  // namespace apogee::sdk
