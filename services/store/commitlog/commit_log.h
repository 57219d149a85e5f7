// The commit log: one append-only sequence of records for all topics and
// queues, split into segment files. Offsets are byte positions, contiguous
// across segments (a segment starts where the previous one ends; no padding),
// so any record boundary is a place a replica can stream raw bytes from.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "services/common/clock/clock.h"
#include "services/store/commitlog/record.h"
#include "services/store/commitlog/segment.h"
#include "services/store/io/file_system.h"

namespace apogee::store {

enum class FlushMode {
  kAsync,  // acknowledge after write(); a flush thread calls Flush() periodically
  kSync,   // acknowledge after fdatasync; concurrent appends share one sync
};

struct CommitLogOptions {
  std::string dir;  // holds the segment files and nothing else
  int64_t segment_size = int64_t{1} << 30;
  uint32_t max_record_size = (4u << 20) + (64u << 10);  // encoded, header included
  FlushMode flush_mode = FlushMode::kAsync;
  // Appends waiting behind a leader are written (and synced) together, up to
  // this many bytes per group.
  int64_t max_group_bytes = 8 << 20;
  // Recovery: a record that fails validation below this offset means lost
  // acknowledged data, and Open fails with DATA_LOSS instead of truncating.
  // The store passes its dispatched checkpoint in sync mode.
  int64_t protected_offset = 0;
};

// Where one appended record landed.
struct AppendResult {
  int64_t commit_offset = 0;
  int64_t queue_offset = 0;
  int64_t store_timestamp_ms = 0;
  uint32_t size = 0;  // bytes in the log
};

// What Open found and repaired.
struct LogRecoveryInfo {
  int segments = 0;
  int64_t scanned_bytes = 0;      // of the last segment(s), CRC-checked
  int64_t truncated_bytes = 0;    // torn or corrupt tail removed
  std::string truncation_reason;  // names the segment files and the offset
};

struct SegmentInfo {
  int64_t start = 0;
  int64_t end = 0;
  bool active = false;
  std::string path;
};

struct CommitLogStats {
  int64_t min_offset = 0;
  int64_t written_offset = 0;
  int64_t flushed_offset = 0;
  int segments = 0;
  int64_t appended_records = 0;
  int64_t appended_bytes = 0;
  int64_t append_errors = 0;
  int64_t group_commits = 0;  // groups written (one write() each)
  int64_t syncs = 0;          // fdatasyncs that succeeded
  int64_t flush_errors = 0;
  int pending_appends = 0;  // queued behind the current group leader
  std::string last_error;
};

// Whole records read from one segment: `data` holds the raw bytes
// [start, end) exactly as on disk, `records` views into it.
struct RecordChunk {
  int64_t start = 0;
  int64_t end = 0;
  std::unique_ptr<std::string> data;
  std::vector<RecordView> records;
};

// Thread-safety: all public methods are thread-safe. Appends from many
// threads form a queue; the thread at its front (the leader) writes the
// waiting batches as one group and wakes the others. In kSync mode the
// leader leaves the queue before it syncs, so the next group is written
// while this one's fdatasync runs, and one sync covers every group written
// by then (syncs run back to back instead of waiting for a hand-off). A
// failed sync rolls back everything written since the last good one. Readers
// never block on disk writes. The commit listener runs on
// the leader's thread, outside all locks, and may see ends out of order
// (keep the maximum).
class CommitLog {
 public:
  // Opens or creates the log in options.dir and recovers it: checks that
  // segments are contiguous, CRC-checks the last segment and truncates a
  // torn or corrupt tail (see LogRecoveryInfo and protected_offset). When
  // the last segment holds no whole record, the one before it is checked
  // too, and a torn tail there is cut (the later segments removed), so the
  // log always ends at a whole, checksummed record.
  static absl::StatusOr<std::unique_ptr<CommitLog>> Open(FileSystem* fs, const Clock* clock,
                                                         CommitLogOptions options);
  ~CommitLog();
  CommitLog(const CommitLog&) = delete;
  CommitLog& operator=(const CommitLog&) = delete;

  const LogRecoveryInfo& recovery_info() const { return recovery_; }
  const CommitLogOptions& options() const { return options_; }

  // Next queue offset per queue, restored from the indexes after recovery.
  // Call before the first Append.
  void RestoreQueueOffsets(const std::vector<std::pair<TopicQueue, int64_t>>& next_offsets);

