// Store-level recovery: brings the RocksDB indexes back in line with the
// commit log after CommitLog::Open has checked and cut the log's tail. The
// commit log is the source of truth; every step here only moves the indexes.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "services/store/commitlog/commit_log.h"
#include "services/store/dispatch/dispatcher.h"
#include "services/store/index/index_store.h"

namespace apogee::store {

struct RecoveryReport {
  LogRecoveryInfo log;                // what the commit log repaired
  bool index_rebuilt = false;         // derived indexes dropped and rebuilt
  int64_t index_truncated_from = -1;  // index was ahead of the log (async crash)
  int64_t replayed_from = 0;          // commit-log range re-dispatched
  int64_t replayed_to = 0;
};

// Runs on the opening thread before the dispatcher thread starts or any
// append is accepted:
//  1. the index checkpoint is past the log's end (an async-mode crash lost
//     the unflushed tail): drop index entries from the log's end on;
//  2. `rebuild`, a newly created index, or a checkpoint below the log's
//     first offset (a stale index): drop the derived indexes and dispatch
//     from the log's start;
//  3. drop index entries below the log's first offset (retention that
//     stopped between deleting a segment and trimming);
//  4. dispatch every committed record the index has not seen (records of a
//     deleted topic below its tombstone are passed over, so a replay never
//     brings them back);
//  5. hand the per-queue next offsets, and each deleted topic's queue base,
//     to the log for new appends.
absl::StatusOr<RecoveryReport> RecoverIndexes(CommitLog* log, IndexStore* index,
                                              Dispatcher* dispatcher, bool rebuild);

}  // namespace apogee::store
