// The store's RocksDB: the indexes derived from the commit log (consume
// queues, message ids, keys, time) plus the facts that live only here
// (consumer offsets, configs). Column families and key layouts are in
// docs/design/store-format.md; keys.h encodes them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "services/store/commitlog/record.h"

namespace rocksdb {
struct ColumnFamilyOptions;
class Cache;
class ColumnFamilyHandle;
class CompactionFilter;
class DB;
class Env;
class TableFactory;
class WriteBatch;
class WriteBufferManager;
}  // namespace rocksdb

namespace apogee::store {

struct IndexOptions {
  std::string path;  // the RocksDB directory
  // fsync RocksDB's WAL on every dispatch batch and offset commit. Off by
  // default: the indexes can be rebuilt from the commit log, and a lost
  // offset commit means redelivery, not loss. Config writes always sync.
  bool sync_writes = false;
  // One memory budget for RocksDB, in bytes: the capacity of the LRU block
  // cache, to which a WriteBufferManager shared by every column family
  // charges the memtables. Memtables may take up to half of it (then the
  // largest is flushed); blocks, index and filter blocks get the rest.
  int64_t memory_budget = int64_t{64} << 20;
  // Each column family's memtable size (RocksDB's write_buffer_size); at
  // most half the budget.
  int64_t write_buffer_size = int64_t{4} << 20;
  // Table files RocksDB keeps open (its max_open_files; -1: all). The index
  // holds about the retention period's messages, in files of 1-64 MiB, so
  // with "all" its open fds grow with retention and rate (a soak at 20k
  // msg/s: 55 to 397 in 17 minutes). Past the cap, cold files (old offsets,
  // rarely read) are closed and reopened on demand.
  int max_open_files = 256;
  // RocksDB's environment (file system, threads); null: the default. Tests
  // pass one that routes writes through a FaultInjectingFileSystem.
  rocksdb::Env* env = nullptr;
};

// Where RocksDB's memory goes, in bytes.
struct IndexMemory {
  int64_t budget = 0;              // IndexOptions::memory_budget
  int64_t memtables = 0;           // all memtables: active and awaiting flush
  int64_t block_cache = 0;         // the cache's usage: blocks plus the memtables charged to it
  int64_t block_cache_pinned = 0;  // entries in use (not evictable)
  int64_t table_readers = 0;       // SST readers outside the cache
};

struct ConsumeQueueEntry {
  int64_t queue_offset = 0;
  int64_t commit_offset = 0;
  uint32_t size = 0;
  uint64_t tags_hash = 0;
  int64_t store_timestamp_ms = 0;
};

// The queue offsets [min_offset, next_offset) a queue holds.
struct QueueRange {
  int64_t min_offset = 0;
  int64_t next_offset = 0;
};

// A candidate record position from a secondary index (message id, key).
// Callers verify the record (it may have been rewritten after a crash).
struct IndexPosition {
  int64_t commit_offset = 0;
  uint32_t size = 0;
};

// One consumer offset: group, queue, offset and commit time (ms since the
// epoch; 0 = unknown, for values written before commit times were kept).
struct GroupOffset {
  std::string group;
  TopicQueue tq;
  int64_t offset = 0;
  int64_t commit_time_ms = 0;
};

// What is left of a deleted topic: its records below `deleted_below` (a
// commit-log offset) belong to the deleted incarnation and are never
// indexed or served again; every queue of a later incarnation starts at
// queue offset `queue_base` (the highest next offset the deleted one
// reached), so an offset a consumer kept from before never points into the
// new messages.
struct TopicTombstone {
  int64_t deleted_below = 0;
  int64_t queue_base = 0;
};

// A pending TIMER, HALF or DISCARDED record (its `pending` entry).
struct DueEntry {
  int64_t at_ms = 0;
  int64_t commit_offset = 0;
  uint32_t size = 0;
  RecordKind kind = RecordKind::kNormal;
  uint32_t count = 0;  // HALF: checks done so far (after CHECKED records)
};

// Pending typed records (message-types.md §1.2), counted in memory.
struct PendingCounts {
  int64_t timers = 0;
  int64_t transactions = 0;         // HALF records (DISCARDED ones are not counted)
  int64_t duplicate_resolvers = 0;  // since open; must stay 0
};

// Thread-safety: thread-safe. Index writers (ApplyDispatch, TrimBefore,
// TruncateFrom, DropTopic) are serialized by an internal mutex; readers run
// concurrently with them. ResetIndexes must not run concurrently with
// anything else (recovery only).
class IndexStore {
 public:
  static absl::StatusOr<std::unique_ptr<IndexStore>> Open(IndexOptions options);
  ~IndexStore();
  IndexStore(const IndexStore&) = delete;
  IndexStore& operator=(const IndexStore&) = delete;

