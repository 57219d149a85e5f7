// Maps absl::Status to the RocketMQ v2 in-band `Status` (code + message).
// Domain code that knows the precise v2 code (TOPIC_NOT_FOUND rather than
// NOT_FOUND) tags the status with WithV2Code; everything else is mapped from
// the canonical code.
#pragma once

#include "absl/status/status.h"
#include "apache/rocketmq/v2/definition.pb.h"

namespace apogee {

// Returns `status` carrying `code` as its v2 code. OK stays OK.
absl::Status WithV2Code(absl::Status status, apache::rocketmq::v2::Code code);

// The v2 code for `status`: the tagged code if any, else one derived from
// the canonical code. OK maps to Code::OK.
apache::rocketmq::v2::Code ToV2Code(const absl::Status& status);

// Fills a v2 Status message; OK gets the message "OK" like the proxy.
void ToV2Status(const absl::Status& status, apache::rocketmq::v2::Status* out);

// The inverse, for clients: an in-band v2 status as absl::Status, with the
// canonical code of its HTTP-like class (40402 TOPIC_NOT_FOUND -> kNotFound)
// and the precise v2 code kept (ToV2Code gives it back). The message is
// prefixed with the v2 code name.
absl::Status FromV2Status(const apache::rocketmq::v2::Status& status);

}  // namespace apogee
