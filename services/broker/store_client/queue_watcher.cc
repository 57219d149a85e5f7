#include "services/broker/store_client/queue_watcher.h"

#include <memory>
#include <utility>

#include "absl/time/time.h"

namespace apogee::broker {

QueueWatcher::QueueWatcher(StoreClient* store,
                           std::function<void(const std::string&, int32_t)> on_advance)
    : store_(store), on_advance_(std::move(on_advance)) {}

QueueWatcher::~QueueWatcher() { Stop(); }

void QueueWatcher::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void QueueWatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void QueueWatcher::Loop() {
  for (;;) {
    auto context = std::make_unique<grpc::ClientContext>();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      context_ = context.get();
    }
    const absl::Status ended =
        store_->WatchQueues(context.get(), [this](const sv1::QueueAdvances& advances) {
          for (const sv1::QueueAdvance& a : advances.queues()) on_advance_(a.topic(), a.queue_id());
        });
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
    const absl::Duration retry = ended.code() == absl::StatusCode::kUnimplemented
                                     ? absl::Seconds(10)
                                     : absl::Milliseconds(500);
    mu_.AwaitWithTimeout(absl::Condition(this, &QueueWatcher::StoppingLocked), retry);
    if (stopping_) return;
  }
}

}  // namespace apogee::broker
