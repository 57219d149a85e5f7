#include "sdk/cpp/src/retry.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"

namespace apogee::sdk {

bool Retryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kCancelled:
      return false;
    default:
      return true;
  }
}

absl::StatusOr<std::vector<SendReceipt>> SendWithRetries(
    const std::string& topic, const std::vector<QueueRef>& queues, const RetryPolicy& policy,
    const Clock& clock, QueueSelector& selector, FaultTracker* faults, const SendAttempt& attempt) {
  const absl::Time start = clock.Now();
  const absl::Time deadline = start + policy.timeout;
  std::set<std::string> tried;
  absl::Status last;
  std::string last_where;
  int attempts = 0;
  while (attempts <= policy.max_retries) {
    if (attempts > 0 && clock.Now() >= deadline) {
      last = absl::DeadlineExceededError(
          absl::StrCat("timeout reached; last error: ", last.ToString()));
      break;
    }
    absl::StatusOr<QueueRef> queue = selector.Select(queues, tried);
    if (!queue.ok()) {
      return absl::UnavailableError(
          absl::StrCat("topic \"", topic, "\" has no writable queue: ", queue.status().message()));
    }
    tried.insert(queue->broker);
    ++attempts;
    const absl::Time begin = clock.Now();
    absl::StatusOr<std::vector<SendReceipt>> result = attempt(*queue, deadline);
    const bool broker_fault = !result.ok() && Retryable(result.status());
    if (faults != nullptr && (result.ok() || broker_fault)) {
      faults->Record(queue->broker, clock.Now() - begin, broker_fault);
    }
    if (result.ok()) return result;
    last = result.status();
    last_where = absl::StrCat(queue->broker, " (", queue->endpoint, ")");
    if (!Retryable(last)) break;
  }
  return absl::Status(
      last.code(),
      absl::StrCat("send to topic \"", topic, "\" failed after ", attempts, " attempt(s) in ",
                   absl::FormatDuration(clock.Now() - start), " (timeout ",
                   absl::FormatDuration(policy.timeout), ", max retries ", policy.max_retries,
                   "); last error from ", last_where, ": ", last.message()));
}

}  // namespace apogee::sdk