  // Topic deletion. The highest next queue offset any queue of `topic` has
  // reached, or `floor` when that is higher.
  int64_t MaxQueueOffset(const std::string& topic, int64_t floor) const;
  // Every queue of `topic`, including queues not appended to yet, continues
  // from `base` (a deleted topic's later incarnation starts there). The
  // caller holds off appends to `topic` meanwhile.
  void RebaseTopicQueues(const std::string& topic, int64_t base);

  // Called with the new committed offset after each group is written (kAsync)
  // or synced (kSync). Set before the first Append.
  void SetCommitListener(std::function<void(int64_t)> listener);

  // Called with the raw bytes of each group (and each replicated chunk) as
  // soon as they are written, in log order, before they are committed, on
  // the writing thread with the writer lock held: it must only take the
  // bytes and return. A group that a failed sync rolls back is written
  // again from the same offset, so a listener that sees a start below what
  // it already holds must drop the overlap. Set before the first Append.
  using WriteListener = std::function<void(int64_t start, std::shared_ptr<const std::string>)>;
  void SetWriteListener(WriteListener listener);

  // Appends `batch` atomically: every record or none, all in one segment.
  // Returns one result per record, in order. INVALID_ARGUMENT for a record
  // over max_record_size or a batch over segment_size; I/O errors
  // (RESOURCE_EXHAUSTED for a full disk) leave the log as it was.
  absl::StatusOr<std::vector<AppendResult>> Append(const std::vector<RecordInput>& batch);

  // Replication (a follower's log). Appends `data`, raw records read from
  // another log's ReadChunk, at exactly `start` == written_offset(). Every
  // record is parsed and CRC-checked first and must carry its own commit
  // offset; nothing is written when one fails (DATA_LOSS names it). Queue
  // offset counters follow the record headers. In kSync mode the data is
  // synced before this returns. Returns the new written offset.
  absl::StatusOr<int64_t> AppendRaw(int64_t start, absl::string_view data);

  // Cuts the log back to `offset` (a record boundary in [min_offset(),
  // written_offset()]): later segments are deleted and the one holding
  // `offset` becomes the active segment again. Returns the bytes dropped.
  // The caller must hold off appends and readers of the dropped range, and
  // fix the indexes and queue counters (ResetQueueOffsets).
  absl::StatusOr<int64_t> TruncateTo(int64_t offset);

  // After TruncateTo: every queue counter restarts from `next_offsets`
  // (queues not listed restart at their topic's base, or 0).
  void ResetQueueOffsets(const std::vector<std::pair<TopicQueue, int64_t>>& next_offsets);

  // Reads and CRC-checks the record at `offset` (a record boundary below
  // written_offset()). `size_hint`, when known, saves a read.
  absl::StatusOr<StoredRecord> ReadRecord(int64_t offset, uint32_t size_hint = 0) const;

  // Reads the records of `sizes`, laid end to end from `offset` (a record
  // boundary below written_offset()), with one read: a consume queue's
  // neighbours, appended in one batch. Each is CRC-checked. Stops early (at
  // least one record, else the error) where a segment ends or a record does
  // not verify; the caller reads the rest one by one.
  absl::StatusOr<std::vector<StoredRecord>> ReadRecords(int64_t offset,
                                                        absl::Span<const uint32_t> sizes) const;

  // Reads whole records from `offset` (a record boundary) in one segment,
  // below `limit`, about `max_bytes` (at least one record). An empty chunk
  // when offset >= min(limit, written_offset()).
  absl::StatusOr<RecordChunk> ReadChunk(int64_t offset, size_t max_bytes, int64_t limit) const;

  // fdatasyncs the active segment so everything written is durable.
  absl::Status Flush();

  // Deletes whole sealed segments that end at or before `offset` (never the
  // active one). Returns how many were deleted.
  absl::StatusOr<int> DeleteSegmentsBefore(int64_t offset);

  std::vector<SegmentInfo> ListSegments() const;
  int64_t min_offset() const;
  int64_t written_offset() const;
  int64_t flushed_offset() const;
  // What readers of the index may see: flushed in kSync mode, written in
  // kAsync mode.
  int64_t committed_offset() const;
  CommitLogStats stats() const;

