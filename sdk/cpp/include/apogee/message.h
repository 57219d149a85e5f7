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
  // Delayed delivery (a DELAY message): not delivered before `delivery_time`;
  // or, instead, RocketMQ's delay level 1..18 (1s 5s 10s 30s 1m 2m 3m 4m 5m
  // 6m 7m 8m 9m 10m 20m 30m 1h 2h after the send). Unset: InfinitePast / 0.
  absl::Time delivery_time = absl::InfinitePast();
  int delay_level = 0;
  // A FIFO message (for a FIFO topic): a message group always goes to one
  // broker, which keeps it on one queue, and a FIFO consumer group gets it
  // in send order. Send it with Send or SendBatch (one group per batch);
  // SendAsync refuses it. Not together with a delay.
  std::string message_group;
};

// RocketMQ's delay levels: kDelayLevels[level - 1] for level 1..18.
inline constexpr int kMaxDelayLevel = 18;
absl::Duration DelayLevelDuration(int level);  // level must be 1..18

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
  int32_t delivery_attempt = 1;                     // 1 on first delivery
  absl::Time delivery_time = absl::InfinitePast();  // a DELAY message's; else unset
  std::string message_group;                        // a FIFO message's; else empty
  std::string receipt_handle;
  std::string endpoint;
};

}  // namespace apogee
