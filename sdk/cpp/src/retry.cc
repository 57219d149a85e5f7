#include "sdk/cpp/src/retry.h"

#include <set>
#include <string>
#include <utility>

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

SendRetry::SendRetry(std::string topic, std::vector<QueueRef> queues, const RetryPolicy& policy,
                     const Clock& clock, QueueSelector& selector, FaultTracker* faults)
    : topic_(std::move(topic)),
      queues_(std::move(queues)),
      policy_(policy),
      clock_(clock),
      selector_(selector),
      faults_(faults),
      start_(clock.Now()),
      deadline_(start_ + policy.timeout) {}

absl::StatusOr<QueueRef> SendRetry::Next() {
  if (attempts_ > policy_.max_retries) return Final();
  if (attempts_ > 0 && clock_.Now() >= deadline_) {
    last_ = absl::DeadlineExceededError(
        absl::StrCat("timeout reached; last error: ", last_.ToString()));
    return Final();
  }
  absl::StatusOr<QueueRef> queue = selector_.Select(queues_, tried_);
  if (!queue.ok()) {
    return absl::UnavailableError(
        absl::StrCat("topic \"", topic_, "\" has no writable queue: ", queue.status().message()));
  }
  tried_.insert(queue->broker);
  ++attempts_;
  current_ = *queue;
  current_begin_ = clock_.Now();
  return queue;
}

std::optional<absl::StatusOr<std::vector<SendReceipt>>> SendRetry::Done(
    absl::StatusOr<std::vector<SendReceipt>> result) {
  const bool broker_fault = !result.ok() && Retryable(result.status());
  if (faults_ != nullptr && (result.ok() || broker_fault)) {
    faults_->Record(current_.broker, clock_.Now() - current_begin_, broker_fault);
  }
  if (result.ok()) return result;
  last_ = result.status();
  last_where_ = absl::StrCat(current_.broker, " (", current_.endpoint, ")");
  if (!Retryable(last_)) return Final();
  return std::nullopt;
}

absl::Status SendRetry::Final() const {
  return absl::Status(
      last_.code(),
      absl::StrCat("send to topic \"", topic_, "\" failed after ", attempts_, " attempt(s) in ",
                   absl::FormatDuration(clock_.Now() - start_), " (timeout ",
                   absl::FormatDuration(policy_.timeout), ", max retries ", policy_.max_retries,
                   "); last error from ", last_where_, ": ", last_.message()));
}

absl::StatusOr<std::vector<SendReceipt>> SendWithRetries(
    const std::string& topic, const std::vector<QueueRef>& queues, const RetryPolicy& policy,
    const Clock& clock, QueueSelector& selector, FaultTracker* faults, const SendAttempt& attempt) {
  SendRetry retry(topic, queues, policy, clock, selector, faults);
  while (true) {
    absl::StatusOr<QueueRef> queue = retry.Next();
    if (!queue.ok()) return queue.status();
    auto done = retry.Done(attempt(*queue, retry.deadline()));
    if (done.has_value()) return *std::move(done);
  }
}

}  // namespace apogee::sdk