  // True when Open created the database (nothing was indexed before).
  bool created() const { return created_; }

  // --- Dispatch. Everything below dispatched_offset() is indexed.
  int64_t dispatched_offset() const;
  // Indexes `records` (consecutive, starting at dispatched_offset()) and
  // moves the checkpoint to `end_offset`, in one atomic RocksDB batch. Each
  // record must carry the next queue offset of its queue. Records of a
  // deleted incarnation (see IsDeleted) are passed over.
  absl::Status ApplyDispatch(absl::Span<const RecordView> records, int64_t end_offset);

  // --- Queries.
  // A queue of a deleted topic that has no records since is empty at its
  // tombstone's queue base.
  std::optional<QueueRange> GetQueueRange(const TopicQueue& tq) const;
  std::vector<std::pair<TopicQueue, QueueRange>> ListQueues() const;
  // Up to `max_entries` consume-queue entries from `from` on; OUT_OF_RANGE
  // when `from` was trimmed by retention.
  absl::StatusOr<std::vector<ConsumeQueueEntry>> ReadConsumeQueue(const TopicQueue& tq,
                                                                  int64_t from,
                                                                  int max_entries) const;
  // The first queue offset whose store time is >= `timestamp_ms`; the next
  // offset when every record is older. NOT_FOUND for a queue never written.
  absl::StatusOr<int64_t> LookupOffsetByTime(const TopicQueue& tq, int64_t timestamp_ms) const;
  // Candidate positions at or above the log's minimum, oldest first.
  absl::StatusOr<std::vector<IndexPosition>> LookupMessageId(absl::string_view message_id,
                                                             int max_results) const;
  absl::StatusOr<std::vector<IndexPosition>> LookupKey(absl::string_view topic,
                                                       absl::string_view key,
                                                       int max_results) const;

  // --- Typed records (message-types.md §1.2).
  // Pending entries of `kind` (TIMER or HALF) due in [from_ms, due_ms], in
  // (due, offset) order, at most `limit`, starting at (from_ms,
  // from_offset). A caller that fired everything below `from_ms` seeks past
  // the deletion tombstones it left there.
  absl::StatusOr<std::vector<DueEntry>> ScanDue(RecordKind kind, int64_t from_ms, int64_t due_ms,
                                                int limit, int64_t from_offset = 0) const;
  // The earliest due time of a pending `kind`; nullopt when none.
  absl::StatusOr<std::optional<int64_t>> NextDue(RecordKind kind) const;
  // The pending entry of the record at `commit_offset`; nullopt when it is
  // not pending (never was, or resolved).
  absl::StatusOr<std::optional<DueEntry>> GetPending(int64_t commit_offset) const;
  // Pending entries of `kind` at commit offsets > `after` (all when `after`
  // is 0), in offset order, at most `limit`.
  absl::StatusOr<std::vector<DueEntry>> ScanPending(RecordKind kind, int64_t after,
                                                    int limit) const;
  // {resolver kind, resolver offset} of a resolved subject; nullopt if none.
  absl::StatusOr<std::optional<std::pair<RecordKind, int64_t>>> GetResolved(int64_t subject) const;
  PendingCounts pending_counts() const;
  // Pending entries of every kind (TIMER, HALF, DISCARDED) at commit
  // offsets in [from, end), in offset order, at most `limit` (retention and
  // the timer carry, message-types.md §2.4).
  absl::StatusOr<std::vector<DueEntry>> ScanPendingBefore(int64_t from, int64_t end,
                                                          int limit) const;

