// Retention: deletes whole commit-log segments that are older than the
// retention period, or the oldest ones while the disk is fuller than the
// watermark, and trims the indexes to match.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/clock/clock.h"
#include "services/store/commitlog/commit_log.h"
#include "services/store/index/index_store.h"
#include "services/store/io/file_system.h"

namespace apogee::store {

struct RetentionOptions {
  absl::Duration retention = absl::Hours(72);
  // Fraction of the disk (0..1]; above it the oldest segments go regardless
  // of age. 1 disables the check.
  double disk_usage_watermark = 0.85;
  // How often the store runs a pass; zero or less: only when asked.
  absl::Duration check_interval = absl::Seconds(10);
};

struct RetentionReport {
  int deleted_segments = 0;
  int64_t deleted_bytes = 0;
  int64_t min_offset = 0;      // the log's first offset afterwards
  bool disk_pressure = false;  // usage was above the watermark
  int64_t timers_carried = 0;  // moved copies appended by the carrier
  // Segments old enough (or over the watermark) to go that a pending TIMER
  // or HALF kept.
  int pinned_segments = 0;
};

// Moves pending timers out of a log prefix (message-types.md §2.4). The
// store's timer service implements it; retention calls it before deleting.
class TimerCarrier {
 public:
  virtual ~TimerCarrier() = default;
  // Appends a moved copy (kind TIMER, same due time and target, subject =
  // the old offset) of every pending TIMER below `end` and waits until the
  // copies are dispatched, which ends the old offsets' pending entries.
  // Returns how many were carried. On error some may have been carried; the
  // rest stay pending where they are.
  virtual absl::StatusOr<int64_t> CarryTimersBefore(int64_t end) = 0;
};

// Thread-safety: stateless; run one pass at a time per store (the store's
// retention task or an explicit call, serialized by the store).
//
// A segment is deleted only when it is sealed, every byte of it is flushed
// and dispatched, and either (a) the first record after it was stored at
// least `retention` ago (so all of its records are older), or (b) the disk
// holding `dir` is above the watermark. Only a prefix of the log is deleted.
// The index is trimmed after the files are gone; recovery redoes the trim if
// a crash falls in between.
//
// Pending typed records below the cut (message-types.md §2.4): a HALF pins
// its segment; TIMERs are handed to `carrier` (null: a follower, which
// never appends) and pin their segment when there is none or it fails
// (logged as event=retention_pinned); DISCARDED entries do not pin.
absl::StatusOr<RetentionReport> RunRetention(CommitLog* log, IndexStore* index, FileSystem* fs,
                                             const Clock* clock, const RetentionOptions& options,
                                             TimerCarrier* carrier = nullptr);

}  // namespace apogee::store
