#include "services/store/dispatch/dispatcher.h"

#include <map>

#include "services/common/status/status_macros.h"

namespace apogee::store {

Dispatcher::Dispatcher(CommitLog* log, IndexStore* index, DispatcherOptions options)
    : log_(log), index_(index), options_(options), dispatched_(index->dispatched_offset()) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::SetListener(std::function<void(const std::vector<QueueAdvance>&)> listener) {
  listener_ = std::move(listener);
}

absl::StatusOr<bool> Dispatcher::DispatchOnce(int64_t limit) {
  const int64_t from = index_->dispatched_offset();
  APOGEE_ASSIGN_OR_RETURN(RecordChunk chunk,
                          log_->ReadChunk(from, options_.max_batch_bytes, limit));
  if (chunk.records.empty()) return false;
  APOGEE_RETURN_IF_ERROR(index_->ApplyDispatch(chunk.records, chunk.end));
  // The index already serves the batch; tell the listener before waking
  // WaitForDispatched callers so that they observe its effects.
  if (listener_) {
    std::map<TopicQueue, int64_t> advanced;
    for (const RecordView& r : chunk.records) {
      if (index_->IsDeleted(r.topic(), r.commit_offset())) continue;  // not indexed
      advanced[TopicQueue{std::string(r.topic()), r.queue_id()}] = r.queue_offset() + 1;
    }
    std::vector<QueueAdvance> advances;
    advances.reserve(advanced.size());
    for (auto& [tq, next] : advanced) advances.push_back({tq, next});
    listener_(advances);
  }
  absl::MutexLock lock(&mu_);
  dispatched_ = chunk.end;
  last_error_ = absl::OkStatus();
  return true;
}

absl::Status Dispatcher::CatchUp() {
  const int64_t limit = log_->committed_offset();
  while (true) {
    APOGEE_ASSIGN_OR_RETURN(const bool more, DispatchOnce(limit));
    if (!more) return absl::OkStatus();
  }
}

void Dispatcher::Start() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
    dispatched_ = index_->dispatched_offset();
    // Assigned, not maxed: after a truncation the old target is past the log.
    target_ = log_->committed_offset();
  }
  thread_ = std::thread([this] { Loop(); });
}

void Dispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Dispatcher::OnCommitted(int64_t end) {
  absl::MutexLock lock(&mu_);
  target_ = std::max(target_, end);
}

void Dispatcher::Loop() {
  while (true) {
    int64_t target = 0;
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || target_ > dispatched_;
      };
      mu_.Await(absl::Condition(&work));
      if (stopping_) return;
      target = target_;
    }
    absl::StatusOr<bool> more = DispatchOnce(target);
    if (!more.ok()) {
      absl::MutexLock lock(&mu_);
      last_error_ = more.status();
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.retry_backoff);
    } else if (!*more) {
      // Nothing below target: should not happen (committed offsets only
      // grow), but never spin on it; wait for the next commit.
      absl::MutexLock lock(&mu_);
      if (target_ == target) target_ = dispatched_;
    }
  }
}

int64_t Dispatcher::dispatched_offset() const {
  absl::MutexLock lock(&mu_);
  return dispatched_;
}

bool Dispatcher::WaitForDispatched(int64_t offset, absl::Duration timeout, bool until_error) const {
  absl::MutexLock lock(&mu_);
  auto done = [this, offset, until_error]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || dispatched_ >= offset || (until_error && !last_error_.ok());
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  return dispatched_ >= offset;
}

absl::Status Dispatcher::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

}  // namespace apogee::store
