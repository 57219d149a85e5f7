// Lists pending typed records (ListPending, docs/design/message-types.md §6):
// the delayed messages (or transaction halves) not resolved yet, in (due
// time, commit offset) order, read from the log through the due-time index.
// A topic filter passes over other targets; a page stops at `limit`
// records or after kMaxScannedPerPage index entries, and says where the
// next one starts.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/store/engine/store.h"

namespace apogee::store {

inline constexpr int kMaxPendingPage = 10000;
inline constexpr int kMaxScannedPerPage = 100000;

struct PendingQuery {
  RecordKind kind = RecordKind::kTimer;                         // kTimer or kHalf
  int64_t due_before_ms = std::numeric_limits<int64_t>::max();  // inclusive
  std::string target_topic;                                     // empty: every target
  int limit = 100;                                              // 1..kMaxPendingPage
  // Only entries strictly after (after_ms, after_offset); after_ms < 0:
  // from the first.
  int64_t after_ms = -1;
  int64_t after_offset = 0;
};

struct PendingPage {
  std::vector<StoredRecord> records;
  bool more = false;
  // The last entry examined: the next page's after_ms / after_offset.
  int64_t resume_ms = -1;
  int64_t resume_offset = 0;
};

// INVALID_ARGUMENT naming `kind` or `limit` when out of range.
absl::StatusOr<PendingPage> ListPending(const Store& store, const PendingQuery& query);

}  // namespace apogee::store
