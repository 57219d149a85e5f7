#include "services/store/typed/pending_list.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/common/status/status_macros.h"

namespace apogee::store {
namespace {

// The index encodes due times as unsigned ms and scans to due + 1.
constexpr int64_t kMaxDueMs = std::numeric_limits<int64_t>::max() / 2;

}  // namespace

absl::StatusOr<PendingPage> ListPending(const Store& store, const PendingQuery& query) {
  if (query.kind != RecordKind::kTimer && query.kind != RecordKind::kHalf) {
    return absl::InvalidArgumentError(absl::StrCat("kind is ", RecordKindName(query.kind),
                                                   " (allowed: RECORD_TIMER, RECORD_HALF)"));
  }
  if (query.limit < 1 || query.limit > kMaxPendingPage) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit is ", query.limit, " (allowed: 1..", kMaxPendingPage, ")"));
  }
  PendingPage page;
  const int64_t due_ms = std::clamp<int64_t>(query.due_before_ms, 0, kMaxDueMs);
  int64_t from_ms = std::max<int64_t>(query.after_ms, 0);
  int64_t from_offset = query.after_ms < 0 ? 0 : query.after_offset + 1;
  int scanned = 0;
  while (static_cast<int>(page.records.size()) < query.limit) {
    if (scanned >= kMaxScannedPerPage) {
      page.more = true;
      return page;
    }
    // One more than needed tells whether anything follows the page.
    const int want = std::min(query.limit - static_cast<int>(page.records.size()) + 1,
                              kMaxScannedPerPage - scanned);
    APOGEE_ASSIGN_OR_RETURN(std::vector<DueEntry> entries,
                            store.ScanPending(query.kind, from_ms, from_offset, due_ms, want));
    for (const DueEntry& entry : entries) {
      if (static_cast<int>(page.records.size()) == query.limit) {
        page.more = true;  // `entry` is the first of the next page
        return page;
      }
      ++scanned;
      page.resume_ms = entry.at_ms;
      page.resume_offset = entry.commit_offset;
      absl::StatusOr<StoredRecord> record = store.ReadAt(entry.commit_offset);
      // Resolved and trimmed since the scan: no longer pending.
      if (absl::IsOutOfRange(record.status()) || absl::IsNotFound(record.status())) continue;
      if (!record.ok()) return record.status();
      if (!query.target_topic.empty() && record->view().target_topic() != query.target_topic) {
        continue;
      }
      page.records.push_back(*std::move(record));
    }
    if (static_cast<int>(entries.size()) < want) return page;  // the index has no more
    from_ms = page.resume_ms;
    from_offset = page.resume_offset + 1;
  }
  page.more = true;  // full after passing over other targets: more may follow
  return page;
}

}  // namespace apogee::store
