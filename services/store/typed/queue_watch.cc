#include "services/store/typed/queue_watch.h"

#include <utility>

namespace apogee::store {

uint64_t QueueWatch::Subscribe(Listener listener) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void QueueWatch::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(id);
}

void QueueWatch::Publish(const std::vector<QueueAdvance>& advances) {
  if (advances.empty()) return;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, listener] : listeners_) listener(advances);
}

}  // namespace apogee::store
