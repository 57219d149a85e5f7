#include "services/store/retention/retention.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/common/status/status_macros.h"

namespace apogee::store {
namespace {

constexpr int kScanBatch = 1000;

// The pending TIMER and HALF entries below a cut. DISCARDED entries do not
// pin (message-types.md §3.3): they go with their segment.
struct Pins {
  std::optional<int64_t> first_half;
  std::optional<int64_t> first_timer;
  int64_t pending = 0;  // TIMER and HALF entries
  std::optional<int64_t> first() const {
    if (!first_half.has_value()) return first_timer;
    if (!first_timer.has_value()) return first_half;
    return std::min(*first_half, *first_timer);
  }
};

absl::StatusOr<Pins> FindPins(const IndexStore& index, int64_t from, int64_t end) {
  Pins pins;
  for (;;) {
    APOGEE_ASSIGN_OR_RETURN(std::vector<DueEntry> entries,
                            index.ScanPendingBefore(from, end, kScanBatch));
    for (const DueEntry& e : entries) {
      std::optional<int64_t>* first = e.kind == RecordKind::kHalf    ? &pins.first_half
                                      : e.kind == RecordKind::kTimer ? &pins.first_timer
                                                                     : nullptr;
      if (first == nullptr) continue;
      if (!first->has_value()) *first = e.commit_offset;
      ++pins.pending;
    }
    if (static_cast<int>(entries.size()) < kScanBatch) return pins;
    from = entries.back().commit_offset + 1;
  }
}

// How many of the first `count` segments end at or before `offset`.
int SegmentsEndingBy(const std::vector<SegmentInfo>& segments, int count, int64_t offset) {
  while (count > 0 && segments[count - 1].end > offset) --count;
  return count;
}

}  // namespace

absl::StatusOr<RetentionReport> RunRetention(CommitLog* log, IndexStore* index, FileSystem* fs,
                                             const Clock* clock, const RetentionOptions& options,
                                             TimerCarrier* carrier) {
  RetentionReport report;
  const std::vector<SegmentInfo> segments = log->ListSegments();
  const int64_t safe_end = std::min(log->flushed_offset(), index->dispatched_offset());
  const int64_t cutoff_ms = absl::ToUnixMillis(clock->Now() - options.retention);

  APOGEE_ASSIGN_OR_RETURN(const DiskSpace space, fs->GetDiskSpace(log->options().dir));
  double used = static_cast<double>(space.total_bytes - space.available_bytes);
  const double limit = options.disk_usage_watermark * static_cast<double>(space.total_bytes);
  report.disk_pressure = options.disk_usage_watermark < 1.0 && used > limit;

  // The segments that may go by age or disk usage: a prefix of the log.
  int eligible = 0;
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
    used -= static_cast<double>(segment.end - segment.start);
    ++eligible;
  }
  if (eligible == 0) {
    report.min_offset = log->min_offset();
    return report;
  }

  // Pending records below the cut (message-types.md §2.4): a HALF pins its
  // segment, TIMERs are carried forward to the log's end.
  int keep = eligible;
  const auto cut = [&] { return keep > 0 ? segments[keep - 1].end : log->min_offset(); };
  APOGEE_ASSIGN_OR_RETURN(Pins pins, FindPins(*index, log->min_offset(), cut()));
  if (pins.first_half.has_value()) keep = SegmentsEndingBy(segments, keep, *pins.first_half);
  std::string carry_error;
  if (pins.first_timer.has_value() && *pins.first_timer < cut()) {
    absl::StatusOr<int64_t> carried =
        carrier != nullptr
            ? carrier->CarryTimersBefore(cut())
            : absl::FailedPreconditionError(
                  "no carrier here (a follower, or no timer service): kept until moved copies "
                  "arrive");
    if (carried.ok()) {
      report.timers_carried = *carried;
    } else {
      carry_error = absl::StrCat("timers not carried: ", carried.status().message());
    }
  }
  // Whatever the carry did, the dispatched index has the last word: nothing
  // still pending below the cut goes.
  APOGEE_ASSIGN_OR_RETURN(const Pins left, FindPins(*index, log->min_offset(), cut()));
  if (left.first().has_value()) keep = SegmentsEndingBy(segments, keep, *left.first());
  report.pinned_segments = eligible - keep;
  if (report.pinned_segments > 0) {
    // Either something is still pending below the final cut, or the cut
    // stopped at a half found by the first scan.
    const bool by_half = !left.first().has_value();
    const std::string reason = by_half               ? "pending transaction (half message)"
                               : carry_error.empty() ? "timers still pending after the carry"
                                                     : carry_error;
    std::fprintf(
        stderr, "event=retention_pinned offset=%lld pending=%lld segments=%d reason=\"%s\"\n",
        static_cast<long long>(by_half ? pins.first_half.value_or(cut()) : *left.first()),
        static_cast<long long>(by_half ? pins.pending - report.timers_carried : left.pending),
        report.pinned_segments, reason.c_str());
  }
  if (keep == 0) {
    report.min_offset = log->min_offset();
    return report;
  }
  // The resolvers the scan saw (moved copies among them) are dispatched, so
  // written: make them durable before their subjects' records go, or a
  // machine crash could cut them and give back timers whose records are gone.
  APOGEE_RETURN_IF_ERROR(log->Flush());
  for (int i = 0; i < keep; ++i) report.deleted_bytes += segments[i].end - segments[i].start;
  APOGEE_ASSIGN_OR_RETURN(report.deleted_segments,
                          log->DeleteSegmentsBefore(segments[keep - 1].end));
  APOGEE_RETURN_IF_ERROR(index->TrimBefore(log->min_offset()));
  report.min_offset = log->min_offset();
  return report;
}

}  // namespace apogee::store
