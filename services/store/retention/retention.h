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
absl::StatusOr<RetentionReport> RunRetention(CommitLog* log, IndexStore* index, FileSystem* fs,
                                             const Clock* clock, const RetentionOptions& options);

}  // namespace apogee::store
