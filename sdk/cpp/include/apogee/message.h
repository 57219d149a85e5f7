// Messages as the application sees them: what a producer sends, what the
// broker acknowledged, and what a consumer receives.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace apogee {

// A message to send. `topic` and a non-empty `body` (at most 4 MiB) are
// required; `tag` (no '|'), `keys` (for lookups) and user `properties` are
// optional. Property keys RocketMQ reserves ("KEYS", "TAGS", "UNIQ_KEY", ...)
// are rejected before anything is sent.
struct Message {
  std::string topic;
  std::string body;
  std::string tag;
  std::vector<std::string> keys;
  std::map<std::string, std::string> properties;
};

// The broker's acknowledgement of one stored message.
struct SendReceipt {
  std::string message_id;
  std::string broker;  // broker name
  int64_t offset = 0;  // queue offset the broker assigned
};

// A consumed message. `receipt_handle` and `endpoint` identify the delivery
// for Ack/ChangeInvisibleDuration (SimpleConsumer); treat them as opaque.
struct ReceivedMessage {
  std::string topic;
  std::string message_id;
  std::string tag;
  std::vector<std::string> keys;
  std::map<std::string, std::string> properties;
  std::string body;
  std::string broker;
  int32_t queue_id = 0;
  int64_t offset = 0;
  absl::Time born_time;
  absl::Time store_time;
  int32_t delivery_attempt = 1;  // 1 on first delivery
  std::string receipt_handle;
  std::string endpoint;
};

}  // namespace apogee
