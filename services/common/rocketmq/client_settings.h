// The server half of the v2 Telemetry settings handshake: given the Settings
// a client sent, the Settings to send back. Official clients depend on
// several reply fields (protocol-v2.md 6.3): the Node producer crashes
// without an exponential backoff policy, a zero max_body_size fails every
// send, and a push consumer without receive_batch_size never consumes.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/definition.pb.h"

namespace apogee::rocketmq {

namespace v2 = ::apache::rocketmq::v2;

struct SettingsPolicy {
  int32_t max_body_bytes = 4 * 1024 * 1024;
  bool validate_message_type = true;
  // Producer retry policy (the proxy's defaults).
  int32_t producer_max_attempts = 3;
  absl::Duration producer_backoff_initial = absl::Milliseconds(10);
  absl::Duration producer_backoff_max = absl::Seconds(1);
  // Consumer deliveries before a message goes to the DLQ (16 retries + 1).
  int32_t consumer_max_attempts = 17;
  absl::Duration consumer_backoff_initial = absl::Seconds(1);
  absl::Duration consumer_backoff_max = absl::Hours(2);
  float backoff_multiplier = 2.0f;
  int32_t receive_batch_size = 32;
  absl::Duration long_polling_timeout = absl::Seconds(20);
};

// Echoes `client` with the server-owned fields filled in. `group_fifo` says
// whether the consumer group consumes in order. Fails with
// UNRECOGNIZED_CLIENT_TYPE when the client type is missing or unknown, or
// when the pub_sub case does not fit the client type.
absl::StatusOr<v2::Settings> ReplySettings(const v2::Settings& client, const SettingsPolicy& policy,
                                           bool group_fifo);

}  // namespace apogee::rocketmq
