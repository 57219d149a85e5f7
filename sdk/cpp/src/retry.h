// The fast-fail send loop: one deadline for the whole send, bounded retries,
// each on a broker not tried yet, and fault bookkeeping per attempt. Kept
// apart from gRPC so that unit tests drive it with a fake attempt and a
// ManualClock.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apogee/message.h"
#include "sdk/cpp/src/queue_selector.h"
#include "sdk/cpp/src/route.h"
#include "services/common/clock/clock.h"

namespace apogee::sdk {

struct RetryPolicy {
  absl::Duration timeout = absl::Seconds(3);
  int max_retries = 2;
};

// Whether another broker may succeed where this error happened: transport
// failures, timeouts, overload and server errors yes; bad input, missing
// features and auth no.
bool Retryable(const absl::Status& status);

// One try on `queue`; must give up by `deadline`.
using SendAttempt = std::function<absl::StatusOr<std::vector<SendReceipt>>(const QueueRef& queue,
                                                                           absl::Time deadline)>;

// Runs `attempt` until it succeeds, fails with a non-retryable error,
// max_retries + 1 attempts were made, or the timeout passed. The error names
// the topic, attempts, elapsed time, limits and the last broker's error.
// `faults` may be null. Thread-safe if `attempt` is.
absl::StatusOr<std::vector<SendReceipt>> SendWithRetries(
    const std::string& topic, const std::vector<QueueRef>& queues, const RetryPolicy& policy,
    const Clock& clock, QueueSelector& selector, FaultTracker* faults, const SendAttempt& attempt);

}  // namespace apogee::sdk
