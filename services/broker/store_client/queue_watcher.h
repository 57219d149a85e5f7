// Follows the store's WatchQueues stream: the queues that advanced by
// records the broker did not append itself (delayed messages the store
// fired), so that long polls and push sessions on those topics wake at once
// instead of at their poll timeout (docs/design/message-types.md §2.1).
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/client_context.h"
#include "services/broker/store_client/store_client.h"

namespace apogee::broker {

// Thread-safe. One thread; reconnects 500 ms after the stream ends (10 s
// when the store does not serve WatchQueues).
class QueueWatcher {
 public:
  // `on_advance` runs on the watcher's thread; it must only hand work off.
  QueueWatcher(StoreClient* store,
               std::function<void(const std::string& topic, int32_t queue)> on_advance);
  ~QueueWatcher();  // Stop()
  QueueWatcher(const QueueWatcher&) = delete;
  QueueWatcher& operator=(const QueueWatcher&) = delete;

  void Start();
  void Stop();

 private:
  void Loop();
  bool StoppingLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; }

  StoreClient* const store_;
  const std::function<void(const std::string&, int32_t)> on_advance_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace apogee::broker
