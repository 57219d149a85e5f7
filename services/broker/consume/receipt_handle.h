// Receipt handles: opaque to clients, they name the stored message (topic as
// stored, queue, offset) and the delivery (a per-delivery id), so a stale
// handle — already acked, redelivered, or replaced by
// ChangeInvisibleDuration — is rejected.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace apogee::broker {

struct ReceiptHandle {
  std::string topic;  // the topic the message is stored in (%RETRY%... for retries)
  int32_t queue_id = 0;
  int64_t offset = 0;
  uint64_t delivery_id = 0;

  std::string Encode() const;
  // INVALID_RECEIPT_HANDLE (v2 code) naming the handle when malformed.
  static absl::StatusOr<ReceiptHandle> Decode(const std::string& text);
};

}  // namespace apogee::broker
