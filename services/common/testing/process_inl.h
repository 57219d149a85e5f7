// Template definitions for process.h.
#pragma once

#include "absl/time/clock.h"

namespace apogee::testing {

template <typename Condition>
bool PollUntil(Condition condition, absl::Duration timeout, absl::Duration interval) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(interval);
  }
}

}  // namespace apogee::testing
