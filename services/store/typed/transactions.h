// The store's side of transactional messages (docs/design/message-types.md
// §3): resolving a HALF record exactly once, counting its checks, listing
// what is pending. A half message is a HALF record in RMQ_SYS_TRANS_HALF_TOPIC
// plus its `pending` / `txn_check` entries, which the dispatcher derives from
// the log; every action appends one record whose dispatch ends (or moves)
// that pending state, so the state survives restarts and travels to slaves
// with the log. The broker owns the policy (when to check, whom to ask).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/store/engine/store.h"
#include "services/store/typed/queue_watch.h"

namespace prometheus {
class Counter;
class Registry;
}  // namespace prometheus

namespace apogee::store {

enum class Resolution { kCommit, kRollback, kDiscard };

struct ResolveRequest {
  int64_t half_offset = 0;
  std::string message_id;    // must equal the half's
  std::string target_topic;  // must equal the half's target
  Resolution resolution = Resolution::kCommit;
};

struct ResolveResult {
  bool already = false;                // the same resolution was applied before
  std::optional<AppendResult> record;  // the record appended (unset when already)
};

// A pending record with its current state (the record's own at_ms/count
// are those it was written with; CHECKED records move them).
struct PendingRecord {
  StoredRecord record;
  DueEntry entry;
};

struct ListPendingRequest {
  RecordKind kind = RecordKind::kHalf;   // TIMER, HALF or DISCARDED
  std::optional<int64_t> due_before_ms;  // set: (due, offset) order, TIMER/HALF only
  std::string target_topic;              // empty: all
  int limit = 100;                       // 1..10000
  int64_t after_offset = 0;              // paging in offset order (0: from the start)
};

struct ListPendingResult {
  std::vector<PendingRecord> records;
  bool more = false;
};

inline constexpr int kMaxListPending = 10000;

// Thread-safety: thread-safe. Actions on the same half are serialized by an
// in-progress set (§1.3): a subject whose resolver was appended but not yet
// dispatched is held until the dispatcher indexes it, so a second action
// sees the resolved state instead of appending a second resolver.
class TransactionService {
 public:
  // `registry` may be null (no metrics). `watch` (may be null) hears the
  // target queue of every committed message, as it hears fired timers:
  // the broker did not append that copy, so nothing else wakes its
  // consumers.
  TransactionService(Store* store, prometheus::Registry* registry, QueueWatch* watch = nullptr);
  TransactionService(const TransactionService&) = delete;
  TransactionService& operator=(const TransactionService&) = delete;

  // The §3.3 table. NOT_FOUND: no HALF with this id and topic at the
  // offset; FAILED_PRECONDITION: resolved otherwise before, the target topic
  // is gone (COMMIT), or the store follows a master.
  absl::StatusOr<ResolveResult> Resolve(const ResolveRequest& request);
  // Appends a CHECKED record: `check_count` must be the stored count + 1.
  absl::Status RecordCheck(int64_t half_offset, uint32_t check_count, int64_t next_check_ms);
  absl::StatusOr<ListPendingResult> ListPending(const ListPendingRequest& request) const;

 private:
  class Claim;
  // Waits until the indexes cover the committed log (actions decide on the
  // dispatched state) and refuses on a follower.
  absl::Status CheckReady() const;
  // Appends the resolver of the pending `subject` (a HALF or DISCARDED record).
  absl::StatusOr<ResolveResult> Apply(Claim& claim, const StoredRecord& subject,
                                      Resolution resolution);
  // A pending HALF or DISCARDED record at `offset` naming this message.
  absl::StatusOr<StoredRecord> ReadSubject(int64_t offset, const ResolveRequest& request) const;

  Store* const store_;
  QueueWatch* const watch_;
  prometheus::Counter* committed_ = nullptr;
  prometheus::Counter* rolled_back_ = nullptr;
  prometheus::Counter* discarded_ = nullptr;
  prometheus::Counter* checks_ = nullptr;

  absl::Mutex mu_;
  absl::flat_hash_set<int64_t> in_progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::store
