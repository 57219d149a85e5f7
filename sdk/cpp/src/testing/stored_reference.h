// For tests and the fuzzer: a stored pushed message read the slow, sure
// way (the generated parser, then FromV2), to hold FromPushed's own reader
// against, and the field where two received messages differ.
#pragma once

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "apogee/broker/v1/push.pb.h"
#include "apogee/message.h"
#include "sdk/cpp/src/convert.h"

namespace apogee::sdk::testing {

inline absl::StatusOr<ReceivedMessage> ParsedThenConverted(
    const ::apogee::broker::v1::PushedMessage& pushed, const std::string& broker,
    const std::string& endpoint) {
  v2::Message stored;
  if (!stored.ParseFromString(pushed.stored_message())) return absl::DataLossError("no parse");
  stored.mutable_topic()->set_name(pushed.topic());
  v2::SystemProperties* sp = stored.mutable_system_properties();
  sp->set_queue_id(pushed.queue_id());
  sp->set_queue_offset(pushed.queue_offset());
  *sp->mutable_store_timestamp() = pushed.store_time();
  sp->set_delivery_attempt(pushed.delivery_attempt());
  sp->set_receipt_handle(pushed.receipt_handle());
  return FromV2(std::move(stored), broker, endpoint);
}

// The name of the first field where `a` and `b` differ; empty when none does.
inline std::string Difference(const ReceivedMessage& a, const ReceivedMessage& b) {
  if (a.topic != b.topic) return "topic";
  if (a.message_id != b.message_id) return "message_id";
  if (a.tag != b.tag) return "tag";
  if (a.keys != b.keys) return "keys";
  if (a.properties != b.properties) return "properties";
  if (a.body != b.body) return "body";
  if (a.broker != b.broker) return "broker";
  if (a.queue_id != b.queue_id) return "queue_id";
  if (a.offset != b.offset) return "offset";
  if (a.born_time != b.born_time) return "born_time";
  if (a.store_time != b.store_time) return "store_time";
  if (a.delivery_attempt != b.delivery_attempt) return "delivery_attempt";
  if (a.delivery_time != b.delivery_time) return "delivery_time";
  if (a.message_group != b.message_group) return "message_group";
  if (a.receipt_handle != b.receipt_handle) return "receipt_handle";
  if (a.endpoint != b.endpoint) return "endpoint";
  return "";
}

}  // namespace apogee::sdk::testing
