// The fast-fail send loop: one deadline for the whole send, bounded retries,
// each on a broker not tried yet, and fault bookkeeping per attempt. Kept
// apart from gRPC so that unit tests drive it with a fake attempt and a
// ManualClock.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
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

// One send across its attempts, as a state machine so that blocking sends
// (SendWithRetries) and callback-driven ones (Producer::SendAsync) share it:
// Next() picks the broker to try, Done() takes that attempt's outcome.
// Not thread-safe: one attempt at a time.
class SendRetry {
 public:
  SendRetry(std::string topic, std::vector<QueueRef> queues, const RetryPolicy& policy,
            const Clock& clock, QueueSelector& selector, FaultTracker* faults);

  // The queue to try next, or the send's final error (attempts or time used
  // up, no writable queue).
  absl::StatusOr<QueueRef> Next();
  // When the send must be over (for the attempt's own deadline).
  absl::Time deadline() const { return deadline_; }
  // The outcome of the attempt on the queue Next() returned: the send's
  // final result, or nullopt when Next() should pick another broker.
  std::optional<absl::StatusOr<std::vector<SendReceipt>>> Done(
      absl::StatusOr<std::vector<SendReceipt>> result);

 private:
  absl::Status Final() const;

  const std::string topic_;
  const std::vector<QueueRef> queues_;
  const RetryPolicy policy_;
  const Clock& clock_;
  QueueSelector& selector_;
  FaultTracker* const faults_;
  const absl::Time start_;
  const absl::Time deadline_;
  std::set<std::string> tried_;
  int attempts_ = 0;
  QueueRef current_;
  absl::Time current_begin_;
  absl::Status last_;
  std::string last_where_;
};

// Runs `attempt` until it succeeds, fails with a non-retryable error,
// max_retries + 1 attempts were made, or the timeout passed. The error names
// the topic, attempts, elapsed time, limits and the last broker's error.
// `faults` may be null. Thread-safe if `attempt` is.
absl::StatusOr<std::vector<SendReceipt>> SendWithRetries(
    const std::string& topic, const std::vector<QueueRef>& queues, const RetryPolicy& policy,
    const Clock& clock, QueueSelector& selector, FaultTracker* faults, const SendAttempt& attempt);

}  // namespace apogee::sdk
