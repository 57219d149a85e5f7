#include "services/broker/store_client/queue_watcher.h"

#include <chrono>
#include <utility>

namespace apogee::broker {

QueueWatcher::QueueWatcher(StoreClient* store,
                           std::function<void(const std::string&, int32_t)> on_advance,
                           std::function<void(bool)> on_link)
    : store_(store), on_advance_(std::move(on_advance)), on_link_(std::move(on_link)) {}

void QueueWatcher::Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) {
  absl::MutexLock lock(&mu_);
  queue_ = queues.front();
  if (!stopping_) StartCallLocked();
}

void QueueWatcher::StartCallLocked() {
  context_ = std::make_unique<grpc::ClientContext>();
  reader_ = store_->PrepareWatchQueues(context_.get(), queue_);
  ++pending_;
  reader_->StartCall(&started_op_);
}

// Each reaction but the last issues the next operation: pending_ stays.
void QueueWatcher::OnStarted(bool ok) {
  if (ok && on_link_ != nullptr) on_link_(true);
  absl::MutexLock lock(&mu_);
  if (ok) {
    reader_->Read(&advances_, &read_op_);
  } else {
    reader_->Finish(&status_, &finished_op_);
  }
}

void QueueWatcher::OnRead(bool ok) {
  if (ok) {
    for (const sv1::QueueAdvance& a : advances_.queues()) on_advance_(a.topic(), a.queue_id());
  }
  absl::MutexLock lock(&mu_);
  if (ok) {
    reader_->Read(&advances_, &read_op_);  // a cancelled stream fails it
  } else {
    reader_->Finish(&status_, &finished_op_);
  }
}

void QueueWatcher::OnFinished(bool /*ok*/) {
  if (on_link_ != nullptr) on_link_(false);
  absl::MutexLock lock(&mu_);
  --pending_;
  reader_.reset();
  context_.reset();
  if (stopping_) return;
  const auto retry = status_.error_code() == grpc::StatusCode::UNIMPLEMENTED
                         ? std::chrono::seconds(10)
                         : std::chrono::milliseconds(500);
  ++pending_;
  alarm_.Set(queue_, std::chrono::system_clock::now() + retry, &retry_op_);
}

void QueueWatcher::OnRetry(bool ok) {
  absl::MutexLock lock(&mu_);
  --pending_;
  if (ok && !stopping_) StartCallLocked();
}

void QueueWatcher::Detach() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (context_ != nullptr) context_->TryCancel();
  if (pending_ > 0) alarm_.Cancel();  // a pending wait fires at once, not ok
  mu_.Await(absl::Condition(
      +[](int* pending) { return *pending == 0; }, &pending_));
}

}  // namespace apogee::broker
