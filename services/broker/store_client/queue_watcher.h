// Follows the store's WatchQueues stream: the queues that advanced by
// records the broker did not append itself (delayed messages the store
// fired), so that long polls and push sessions on those topics wake at once
// instead of at their poll timeout (docs/design/message-types.md §2.1).
//
// The stream runs on the broker server's completion queue (attached like
// the store client's append stream): a thread blocked in a sync stream read
// would poll gRPC's shared epoll set beside the queue's poller, and every
// store answer would then wake both threads (docs/benchmarks.md).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/alarm.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/async_stream.h"
#include "services/broker/store_client/store_client.h"
#include "services/common/server/completion_queues.h"

namespace apogee::broker {

// Thread-safe. Reconnects 500 ms after the stream ends (10 s when the store
// does not serve WatchQueues). Give it to the GrpcServer's queue_users: it
// starts once attached and stops in Detach.
class QueueWatcher final : public CompletionQueueUser {
 public:
  // `on_advance` runs on the queue's poller; it must only hand work off.
  // `on_link` (may be null) hears the stream come up (true) and go down
  // (false): while it is down the store may have restarted.
  QueueWatcher(StoreClient* store,
               std::function<void(const std::string& topic, int32_t queue)> on_advance,
               std::function<void(bool up)> on_link = nullptr);
  QueueWatcher(const QueueWatcher&) = delete;
  QueueWatcher& operator=(const QueueWatcher&) = delete;

  void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) override;
  // Cancels the stream (or the wait to reconnect) and returns once nothing
  // of it is pending on the queue.
  void Detach() override;

 private:
  using Op = MemberTag<QueueWatcher>;
  void StartCallLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnStarted(bool ok);
  void OnRead(bool ok);
  void OnFinished(bool ok);
  void OnRetry(bool ok);

  StoreClient* const store_;
  const std::function<void(const std::string&, int32_t)> on_advance_;
  const std::function<void(bool)> on_link_;
  Op started_op_{this, &QueueWatcher::OnStarted};
  Op read_op_{this, &QueueWatcher::OnRead};
  Op finished_op_{this, &QueueWatcher::OnFinished};
  Op retry_op_{this, &QueueWatcher::OnRetry};
  sv1::QueueAdvances advances_;  // the read in flight (one at a time)

  absl::Mutex mu_;
  grpc::CompletionQueue* queue_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::unique_ptr<grpc::ClientContext> context_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::ClientAsyncReader<sv1::QueueAdvances>> reader_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  grpc::Alarm alarm_ ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // tags on the queue
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace apogee::broker
