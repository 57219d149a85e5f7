// Runs a function every `interval` on a thread of its own until stopped.
// Used for expiry scans and heartbeats, where a late run is harmless but a
// missed stop would hang shutdown.
#pragma once

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace apogee {

// Thread-safe. Stop() (also run by the destructor) waits for a run in
// progress to finish and returns without waiting for the interval.
class PeriodicTask {
 public:
  PeriodicTask(absl::Duration interval, std::function<void()> fn);
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  void Stop();

 private:
  void Loop();

  const absl::Duration interval_;
  const std::function<void()> fn_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace apogee
