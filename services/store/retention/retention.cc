#include "services/store/retention/retention.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "services/common/status/status_macros.h"

namespace apogee::store {

absl::StatusOr<RetentionReport> RunRetention(CommitLog* log, IndexStore* index, FileSystem* fs,
                                             const Clock* clock, const RetentionOptions& options) {
  RetentionReport report;
  const std::vector<SegmentInfo> segments = log->ListSegments();
  // A pending timer or half message pins its segment (message-types.md
  // §2.4; carrying timers forward is not built yet).
  APOGEE_ASSIGN_OR_RETURN(std::optional<int64_t> pinned, index->FirstPendingOffset());
  const int64_t safe_end = std::min({log->flushed_offset(), index->dispatched_offset(),
                                     pinned.value_or(std::numeric_limits<int64_t>::max())});
  const int64_t cutoff_ms = absl::ToUnixMillis(clock->Now() - options.retention);

  APOGEE_ASSIGN_OR_RETURN(const DiskSpace space, fs->GetDiskSpace(log->options().dir));
  double used = static_cast<double>(space.total_bytes - space.available_bytes);
  const double limit = options.disk_usage_watermark * static_cast<double>(space.total_bytes);
  report.disk_pressure = options.disk_usage_watermark < 1.0 && used > limit;

  int64_t delete_before = log->min_offset();
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    const SegmentInfo& segment = segments[i];
    if (segment.end > safe_end) break;  // holds unflushed or undispatched data
    bool expired = false;
    if (segments[i + 1].start < log->written_offset()) {
      // The next segment's first record is newer than all of this segment's.
      APOGEE_ASSIGN_OR_RETURN(StoredRecord next, log->ReadRecord(segments[i + 1].start));
      expired = next.view().store_timestamp_ms() <= cutoff_ms;
    }
    const bool over_watermark = options.disk_usage_watermark < 1.0 && used > limit;
    if (!expired && !over_watermark) break;
    delete_before = segment.end;
    used -= static_cast<double>(segment.end - segment.start);
    report.deleted_bytes += segment.end - segment.start;
  }
  if (delete_before > log->min_offset()) {
    APOGEE_ASSIGN_OR_RETURN(report.deleted_segments, log->DeleteSegmentsBefore(delete_before));
    APOGEE_RETURN_IF_ERROR(index->TrimBefore(log->min_offset()));
  }
  report.min_offset = log->min_offset();
  return report;
}

}  // namespace apogee::store
