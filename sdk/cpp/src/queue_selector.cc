#include "sdk/cpp/src/queue_selector.h"

#include "absl/strings/str_cat.h"

namespace apogee::sdk {

void FaultTracker::Record(const std::string& broker, absl::Duration latency, bool failed) {
  absl::Duration avoid = absl::ZeroDuration();
  if (failed) {
    avoid = policy_.failure_avoid;
  } else {
    for (const auto& [at_least, duration] : policy_.steps) {
      if (latency >= at_least) avoid = std::max(avoid, duration);
    }
  }
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (avoid == absl::ZeroDuration()) {
    avoid_until_.erase(broker);  // a quick answer clears the penalty
  } else {
    avoid_until_[broker] = now + avoid;
  }
}

absl::Time FaultTracker::AvailableAt(const std::string& broker) const {
  absl::MutexLock lock(&mu_);
  auto it = avoid_until_.find(broker);
  return it == avoid_until_.end() ? absl::InfinitePast() : it->second;
}

bool FaultTracker::Available(const std::string& broker) const {
  return AvailableAt(broker) <= clock_->Now();
}

absl::StatusOr<QueueRef> QueueSelector::Select(const std::vector<QueueRef>& queues,
                                               const std::set<std::string>& tried) {
  if (queues.empty()) return absl::InvalidArgumentError("no writable queue to select from");
  const uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
  const size_t n = queues.size();
  const QueueRef* soonest = nullptr;
  absl::Time soonest_at = absl::InfiniteFuture();
  for (size_t i = 0; i < n; ++i) {
    const QueueRef& q = queues[(start + i) % n];
    if (tried.count(q.broker) > 0) continue;
    if (faults_ == nullptr || faults_->Available(q.broker)) {
      next_.store(start + i + 1, std::memory_order_relaxed);
      return q;
    }
    const absl::Time at = faults_->AvailableAt(q.broker);
    if (soonest == nullptr || at < soonest_at) {
      soonest = &q;
      soonest_at = at;
    }
  }
  if (soonest != nullptr) return *soonest;
  return queues[start % n];
}

}  // namespace apogee::sdk