  // --- Keeping the indexes consistent with the log.
  // Recovery, when the log ended up shorter than the checkpoint: drops
  // consume-queue and time entries at or after `log_end` and moves the
  // checkpoint back there. Message-id and key entries beyond it are left;
  // lookups verify the record they point to.
  absl::Status TruncateFrom(int64_t log_end);
  // Retention: drops consume-queue and time entries of records below
  // `log_min` and stops serving (and compacts away) message-id and key
  // entries below it; drops `resolved`, `undo` and (DISCARDED) `pending`
  // entries below it.
  absl::Status TrimBefore(int64_t log_min);
  // Rebuild: drops every derived index; the checkpoint becomes `start`.
  // Offsets and configs are kept.
  absl::Status ResetIndexes(int64_t start);

  // --- Topic deletion.
  // In one synced batch: deletes the topic's config (`config_kind`, name),
  // its consume-queue, time and key entries, its queues' next offsets and
  // every group's offsets for it, and records `tombstone` (replacing an
  // older one). Message-id entries are keyed by id alone; lookups drop the
  // ones IsDeleted names, and compaction removes them once retention
  // passes them.
  absl::Status DropTopic(absl::string_view topic, const TopicTombstone& tombstone,
                         uint8_t config_kind);
  std::optional<TopicTombstone> GetTombstone(absl::string_view topic) const;
  std::vector<std::pair<std::string, TopicTombstone>> ListTombstones() const;
  // True when the record of `topic` at `commit_offset` belongs to a deleted
  // incarnation of the topic.
  bool IsDeleted(absl::string_view topic, int64_t commit_offset) const;

  // --- Consumer offsets per (group, topic, queue), each with its commit
  // time (ms since the epoch; 0 when written before times were kept).
  absl::Status CommitOffset(absl::string_view group, const TopicQueue& tq, int64_t offset,
                            int64_t commit_time_ms);
  // NOT_FOUND when the group never committed for this queue.
  absl::StatusOr<GroupOffset> FetchOffset(absl::string_view group, const TopicQueue& tq) const;
  // The offsets of `group`; every group's when `group` is empty.
  absl::StatusOr<std::vector<GroupOffset>> ListOffsets(absl::string_view group) const;
  absl::Status DeleteOffsets(absl::string_view group);

  // --- Configs: opaque values by (kind, name).
  absl::Status PutConfig(uint8_t kind, absl::string_view name, absl::string_view value);
  // NOT_FOUND when absent.
  absl::StatusOr<std::string> GetConfig(uint8_t kind, absl::string_view name) const;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListConfigs(uint8_t kind) const;
  absl::Status DeleteConfig(uint8_t kind, absl::string_view name);

  // fsyncs RocksDB's WAL (the flush thread calls this in async mode).
  // Fails, without touching the WAL, while RocksDB is stopped by a
  // background error (a WAL write that hit a full disk, until RocksDB
  // recovers once space is back).
  absl::Status SyncWal();

  IndexMemory Memory() const;
  // Live table files of the column family named `family` (e.g. "msg_id").
  int TableFiles(absl::string_view family) const;

