// Capped exponential backoff for the SDK's retry loops (route refresh,
// receive and pull loops, push reconnects), so that a NameServer or broker
// that is down is retried at a falling rate instead of in a tight loop.
#pragma once

#include <algorithm>

#include "absl/time/time.h"

namespace apogee::sdk {

// The first failure waits `initial`, each further one twice the last, never
// more than `max`; a success starts over. Not thread-safe.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max)
      : initial_(initial), max_(std::max(initial, max)), next_(initial) {}

  // Records a failure; returns how long to wait before the next try.
  absl::Duration Failure() {
    const absl::Duration wait = next_;
    next_ = std::min(next_ * 2, max_);
    ++failures_;
    return wait;
  }
  void Success() {
    next_ = initial_;
    failures_ = 0;
  }
  // Consecutive failures since the last success.
  int failures() const { return failures_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  absl::Duration next_;
  int failures_ = 0;
};

}  // namespace apogee::sdk
