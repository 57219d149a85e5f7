#include "services/store/service/appender.h"

#include <iterator>
#include <utility>

namespace apogee::store {

Appender::Appender(Store* store, Probe* probe, AppenderOptions options)
    : store_(store), probe_(probe), options_(options) {
  // Only sync replication needs a second thread: its answers wait for
  // followers while the next batches are written.
  if (options_.await_replicas) completer_ = std::thread([this] { Complete(); });
  thread_ = std::thread([this] { Loop(); });
}

Appender::~Appender() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  {
    absl::MutexLock lock(&done_mu_);
    done_stopping_ = true;
  }
  if (completer_.joinable()) completer_.join();
}

void Appender::Complete() {
  while (true) {
    Completion next;
    {
      absl::MutexLock lock(&done_mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(done_mu_) {
        return done_stopping_ || !completions_.empty();
      };
      done_mu_.Await(absl::Condition(&ready));
      if (completions_.empty()) return;  // stopping and drained
      next = std::move(completions_.front());
      completions_.pop_front();
    }
    // Deadlines grow in submission order, so waiting here one batch after
    // another adds no delay beyond the latest batch's own timeout.
    absl::Status replication;
    if (next.end > 0) replication = options_.await_replicas(next.end, next.stored_at);
    next.done(std::move(next.result), std::move(replication));
    absl::MutexLock lock(&done_mu_);
    --pending_completions_;
  }
}

void Appender::Submit(std::vector<RecordInput> batch, int64_t body_bytes, Done done) {
  Job job;
  for (const RecordInput& r : batch) job.bytes += static_cast<int64_t>(EncodedRecordSize(r));
  job.batch = std::move(batch);
  job.body_bytes = body_bytes;
  job.done = std::move(done);
  std::vector<Job> jobs;
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(job));
    // The appender thread's condition stays false while leading_ is set, so
    // leading here also spares its wake-up.
    if (!options_.lead_inline || leading_ || stopping_) return;
    leading_ = true;
    TakeGroup(jobs);
  }
  AppendJobs(jobs);
  absl::MutexLock lock(&mu_);
  leading_ = false;  // jobs queued meanwhile wake the appender thread
}

void Appender::TakeGroup(std::vector<Job>& jobs) {
  int64_t bytes = 0;
  while (!queue_.empty() &&
         (jobs.empty() || bytes + queue_.front().bytes <= options_.max_group_bytes)) {
    bytes += queue_.front().bytes;
    jobs.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

void Appender::Loop() {
  std::vector<Job> jobs;
  while (true) {
    jobs.clear();
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !leading_ && (stopping_ || !queue_.empty());
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping and drained
      leading_ = true;
      TakeGroup(jobs);
    }
    AppendJobs(jobs);
    absl::MutexLock lock(&mu_);
    leading_ = false;
  }
}

void Appender::AppendJobs(std::vector<Job>& jobs) {
  if (jobs.size() == 1) {
    AppendOne(jobs[0]);
    return;
  }
  // One engine call for all of them; the batches stay contiguous and in
  // order, so each client batch is still atomic.
  std::vector<RecordInput> merged;
  size_t total = 0;
  for (const Job& job : jobs) total += job.batch.size();
  merged.reserve(total);
  for (Job& job : jobs) {
    std::move(job.batch.begin(), job.batch.end(), std::back_inserter(merged));
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<AppendResult>> results = store_->Append(merged);
  probe_->OnEngineAppend(static_cast<int>(jobs.size()), absl::Now() - start);
  // Give every job its records back (needed on failure; cheap moves).
  size_t at = 0;
  for (Job& job : jobs) {
    for (RecordInput& r : job.batch) r = std::move(merged[at++]);
  }
  if (!results.ok()) {
    // Nothing was stored. The failure may belong to one batch (a bad record)
    // and its message names indexes in the merged batch: append one by one
    // so each client gets its own answer.
    for (Job& job : jobs) AppendOne(job);
    return;
  }
  at = 0;
  for (Job& job : jobs) {
    std::vector<AppendResult> mine(
        results->begin() + static_cast<ptrdiff_t>(at),
        results->begin() + static_cast<ptrdiff_t>(at + job.batch.size()));
    at += job.batch.size();
    Finish(job, std::move(mine));
  }
}

void Appender::AppendOne(Job& job) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<AppendResult>> results = store_->Append(job.batch);
  probe_->OnEngineAppend(1, absl::Now() - start);
  Finish(job, std::move(results));
}

void Appender::Finish(Job& job, absl::StatusOr<std::vector<AppendResult>> result) {
  int64_t end = 0;
  if (result.ok() && !result->empty()) end = result->back().commit_offset + result->back().size;
  if (result.ok()) {
    probe_->OnAppend(static_cast<int>(job.batch.size()), job.body_bytes);
  } else {
    probe_->OnAppendError(result.status().code());
  }
  bool direct = !options_.await_replicas;
  if (!direct && options_.awaits_replicas && !options_.awaits_replicas()) {
    absl::MutexLock lock(&done_mu_);
    direct = pending_completions_ == 0;
  }
  if (direct) {
    // The commit log holds the batch as the flush policy requires: answer
    // now, on this thread (in order), without waiting for the indexes.
    job.done(std::move(result), absl::OkStatus());
    return;
  }
  absl::MutexLock lock(&done_mu_);
  ++pending_completions_;
  completions_.push_back(Completion{std::move(job.done), std::move(result), end, absl::Now()});
}

}  // namespace apogee::store
