// The store's timer service (docs/design/message-types.md §2.2): fires
// delayed messages. A pending timer is a TIMER record in the log plus a key
// in the RocksDB due-time index (timer_due); nothing per timer is held in
// memory. At the store clock's due time the service appends a FIRED copy of
// the message to its target queue; the dispatcher indexes the copy and, in
// the same batch, deletes the timer's pending entry, so a timer fires once
// in any prefix of the log.
#pragma once

#include <cstdint>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/clock/clock.h"
#include "services/store/engine/store.h"
#include "services/store/retention/retention.h"
#include "services/store/typed/queue_watch.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace apogee::store {

struct TimerServiceOptions {
  int batch_limit = 1000;  // timers fired (or carried) per append batch
  // Record bytes per carry batch (a batch must fit in one log segment).
  int64_t carry_batch_bytes = 4 << 20;
  // The thread re-checks at least this often without a wake-up (a timer
  // indexed while it slept, a role change).
  absl::Duration idle_wait = absl::Seconds(1);
  // How long a pass waits for the indexes to cover the log before firing.
  absl::Duration dispatch_wait = absl::Seconds(5);
  // Told about the target queues of fired copies (may be null).
  QueueWatch* watch = nullptr;
};

// What one pass did.
struct FireReport {
  int fired = 0;
  int dropped = 0;  // targets gone: a DROPPED record instead of a copy
  // Targets this store does not know (no config and no tombstone covering
  // the timer, e.g. a promoted slave the config has not reached yet): kept
  // pending and tried again next pass, never dropped.
  int held = 0;
  bool more = false;  // the batch was full: more may be due now
};

// Thread-safety: thread-safe. FireDue runs one pass on the caller's thread
// (tests, with a ManualClock); Start runs passes on a background thread.
// Never both at once. Passes fire nothing while the store follows a master
// (only the master fires), and first wait until the indexes cover
// everything committed: every FIRED copy in the log then has deleted its
// timer's pending entry, including the copies of the previous pass.
// CarryTimersBefore (the store's retention task) is serialized with passes
// batch by batch, and waits the same way, so a timer is never fired and
// carried both.
class TimerService final : public TimerCarrier {
 public:
  // `registry` may be null (no metrics).
  TimerService(Store* store, const Clock* clock, TimerServiceOptions options,
               prometheus::Registry* registry);
  ~TimerService() override;  // Stop()
  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;

  void Start();
  void Stop();
  // A timer may have been indexed (call from the dispatch listener): the
  // next pass scans the due-time index from its start again.
  void Wake();

  // Fires every timer due at the clock's now (at most batch_limit).
  // Never one whose due time is after now.
  absl::StatusOr<FireReport> FireDue();

  // Retention (message-types.md §2.4): appends a moved copy of every
  // pending TIMER below `end` (kind TIMER, same due time, target and
  // message, subject = the old offset, count = times carried) in batches,
  // then waits until the copies are dispatched. The dispatcher moves each
  // pending entry to its copy in one write. A timer whose target was
  // deleted since it was written gets its DROPPED record instead (a copy
  // would be judged by its own, newer offset). FAILED_PRECONDITION on a
  // follower.
  absl::StatusOr<int64_t> CarryTimersBefore(int64_t end) override;

  int64_t fired_total() const;

 private:
  void Loop();
  absl::StatusOr<FireReport> FireDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);
  struct CarryProgress {
    int64_t from = 0;        // next pending offset to look at
    int64_t carried = 0;     // moved copies appended
    int64_t copies_end = 0;  // log end after the last batch
    bool done = false;
  };
  // One batch of CarryTimersBefore.
  absl::Status CarryBatchLocked(int64_t end, CarryProgress* progress)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);
  // Waits until the indexes cover what is committed now (`what`: for the error).
  absl::Status AwaitCommittedDispatched(const char* what) const;
  bool WokenLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return wake_ || stopping_; }
  void RecordFired(int64_t lateness_ms);
  // A DROPPED record was appended (target deleted): counted and logged.
  void LogDropped(const RecordInput& dropped);
  // Where a timer goes now: its target queue, kGone (the target was
  // deleted after the timer was written: DROPPED) or kHeld (unknown to this
  // store, not deleted: stays pending).
  static constexpr int32_t kGone = -1;
  static constexpr int32_t kHeld = -2;
  absl::StatusOr<int32_t> Route(const RecordView& timer) const;
  // At most one line per 10 s: held timers are retried every pass.
  void LogHeld(int held);

  Store* const store_;
  const Clock* const clock_;
  const TimerServiceOptions options_;
  prometheus::Counter* fired_ = nullptr;
  prometheus::Counter* dropped_ = nullptr;
  prometheus::Gauge* pending_ = nullptr;
  prometheus::Histogram* lateness_ = nullptr;

  // Held by a firing pass and by a carry, never both at once.
  absl::Mutex pass_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool rescan_ ABSL_GUARDED_BY(mu_) = true;
  // Passes scan the due-time index from here (ms): below it everything was
  // fired by this service. Used by the pass only (one at a time).
  int64_t scan_from_ms_ ABSL_GUARDED_BY(pass_mu_) = 0;
  absl::Time last_held_log_ = absl::InfinitePast();  // LogHeld, pass only
  int64_t fired_total_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace apogee::store
