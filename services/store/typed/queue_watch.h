// Fan-out of "this queue's readable end moved" for records the broker did
// not append itself (fired timers, committed transactional messages), to
// the store's WatchQueues streams
// (docs/design/message-types.md §6). In memory only: a broker that was not
// watching sees the records at its next read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/store/dispatch/dispatcher.h"

namespace apogee::store {

// Thread-safe. Listeners run on the publishing thread with the watch's
// lock held: they must only hand the advances off. Once Unsubscribe
// returns, the listener is never called again.
class QueueWatch {
 public:
  using Listener = std::function<void(const std::vector<QueueAdvance>&)>;
  uint64_t Subscribe(Listener listener);
  void Unsubscribe(uint64_t id);
  void Publish(const std::vector<QueueAdvance>& advances);

 private:
  absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Listener> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::store
