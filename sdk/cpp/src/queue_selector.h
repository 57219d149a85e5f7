// Which queue a send goes to: round-robin over the writable master queues,
// skipping brokers that were recently slow or failing (RocketMQ's
// latency-based fault tolerance) and brokers this send already tried.
#pragma once

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sdk/cpp/src/route.h"
#include "services/common/clock/clock.h"

namespace apogee::sdk {

struct FaultPolicy {
  // A call at least `latency` long avoids its broker for `avoid` (the
  // highest matching step wins). RocketMQ's defaults.
  std::vector<std::pair<absl::Duration, absl::Duration>> steps = {
      {absl::Milliseconds(550), absl::Seconds(30)},
      {absl::Seconds(1), absl::Seconds(60)},
      {absl::Seconds(2), absl::Seconds(120)},
      {absl::Seconds(3), absl::Seconds(180)},
      {absl::Seconds(15), absl::Seconds(600)}};
  // A failed call avoids its broker this long.
  absl::Duration failure_avoid = absl::Seconds(30);
};

// Per-broker "avoid until" times. Thread-safe.
class FaultTracker {
 public:
  FaultTracker(const Clock* clock, FaultPolicy policy = {})
      : clock_(clock), policy_(std::move(policy)) {}

  // Records a finished call to `broker` that took `latency`.
  void Record(const std::string& broker, absl::Duration latency, bool failed);
  bool Available(const std::string& broker) const;
  // When `broker` becomes available again (past times: it is).
  absl::Time AvailableAt(const std::string& broker) const;

 private:
  const Clock* const clock_;
  const FaultPolicy policy_;
  mutable absl::Mutex mu_;
  std::map<std::string, absl::Time> avoid_until_ ABSL_GUARDED_BY(mu_);
};

// Thread-safe (one atomic counter). `faults` may be null (no avoidance).
class QueueSelector {
 public:
  explicit QueueSelector(const FaultTracker* faults) : faults_(faults) {}

  // The next queue of `queues` in round-robin order whose broker is neither
  // in `tried` nor avoided. When every untried broker is avoided, the one
  // available soonest; when every broker was tried, the next queue.
  // INVALID_ARGUMENT when `queues` is empty.
  absl::StatusOr<QueueRef> Select(const std::vector<QueueRef>& queues,
                                  const std::set<std::string>& tried);

 private:
  const FaultTracker* const faults_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace apogee::sdk
