// Feeds client append batches to the engine from one thread, in the order
// they were submitted, merging whatever has queued up meanwhile into one
// engine Append (one write, and with --flush=sync one fdatasync, for many
// batches). This is what lets a stream keep many batches in flight while its
// records still land in the order they were sent.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/store/engine/store.h"
#include "services/store/metrics/probe.h"

namespace apogee::store {

struct AppenderOptions {
  // Client batches are merged into one engine call up to about this many
  // record bytes (a single larger batch goes alone). Keep it well below the
  // segment size: a merged call must fit in one segment.
  int64_t max_group_bytes = 4 << 20;
  // Sync replication: called on the completion thread for each stored
  // batch with the log offset its last record ends at and when it was
  // stored; blocks until enough followers hold it (OK) or gives up
  // (ABORTED). Unset: answers do not wait for followers.
  std::function<absl::Status(int64_t end, absl::Time stored_at)> await_replicas;
  // Whether await_replicas would wait now; when it would not and no answer
  // is queued before, the batch is answered on the appender thread (one
  // thread hop less). Unset: always through the completion thread.
  std::function<bool()> awaits_replicas;
  // Let Submit append on its caller's thread when no other append is
  // running (RocksDB-style leader): an idle store then skips the hand-off
  // to the appender thread, whose wake-up costs more than a small write.
  // Only for --flush=async: with sync flush the caller would sit in
  // fdatasync, and callers are gRPC threads that must not block.
  bool lead_inline = false;
};

// Thread-safety: Submit is thread-safe. `done` callbacks run in submission
// order, outside any lock, as soon as the engine stored the batch (written,
// or with --flush=sync fdatasynced): on the appender thread, on a Submit
// caller's thread (lead_inline; so Submit must be called without locks the
// callback takes), or with await_replicas on a completion thread once the
// followers hold it. They
// never wait for the indexes: the engine's readers wait for those instead
// (Store::Read and friends see every acknowledged record). Callbacks must
// not block (hand the result to a gRPC reactor and return).
class Appender {
 public:
  // `replication` is not OK when the batch is stored (results filled in)
  // but was not replicated as the mode requires (see await_replicas).
  using Done =
      std::function<void(absl::StatusOr<std::vector<AppendResult>>, absl::Status replication)>;

  // `store` and `probe` must outlive the appender.
  Appender(Store* store, Probe* probe, AppenderOptions options);
  // Appends everything submitted so far, runs its callbacks, then joins.
  ~Appender();
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;

  // Queues `batch` (non-empty) to be appended atomically after every batch
  // submitted before it. `body_bytes` is for metrics.
  void Submit(std::vector<RecordInput> batch, int64_t body_bytes, Done done);

 private:
  struct Job {
    std::vector<RecordInput> batch;
    int64_t bytes = 0;  // estimated encoded size
    int64_t body_bytes = 0;
    Done done;
  };

  void Loop();
  // Takes a prefix of the queue up to max_group_bytes (at least one job).
  void TakeGroup(std::vector<Job>& jobs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends `jobs` (in order) and runs their callbacks.
  void AppendJobs(std::vector<Job>& jobs);
  void AppendOne(Job& job);
  void Finish(Job& job, absl::StatusOr<std::vector<AppendResult>> result);
  // Answers finished jobs in order, each once the followers hold it.
  void Complete();

  struct Completion {
    Done done;
    absl::StatusOr<std::vector<AppendResult>> result;
    int64_t end = 0;  // commit-log offset the followers must hold
    absl::Time stored_at;
  };

  Store* const store_;
  Probe* const probe_;
  const AppenderOptions options_;

  absl::Mutex done_mu_;
  std::deque<Completion> completions_ ABSL_GUARDED_BY(done_mu_);
  // Completions queued or being answered by the completion thread: a
  // direct answer may not overtake them.
  int pending_completions_ ABSL_GUARDED_BY(done_mu_) = 0;
  bool done_stopping_ ABSL_GUARDED_BY(done_mu_) = false;
  std::thread completer_;  // only with await_replicas

  absl::Mutex mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // One group is appended at a time, by the appender thread or by a Submit
  // caller leading inline; whoever sets this owns the engine call and the
  // callbacks of the jobs it took, which keeps callbacks in order.
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace apogee::store