 private:
  // The segment holding `offset`; OUT_OF_RANGE (or below the minimum)
  // outside [min_offset(), written_offset()).
  absl::StatusOr<std::shared_ptr<Segment>> ReadableSegment(int64_t offset) const;
  struct Writer {
    const std::vector<RecordInput>* batch = nullptr;
    int64_t bytes = 0;
    std::vector<AppendResult> results;
    absl::Status status;
    bool done = false;
  };
  // kSync: a group written and not yet known durable, with what to restore
  // if its sync fails.
  struct UnsyncedGroup {
    int64_t start = 0;
    int64_t end = 0;
    std::vector<std::pair<int64_t*, int64_t>> undo;  // queue offset counters
    absl::Status failure;                            // set when rolled back
  };

  CommitLog(FileSystem* fs, const Clock* clock, CommitLogOptions options);
  absl::Status Recover();
  // What recovery found in one segment's records.
  struct TailScan {
    int64_t valid_end = 0;    // where the last whole batch ends
    int64_t scanned_end = 0;  // where the whole records end
    int64_t last_store_timestamp_ms = 0;
    std::string reason;  // why the scan stopped before the file's end, naming file and offset
  };
  // CRC-checks the records of `segment` up to `file_end`.
  absl::StatusOr<TailScan> ScanTail(const Segment& segment, int64_t file_end) const;
  static absl::StatusOr<RecordChunk> ReadChunkFrom(const Segment& segment, int64_t offset,
                                                   size_t max_bytes, int64_t limit,
                                                   uint32_t max_record_size);

  // Encodes and writes `group`; in kSync mode returns the group to sync in
  // `unsynced`.
  absl::Status WriteGroup(const std::vector<Writer*>& group,
                          std::shared_ptr<UnsyncedGroup>* unsynced)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Makes `group` durable: returns at once when a later sync covered it,
  // else fdatasyncs everything written so far.
  absl::Status SyncGroup(const UnsyncedGroup& group);
  // fdatasyncs everything written so far.
  absl::Status SyncWritten() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  // After a failed sync: truncates the log to the last good sync, restores
  // the queue offsets and fails every unsynced group with `cause`.
  void RollBackUnsynced(const absl::Status& cause) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  absl::Status Roll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // A handed-off group buffer nobody else holds any more (its capacity
  // kept), or an empty one.
  std::string TakeFreeBuffer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status Repair() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  std::shared_ptr<Segment> SegmentFor(int64_t offset) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  FileSystem* const fs_;
  const Clock* const clock_;
  const CommitLogOptions options_;
  LogRecoveryInfo recovery_;
  std::function<void(int64_t)> commit_listener_;
  WriteListener write_listener_;

  // One fdatasync at a time. Lock order: sync_mu_, write_mu_, mu_.
  absl::Mutex sync_mu_ ABSL_ACQUIRED_BEFORE(write_mu_);

  // Leader state: only the thread holding write_mu_ (the group leader) reads
  // or writes these.
  mutable absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::shared_ptr<Segment> active_ ABSL_GUARDED_BY(write_mu_);
  int64_t next_offset_ ABSL_GUARDED_BY(write_mu_) = 0;
  int64_t last_store_timestamp_ms_ ABSL_GUARDED_BY(write_mu_) = 0;
  bool broken_ ABSL_GUARDED_BY(write_mu_) = false;  // the tail needs Repair()
  absl::node_hash_map<TopicQueue, int64_t> next_queue_offset_ ABSL_GUARDED_BY(write_mu_);
  // Where a queue of a deleted-and-re-created topic starts (RebaseTopicQueues).
  absl::flat_hash_map<std::string, int64_t> topic_queue_base_ ABSL_GUARDED_BY(write_mu_);
  std::string buffer_ ABSL_GUARDED_BY(write_mu_);
  // Group buffers given to the write listener, reused once it let go.
  static constexpr size_t kMaxHandedBuffers = 8;
  std::deque<std::shared_ptr<std::string>> handed_ ABSL_GUARDED_BY(write_mu_);

  // Published state, read by everyone.
  mutable absl::Mutex mu_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<UnsyncedGroup>> unsynced_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);
  int64_t min_offset_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t written_offset_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t flushed_offset_ ABSL_GUARDED_BY(mu_) = 0;
  CommitLogStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::store
