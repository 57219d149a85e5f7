#include "services/store/recovery/recovery.h"

#include "services/common/status/status_macros.h"

namespace apogee::store {

absl::StatusOr<RecoveryReport> RecoverIndexes(CommitLog* log, IndexStore* index,
                                              Dispatcher* dispatcher, bool rebuild) {
  RecoveryReport report;
  report.log = log->recovery_info();
  if (index->dispatched_offset() > log->written_offset()) {
    report.index_truncated_from = log->written_offset();
    APOGEE_RETURN_IF_ERROR(index->TruncateFrom(log->written_offset()));
  }
  if (rebuild || index->created() || index->dispatched_offset() < log->min_offset()) {
    report.index_rebuilt = true;
    APOGEE_RETURN_IF_ERROR(index->ResetIndexes(log->min_offset()));
  }
  APOGEE_RETURN_IF_ERROR(index->TrimBefore(log->min_offset()));
  report.replayed_from = index->dispatched_offset();
  APOGEE_RETURN_IF_ERROR(dispatcher->CatchUp());
  report.replayed_to = index->dispatched_offset();

  // Queues of a deleted topic start at its queue base unless written since
  // (restored below).
  for (const auto& [topic, tombstone] : index->ListTombstones()) {
    log->RebaseTopicQueues(topic, tombstone.queue_base);
  }
  std::vector<std::pair<TopicQueue, int64_t>> next_offsets;
  for (auto& [tq, range] : index->ListQueues()) next_offsets.emplace_back(tq, range.next_offset);
  log->RestoreQueueOffsets(next_offsets);
  return report;
}

}  // namespace apogee::store
