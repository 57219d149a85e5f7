// One v2 PullMessage call: what the PullConsumer and a push consumer's
// lent queue (queue_loan.h) both send, and the broker's read suggestion.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "sdk/cpp/src/channels.h"

namespace apogee::sdk {

struct PullAnswer {
  std::vector<v2::Message> messages;
  // The broker's in-band status (OK, MESSAGE_NOT_FOUND, ILLEGAL_OFFSET...).
  absl::Status in_band;
  int64_t next_offset = -1;  // -1: not given
  // Route broker id the broker suggests reading this queue from next
  // (trailing metadata kReadFromBrokerIdKey); 0 is the group's writer.
  std::optional<int64_t> read_from;
};

// A transport failure is the returned status; the broker's answer (even an
// error) is a PullAnswer. `long_poll` is added to `request_timeout`.
absl::StatusOr<PullAnswer> PullOnce(Channels& channels, const std::string& endpoint,
                                    const v2::PullMessageRequest& request, absl::Duration long_poll,
                                    absl::Duration request_timeout);

}  // namespace apogee::sdk
