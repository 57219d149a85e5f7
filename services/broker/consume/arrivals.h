// Long polling: a parked ReceiveMessage/PullMessage waits here until a
// message arrives on one of its topics or its poll time ends, whichever is
// first. Exactly one wake-up per watch. Push sessions listen instead: a
// listener hears every arrival on its topics, with the queue it landed on,
// so a session reads only the queues that changed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace apogee::broker {

// Thread-safe. Callbacks run outside the lock, on the thread that calls
// Notify or ExpireDue: they must only hand work off (e.g. to an Executor).
class Arrivals {
 public:
  // Notify's queue when the arrival's queue is not known (or several).
  static constexpr int32_t kAnyQueue = -1;
  using Listener = std::function<void(const std::string& topic, int32_t queue)>;

  // `wake(true)` on arrival, `wake(false)` once `deadline` passed.
  uint64_t Watch(const std::vector<std::string>& topics, absl::Time deadline,
                 std::function<void(bool arrived)> wake);
  // Drops a watch that has not fired; returns whether it was still parked.
  bool Unwatch(uint64_t id);
  // `listener` hears every later Notify on `topics` until Unlisten.
  uint64_t Listen(const std::vector<std::string>& topics, Listener listener);
  // No later Notify calls the listener (one already running may still).
  void Unlisten(uint64_t id);
  // A message was stored on `topic`, on `queue` (kAnyQueue: unknown).
  void Notify(const std::string& topic, int32_t queue = kAnyQueue);
  // Fires the watches whose deadline is at or before `now`.
  void ExpireDue(absl::Time now);
  // Parked watches (a metric, and a bound on parked polls).
  size_t Parked() const;

 private:
  struct Watcher {
    std::vector<std::string> topics;
    absl::Time deadline;
    std::function<void(bool)> wake;
  };
  void Remove(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Listeners by topic; shared so Notify can call them outside mu_.
  std::multimap<std::string, std::pair<uint64_t, std::shared_ptr<Listener>>> listeners_
      ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Watcher> watchers_ ABSL_GUARDED_BY(mu_);
  std::multimap<std::string, uint64_t> by_topic_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::broker
