// The storage engine of apogee-store: one commit log, the RocksDB indexes
// that follow it, consumer offsets and configs, behind one facade. The gRPC
// service layer (later) adapts this API and holds no storage logic.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/naming/names.h"
#include "services/store/commitlog/commit_log.h"
#include "services/store/dispatch/dispatcher.h"
#include "services/store/index/index_store.h"
#include "services/store/io/file_system.h"
#include "services/store/recovery/recovery.h"
#include "services/store/retention/retention.h"

namespace apogee::store {

inline constexpr int32_t kMaxQueuesPerTopic = 1024;
// Shared with the broker, which checks them first (services/common/naming).
inline constexpr size_t kMaxMessageIdLength = ::apogee::kMaxMessageIdLength;
inline constexpr size_t kMaxKeysPerMessage = ::apogee::kMaxMessageKeys;
inline constexpr size_t kMaxKeyLength = ::apogee::kMaxMessageKeyLength;
inline constexpr size_t kMaxTagLength = ::apogee::kMaxMessageTagLength;
inline constexpr int kMaxReadMessages = 1024;
// How long a read waits for the indexes to cover acknowledged appends.
inline constexpr absl::Duration kIndexWait = absl::Seconds(5);

struct StoreOptions {
  std::string data_dir;  // commit log in <data_dir>/commitlog, RocksDB in <data_dir>/index
  FileSystem* file_system = nullptr;  // commit-log I/O; null: the real file system
  const Clock* clock = nullptr;       // store timestamps, retention; null: RealClock
  int64_t segment_size = int64_t{1} << 30;
  uint32_t max_body_size = 4u << 20;
  FlushMode flush_mode = FlushMode::kAsync;
  // kAsync: how often the flush thread fdatasyncs; zero or less: no thread
  // (tests call Flush()).
  absl::Duration flush_interval = absl::Milliseconds(500);
  RetentionOptions retention;
  bool sync_index_writes = false;  // see IndexOptions::sync_writes
  // RocksDB's memory budget and per-column-family memtable size; see
  // IndexOptions.
  int64_t index_memory_budget = IndexOptions().memory_budget;
  int64_t index_write_buffer_size = IndexOptions().write_buffer_size;
  int index_max_open_files = IndexOptions().max_open_files;
  rocksdb::Env* index_env = nullptr;  // see IndexOptions::env
  bool rebuild_indexes = false;       // drop and rebuild the derived indexes on open
  // Called on the dispatcher thread after each index batch with the queues
  // whose readable end moved (wake long polls here). Must not block.
  std::function<void(const std::vector<QueueAdvance>&)> on_dispatch;
  // Called with the new committed log end after each commit (the
  // replication master wakes its follower streams here). Must not block.
  std::function<void(int64_t)> on_commit;
};

// A topic the store accepts messages for. `attributes` is opaque to the
// store (the broker keeps its own serialized config there).
struct TopicConfig {
  std::string name;
  int32_t queue_count = 0;
  std::string attributes;
  // Read-only: the commit-log offset where this incarnation of the name
  // begins (its tombstone's deleted_below; 0 when never deleted).
  int64_t incarnation_start = 0;
};

struct ReadRequest {
  std::string topic;
  int32_t queue_id = 0;
  int64_t offset = 0;           // queue offset of the first message wanted
  int max_messages = 32;        // 1..kMaxReadMessages
  int64_t max_bytes = 4 << 20;  // soft: at least one message is returned
  // When set, only messages whose tags hash passes are returned; the others
  // are skipped (next_offset moves past them) without reading the log.
  std::function<bool(uint64_t tags_hash)> tag_filter;
};

struct ReadResult {
  std::vector<StoredRecord> records;  // CRC-checked, in queue order
  int64_t next_offset = 0;            // where the next read continues
  int64_t min_offset = 0;             // the queue's retained range [min, max)
  int64_t max_offset = 0;
};

struct ConsumerOffset {
  std::string group;
  std::string topic;
  int32_t queue_id = 0;
  int64_t offset = 0;
  // When it was committed (ms since the epoch); 0 when unknown (committed
  // by a store that did not keep commit times).
  int64_t commit_time_ms = 0;
};

// Byte offsets of the commit log.
struct LogOffsets {
  int64_t min = 0;         // first retained byte
  int64_t max = 0;         // end of written data
  int64_t flushed = 0;     // end of fdatasynced data
  int64_t committed = 0;   // end of acknowledged data readers may see
  int64_t dispatched = 0;  // end of indexed data
};

struct StoreStats {
  CommitLogStats log;
  int64_t dispatched_offset = 0;
  absl::Status dispatch_error;
  int queues = 0;
  int topics = 0;
  int64_t retention_deleted_segments = 0;
  int64_t timers_carried = 0;         // since open (message-types.md §2.4)
  int retention_pinned_segments = 0;  // at the last pass: kept by pending TIMER/HALF
  absl::Status last_retention_error;
  IndexMemory index_memory;
};

// Thread-safety: every method is thread-safe and may block on disk I/O, so
// callers on event-loop threads (gRPC reactors) must hand them to a worker.
// Background threads: the dispatcher, the flush thread (kAsync with a
// positive flush_interval) and the retention task (positive
// check_interval). Destroy the Store only after every call has returned; the
// destructor flushes, dispatches what is committed and closes RocksDB.
class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Create(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const RecoveryReport& recovery_report() const { return recovery_; }

  // --- Messages.
  // Appends a batch atomically (every record or none); one result per record.
  // The topic must exist and the queue be below its queue count. A result
  // means the commit log holds the record by the flush policy (written; in
  // kSync mode on disk); the indexes follow on the dispatcher thread, and
  // every read, lookup and offset call below first waits for them to cover
  // what was acknowledged (AwaitIndexed), so a read after an acknowledgement
  // sees the record. Errors: INVALID_ARGUMENT
  // (limits), NOT_FOUND (topic), RESOURCE_EXHAUSTED (disk full; retry later),
  // UNAVAILABLE (I/O failure; nothing was stored).
  absl::StatusOr<std::vector<AppendResult>> Append(const std::vector<RecordInput>& batch);

  // Messages of one queue from request.offset. An offset equal to the
  // queue's max gives an empty result (nothing new yet); below min or above
  // max is OUT_OF_RANGE naming the range.
  absl::StatusOr<ReadResult> Read(const ReadRequest& request) const;
  // The queue's retained range [min, max); {0, 0} for a queue never written.
  absl::StatusOr<QueueRange> GetQueueRange(const std::string& topic, int32_t queue_id) const;
  // First queue offset stored at or after `timestamp_ms` (max when none).
  absl::StatusOr<int64_t> LookupOffsetByTime(const std::string& topic, int32_t queue_id,
                                             int64_t timestamp_ms) const;
  // Records with this message id / this key in `topic`, oldest first.
  // NOT_FOUND when there is none.
  absl::StatusOr<std::vector<StoredRecord>> LookupById(const std::string& message_id,
                                                       int max_results = 32) const;
  absl::StatusOr<std::vector<StoredRecord>> LookupByKey(const std::string& topic,
                                                        const std::string& key,
                                                        int max_results = 32) const;
  // The record at a commit-log offset (a record boundary).
  absl::StatusOr<StoredRecord> ReadAt(int64_t commit_offset) const;
  // Raw commit-log bytes from a record boundary, whole records only, below
  // the committed offset (for replication).
  absl::StatusOr<RecordChunk> ReadRaw(int64_t commit_offset, size_t max_bytes) const;

  // --- Replication (a follower's side; docs/design/replication.md).
  // Appends raw records another store's ReadRaw returned, at exactly the
  // log end (see CommitLog::AppendRaw); the dispatcher indexes them as
  // usual. Returns the new log end.
  absl::StatusOr<int64_t> AppendReplicated(int64_t start, absl::string_view data);
  // Cuts the log back to `offset` (a record boundary) and the indexes with
  // it: consume-queue and time entries of the dropped records go, the
  // dispatch checkpoint moves back, the queue counters restart from what
  // is left (message-id and key entries are verified on lookup). Returns
  // the bytes dropped.
  absl::StatusOr<int64_t> TruncateLog(int64_t offset);
  // Everything besides the log a follower needs to take over.
  struct MetaSnapshot {
    std::vector<TopicConfig> topics;
    std::vector<std::pair<std::string, std::string>> groups;
    std::vector<ConsumerOffset> offsets;
    std::vector<std::pair<std::string, TopicTombstone>> tombstones;
  };
  absl::StatusOr<MetaSnapshot> SnapshotMeta() const;
  // Makes topics, groups, offsets and tombstones what `snapshot` says:
  // what it lacks is deleted (topics only as configs: their tombstones come
  // from the snapshot). Offsets are taken as they are (the master checked
  // them).
  absl::Status ApplyMeta(const MetaSnapshot& snapshot);
  // Bumped by every change of topics, groups, offsets or tombstones (the
  // master sends a new snapshot when it moved).
  int64_t meta_version() const { return meta_version_.load(); }
  // While following a master, Append fails with FAILED_PRECONDITION
  // (`reason`): a local record would break the byte-identical copy. Waits
  // for appends in progress, so none lands after this returns.
  void SetFollowing(bool following, std::string reason = "");

  LogOffsets GetLogOffsets() const;
  // fdatasyncs the commit log and syncs RocksDB's WAL.
  absl::Status Flush();
  // Waits until the indexes cover the log below `commit_offset`.
  bool WaitForDispatch(int64_t commit_offset, absl::Duration timeout) const;
  // The same, but gives up at once while indexing fails (RocksDB stopped by
  // a full disk, say): callers that only wait for visibility then answer
  // without it instead of waiting out `timeout` per call.
  bool WaitForVisible(int64_t commit_offset, absl::Duration timeout) const;

  // --- Consumer offsets. The offset must lie in [0, queue max]; each is
  // kept with the time it was committed (the store's clock).
  absl::Status CommitOffset(const std::string& group, const std::string& topic, int32_t queue_id,
                            int64_t offset);
  // NOT_FOUND when the group has not committed for the queue.
  absl::StatusOr<ConsumerOffset> FetchOffset(const std::string& group, const std::string& topic,
                                             int32_t queue_id) const;
  // The offsets of `group`; of every group (configured or not, e.g. the
  // per-member names of broadcasting groups) when `group` is empty.
  absl::StatusOr<std::vector<ConsumerOffset>> ListOffsets(const std::string& group) const;
  absl::Status DeleteOffsets(const std::string& group);

  // --- Configs (synced to disk before returning).
  absl::Status PutTopic(const TopicConfig& topic);
  absl::StatusOr<TopicConfig> GetTopic(const std::string& name) const;
  // Where the current incarnation of `name` begins in the commit log: its
  // tombstone's deleted_below, 0 when it was never deleted (also when the
  // store does not know the name).
  int64_t IncarnationStart(const std::string& name) const;
  std::vector<TopicConfig> ListTopics() const;
  // Deletes the topic at once: its config, queues (consume-queue, time and
  // key entries) and every group's offsets for it, and leaves a tombstone
  // (docs/design/store-format.md, "Deleted topics") so that its messages are
  // never indexed again, also when a restart replays the log. A topic
  // created again under the name starts empty, its queues at the highest
  // queue offset the deleted one reached. The messages' bytes stay in the
  // commit log until retention deletes their segments.
  absl::Status DeleteTopic(const std::string& name);
  absl::Status PutGroup(const std::string& name, const std::string& config);
  absl::StatusOr<std::string> GetGroup(const std::string& name) const;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListGroups() const;
  absl::Status DeleteGroup(const std::string& name);

  // --- Typed records (docs/design/message-types.md; services/store/typed).
  // Pending timers due in [from_ms, due_ms], in (due, offset) order.
  absl::StatusOr<std::vector<DueEntry>> ScanDueTimers(int64_t from_ms, int64_t due_ms,
                                                      int limit) const;
  // Pending `kind` (TIMER or HALF) entries due in [from_ms, due_ms], in
  // (due, offset) order from (from_ms, from_offset) on (ListPending).
  absl::StatusOr<std::vector<DueEntry>> ScanPending(RecordKind kind, int64_t from_ms,
                                                    int64_t from_offset, int64_t due_ms,
                                                    int limit) const;
  // The earliest due time of a pending timer; nullopt when none.
  absl::StatusOr<std::optional<int64_t>> NextTimerDue() const;
  // Pending entries of `kind` (TIMER or HALF) due in [from_ms, due_ms].
  absl::StatusOr<std::vector<DueEntry>> ScanDue(RecordKind kind, int64_t from_ms, int64_t due_ms,
                                                int limit) const;
  // Pending entries of `kind` at offsets > `after` (0: all), offset order.
  absl::StatusOr<std::vector<DueEntry>> ScanPending(RecordKind kind, int64_t after,
                                                    int limit) const;
  // The pending entry at `commit_offset`; nullopt when not pending. The
  // dispatched state: callers wait for dispatch first (WaitForDispatch).
  absl::StatusOr<std::optional<DueEntry>> GetPending(int64_t commit_offset) const;
  // {resolver kind, resolver offset} of a resolved subject; nullopt if none.
  absl::StatusOr<std::optional<std::pair<RecordKind, int64_t>>> GetResolved(int64_t subject) const;
  // Pending entries of every kind at offsets in [from, end), offset order.
  absl::StatusOr<std::vector<DueEntry>> ScanPendingBefore(int64_t from, int64_t end,
                                                          int limit) const;
  // True while `commit_offset` is a pending TIMER or HALF.
  absl::StatusOr<bool> IsPending(int64_t commit_offset) const;
  PendingCounts pending_counts() const;
  // True while following a master (SetFollowing): nothing may be appended.
  bool following() const;

  // --- Maintenance.
  // Retention passes hand pending timers below their cut to `carrier` (the
  // timer service) while this store does not follow a master; without one
  // they pin their segments. Null unsets it; waits for a pass in progress,
  // so the old carrier may be destroyed when this returns.
  void SetTimerCarrier(TimerCarrier* carrier);
  absl::StatusOr<RetentionReport> RunRetention();
  StoreStats Stats() const;

 private:
  explicit Store(StoreOptions options);
  absl::Status Open();
  // INVALID_ARGUMENT / NOT_FOUND unless `topic` exists and has `queue_id`.
  absl::Status CheckQueue(absl::string_view field, const std::string& topic,
                          int32_t queue_id) const;
  absl::Status ValidateRecord(size_t i, const RecordInput& record) const;
  // Appends are acknowledged once the commit log holds them, before the
  // dispatcher indexes them. Every reader of the indexes calls this first:
  // it waits until the indexes cover what is committed now, so a read that
  // follows an acknowledgement sees the record (read-your-write). Free when
  // nothing is pending; bounded by kIndexWait; gives up at once while
  // indexing fails (the read then answers from the indexes as they are).
  void AwaitIndexed() const;
  // Reads the records a consume-queue entry (or index position) points at.
  absl::StatusOr<StoredRecord> ReadIndexed(int64_t commit_offset, uint32_t size) const;

  void MetaChanged() { meta_version_.fetch_add(1); }

  const StoreOptions options_;
  std::atomic<int64_t> meta_version_{0};
  FileSystem* fs_;
  const Clock* clock_;
  std::unique_ptr<IndexStore> index_;
  std::unique_ptr<CommitLog> log_;
  std::unique_ptr<Dispatcher> dispatcher_;
  RecoveryReport recovery_;
  std::unique_ptr<PeriodicTask> flush_task_;
  std::unique_ptr<PeriodicTask> retention_task_;

  // Appends hold it shared from validation to the end of the write;
  // DeleteTopic holds it exclusively, so every record of a deleted topic
  // lies below its tombstone.
  mutable absl::Mutex append_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool following_ ABSL_GUARDED_BY(append_mu_) = false;
  std::string following_reason_ ABSL_GUARDED_BY(append_mu_);
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, TopicConfig> topics_ ABSL_GUARDED_BY(mu_);
  int64_t retention_deleted_segments_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_retention_error_ ABSL_GUARDED_BY(mu_);
  int64_t timers_carried_ ABSL_GUARDED_BY(mu_) = 0;
  int retention_pinned_segments_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex retention_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one retention pass at a time
  TimerCarrier* timer_carrier_ ABSL_GUARDED_BY(retention_mu_) = nullptr;
};

}  // namespace apogee::store
