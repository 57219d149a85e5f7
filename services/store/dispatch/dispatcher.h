// Follows the commit log and writes its records into the indexes, one
// RocksDB batch per chunk together with the "dispatched up to" checkpoint,
// so the indexes always describe an exact prefix of the log.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/store/commitlog/commit_log.h"
#include "services/store/index/index_store.h"

namespace apogee::store {

struct DispatcherOptions {
  size_t max_batch_bytes = 1 << 20;                 // of commit log per index batch
  absl::Duration retry_backoff = absl::Seconds(1);  // after a failed batch
  // Written groups held in memory for indexing (OnWritten); beyond it
  // (indexing lags far behind) new groups are read back from the file.
  int64_t max_held_bytes = 32 << 20;
};

// A queue whose readable end moved, reported after each batch.
struct QueueAdvance {
  TopicQueue queue;
  int64_t next_offset = 0;
};

// Thread-safety: thread-safe. One background thread (Start/Stop) does the
// work; CatchUp runs it on the caller's thread and must not overlap the
// background thread. The listener runs on the dispatching thread after each
// batch and must not block (it is where long polls get woken).
class Dispatcher {
 public:
  Dispatcher(CommitLog* log, IndexStore* index, DispatcherOptions options = {});
  ~Dispatcher();  // Stop()
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void SetListener(std::function<void(const std::vector<QueueAdvance>&)> listener);

  // Dispatches everything committed so far, on this thread (recovery).
  absl::Status CatchUp();

  // Starts the background thread, which wakes on OnCommitted.
  void Start();
  // Stops and joins the thread; dispatches nothing more.
  void Stop();

  // The commit log's commit listener: more records are committed up to `end`.
  void OnCommitted(int64_t end);
  // The commit log's write listener: `bytes`, written at `start`, will be
  // committed soon. The dispatcher indexes from them instead of reading the
  // file back (recovery and anything not held still read the file).
  void OnWritten(int64_t start, std::shared_ptr<const std::string> bytes);
  // Commit-log bytes indexed from memory and from the file (tests, metrics).
  int64_t bytes_from_memory() const;
  int64_t bytes_from_file() const;

  int64_t dispatched_offset() const;
  // Waits until everything below `offset` is dispatched; false on timeout or
  // when stopped first. With `until_error`, also returns (false) as soon as
  // the last dispatch attempt failed (the index cannot be written).
  bool WaitForDispatched(int64_t offset, absl::Duration timeout, bool until_error = false) const;
  // The error that stopped the last batch (OK once a batch succeeds again).
  absl::Status last_error() const;

 private:
  // Indexes one chunk below `limit`; returns false when nothing was left.
  absl::StatusOr<bool> DispatchOnce(int64_t limit);
  // Records from `from` below `limit` out of the held groups; empty when
  // they do not hold `from`. `*keep` then owns the bytes the views point at.
  std::vector<RecordView> HeldRecords(int64_t from, int64_t limit,
                                      std::shared_ptr<const std::string>* keep);
  void Loop();

  CommitLog* const log_;
  IndexStore* const index_;
  const DispatcherOptions options_;
  std::function<void(const std::vector<QueueAdvance>&)> listener_;

  mutable absl::Mutex mu_;
  int64_t target_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dispatched_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;

  struct Held {
    int64_t start = 0;
    std::shared_ptr<const std::string> bytes;
    int64_t end() const { return start + static_cast<int64_t>(bytes->size()); }
  };
  // Taken by the commit log's writer (with its lock held): never call the
  // log with it held.
  mutable absl::Mutex held_mu_;
  std::deque<Held> held_ ABSL_GUARDED_BY(held_mu_);  // in log order
  int64_t held_bytes_ ABSL_GUARDED_BY(held_mu_) = 0;
  std::atomic<int64_t> bytes_from_memory_{0};
  std::atomic<int64_t> bytes_from_file_{0};
};

}  // namespace apogee::store
