#include "services/store/dispatch/dispatcher.h"

#include <algorithm>
#include <map>

#include "services/common/status/status_macros.h"

namespace apogee::store {

Dispatcher::Dispatcher(CommitLog* log, IndexStore* index, DispatcherOptions options)
    : log_(log), index_(index), options_(options), dispatched_(index->dispatched_offset()) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::SetListener(std::function<void(const std::vector<QueueAdvance>&)> listener) {
  listener_ = std::move(listener);
}

void Dispatcher::OnWritten(int64_t start, std::shared_ptr<const std::string> bytes) {
  absl::MutexLock lock(&held_mu_);
  // Written again from `start` (a failed sync rolled the tail back): what
  // was held from there on is stale.
  while (!held_.empty() && held_.back().end() > start) {
    held_bytes_ -= static_cast<int64_t>(held_.back().bytes->size());
    held_.pop_back();
  }
  if (held_bytes_ + static_cast<int64_t>(bytes->size()) > options_.max_held_bytes) return;
  held_bytes_ += static_cast<int64_t>(bytes->size());
  held_.push_back(Held{start, std::move(bytes)});
}

std::vector<RecordView> Dispatcher::HeldRecords(int64_t from, int64_t limit,
                                                std::shared_ptr<const std::string>* keep) {
  int64_t start = 0;
  {
    absl::MutexLock lock(&held_mu_);
    while (!held_.empty() && held_.front().end() <= from) {
      held_bytes_ -= static_cast<int64_t>(held_.front().bytes->size());
      held_.pop_front();
    }
    if (held_.empty() || held_.front().start > from) return {};
    start = held_.front().start;
    *keep = held_.front().bytes;
  }
  const absl::string_view bytes(**keep);
  const auto stop = static_cast<size_t>(std::min<int64_t>(limit - start, bytes.size()));
  std::vector<RecordView> records;
  size_t taken = 0;
  for (auto pos = static_cast<size_t>(from - start);
       pos < stop && (records.empty() || taken < options_.max_batch_bytes);) {
    // Parsed like a read from the file (a group that is not where the
    // checkpoint expects is never indexed; the file is read instead), but
    // without the CRC: the log encoded these very bytes a moment ago, and a
    // stale group would carry valid CRCs anyway.
    absl::StatusOr<RecordView> view = RecordView::ParseEncodedHere(
        bytes.substr(pos, stop - pos), start + static_cast<int64_t>(pos),
        log_->options().max_record_size);
    if (!view.ok()) break;
    records.push_back(*view);
    pos += view->length();
    taken += view->length();
  }
  return records;
}

absl::StatusOr<bool> Dispatcher::DispatchOnce(int64_t limit) {
  const int64_t from = index_->dispatched_offset();
  std::shared_ptr<const std::string> keep;
  RecordChunk chunk;
  chunk.records = HeldRecords(from, limit, &keep);
  if (!chunk.records.empty()) {
    chunk.start = from;
    chunk.end = chunk.records.back().end_offset();
    bytes_from_memory_.fetch_add(chunk.end - from, std::memory_order_relaxed);
  } else {
    APOGEE_ASSIGN_OR_RETURN(chunk, log_->ReadChunk(from, options_.max_batch_bytes, limit));
    if (chunk.records.empty()) return false;
    bytes_from_file_.fetch_add(chunk.end - from, std::memory_order_relaxed);
  }
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
    // After a truncation what was held may lie past the log's end.
    absl::MutexLock lock(&held_mu_);
    held_.clear();
    held_bytes_ = 0;
  }
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

int64_t Dispatcher::bytes_from_memory() const {
  return bytes_from_memory_.load(std::memory_order_relaxed);
}

int64_t Dispatcher::bytes_from_file() const {
  return bytes_from_file_.load(std::memory_order_relaxed);
}

absl::Status Dispatcher::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

}  // namespace apogee::store