 private:
  // Pending entries in [from, end) (of `kind` only, when given), offset order.
  absl::StatusOr<std::vector<DueEntry>> ScanPendingRange(int64_t from, int64_t end,
                                                         std::optional<RecordKind> kind,
                                                         int limit) const;
  struct QueueState {
    QueueRange range;
    int64_t last_second = -1;  // store second of the last time-index entry
  };
  enum Family {
    kDefault,
    kConsumeQueue,
    kMessageId,
    kKey,
    kTime,
    kOffsets,
    kConfig,
    kPending,
    kTimerDue,
    kTxnCheck,
    kResolved,
    kUndo,
    kFamilies
  };
  class TypedBatch;
  absl::Status CountPending();

  explicit IndexStore(IndexOptions options);
  rocksdb::ColumnFamilyOptions FamilyOptions(Family f) const;
  absl::Status OpenDb();
  absl::Status LoadState();
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return handles_[f]; }
  absl::StatusOr<std::optional<ConsumeQueueEntry>> GetEntry(const std::string& prefix,
                                                            int64_t queue_offset) const;
  // Into `batch`: the consume-queue runs of queue `prefix` lose their
  // entries from `queue_offset` on (CutRunsFrom), or, for the run holding
  // it, the entries before it, rewritten under its key (CutRunsBefore; the
  // caller deletes the older keys).
  // The first queue offset of `tq` (in `range`) whose record is at or above
  // `commit_offset` in the log (range.next_offset when none is), and its
  // entry into `*entry` when there is one and `entry` is not null.
  absl::StatusOr<int64_t> FirstAtOrAbove(const TopicQueue& tq, const QueueRange& range,
                                         int64_t commit_offset,
                                         std::optional<ConsumeQueueEntry>* entry) const;
  absl::Status CutRunsFrom(const std::string& prefix, int64_t queue_offset,
                           rocksdb::WriteBatch* batch) const;
  absl::Status CutRunsBefore(const std::string& prefix, int64_t queue_offset,
                             rocksdb::WriteBatch* batch) const;
  // Appends to `out` what `decode` finds in each entry of `family` under
  // `prefix` whose key ends with a commit offset at or above the floor, in
  // key order, until `out` holds `max_results` (keys.h: kMessageId, kKey).
  using EntryDecoder = absl::FunctionRef<absl::Status(
      absl::string_view key, absl::string_view value, int64_t floor, std::vector<IndexPosition>*)>;
  absl::Status ScanPositions(Family family, const std::string& prefix, int max_results,
                             EntryDecoder decode, std::vector<IndexPosition>* out) const;

  const IndexOptions options_;
  bool created_ = false;
  class FloorFilter;
  std::unique_ptr<FloorFilter> floor_filter_;  // outlives db_
  // Compacts the key range of family `f`'s table files whose entries all
  // lie below `floor` (their highest commit offset is a table property), so
  // that the floor filter drops them. Message ids rise with time: flushed
  // files do not overlap, RocksDB moves them down the levels without a
  // compaction, and without this the filter never runs on them (a soak
  // kept every message-id file of an hour).
  absl::Status CompactBelow(Family f, int64_t floor);
  // For the same reason the files of family `f` stay as small as its
  // flushes (~1 MiB of message ids from a 4 MiB memtable): hundreds for a
  // few minutes of retention at 20k msg/s, each an fd and a table reader.
  // Merges the first run of at least 8 neighbouring small files of a level
  // into one; called at each trim, so the count levels off at a few large
  // files plus the newest small ones. ABORTED when the merge lost a race
  // with RocksDB's own compactions (retried at the next trim).
  absl::Status MergeSmallFiles(Family f);
  // TrimBefore's index writes, under write_mu_.
  absl::Status TrimEntriesBefore(int64_t log_min);
  // The memory budget (see IndexOptions); outlive db_.
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
  std::shared_ptr<rocksdb::TableFactory> table_factory_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serializes index writers
  mutable absl::Mutex mu_;
  absl::flat_hash_map<TopicQueue, QueueState> queues_ ABSL_GUARDED_BY(mu_);
  int64_t dispatched_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, TopicTombstone> tombstones_ ABSL_GUARDED_BY(mu_);
  PendingCounts pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::store
