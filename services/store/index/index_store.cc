#include "services/store/index/index_store.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/table_properties_collectors.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "services/common/status/status_macros.h"
#include "services/store/index/keys.h"
#include "services/store/io/coding.h"

namespace apogee::store {
namespace {

// Read options that end an iterator before `*upper` (which must outlive it).
rocksdb::ReadOptions Below(const rocksdb::Slice* upper) {
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = upper;
  return options;
}

// 3: message-id runs (one entry per bucket of ids and dispatch batch).
// 2: consume-queue runs (one entry per queue and dispatch batch).
// Versions 1 and 2 wrote an entry per message in the families that now
// hold runs; a consume-queue entry reads as a run of one and message-id
// lookups also read single entries: such an index is taken over as it is
// (and marked 3, so that older builds refuse it).
constexpr int64_t kFormatVersion = 3;
constexpr int64_t kOldestFormatVersion = 1;
// Values per consume-queue run at most (14 KiB): a read of one offset loads
// its whole run.
constexpr size_t kMaxRunValues = 512;
// Entries per message-id run at most (~3.8 KiB).
constexpr int kMaxIdRunEntries = 256;
// "default" is rocksdb::kDefaultColumnFamilyName (a global string we cannot
// read during static initialization).
const char* const kFamilyNames[] = {"default",   "consume_queue", "msg_id",   "key",
                                    "time",      "offsets",       "config",   "pending",
                                    "timer_due", "txn_check",     "resolved", "undo"};

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(context, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (s.IsIOError()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

std::string EncodeSize(uint32_t size) {
  std::string out;
  coding::PutFixed32LE(&out, size);
  return out;
}

std::string TombstoneKey(absl::string_view topic) {
  return std::string(1, keys::kTombstonePrefix) + keys::TopicPrefix(topic);
}

std::string EncodeTombstone(const TopicTombstone& t) {
  return keys::EncodeFixed64BE(t.deleted_below) + keys::EncodeFixed64BE(t.queue_base);
}

std::optional<TopicTombstone> DecodeTombstone(absl::string_view in) {
  if (in.size() != 16) return std::nullopt;
  return TopicTombstone{*keys::DecodeFixed64BE(in.substr(0, 8)),
                        *keys::DecodeFixed64BE(in.substr(8))};
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

// Gathers the msg_id entries of consecutive records whose ids share a
// bucket into one run (keys.h): a producer's batch is contiguous in the
// log, so its ids come together.
class MessageIdRuns {
 public:
  MessageIdRuns(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* family)
      : batch_(batch), family_(family) {}

  void Add(absl::string_view message_id, int64_t commit_offset, uint32_t size) {
    const absl::string_view bucket = keys::MessageIdBucket(message_id);
    if (entries_ == kMaxIdRunEntries || (entries_ > 0 && bucket != bucket_)) Flush();
    if (entries_ == 0) bucket_.assign(bucket.data(), bucket.size());
    keys::PutMessageIdRunEntry(&run_, keys::MessageIdSuffix(message_id), commit_offset, size);
    last_offset_ = commit_offset;
    ++entries_;
  }

  void Flush() {
    if (entries_ == 0) return;
    batch_->Put(family_, keys::WithCommitOffset(keys::MessageIdPrefix(bucket_), last_offset_),
                run_);
    run_.clear();
    entries_ = 0;
  }

 private:
  rocksdb::WriteBatch* batch_;
  rocksdb::ColumnFamilyHandle* family_;
  std::string bucket_;
  std::string run_;
  int64_t last_offset_ = 0;
  int entries_ = 0;
};

// One queue's consume-queue runs in key order, from the run that holds
// `queue_offset` (or the first after it when none does).
class RunCursor {
 public:
  RunCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, const std::string& prefix,
            int64_t queue_offset)
      : prefix_size_(prefix.size()),
        lower_(prefix),
        upper_(keys::PrefixSuccessor(prefix)),
        lower_slice_(lower_),
        upper_slice_(upper_) {
    rocksdb::ReadOptions options;
    options.iterate_lower_bound = &lower_slice_;
    options.iterate_upper_bound = &upper_slice_;
    it_.reset(db->NewIterator(options, family));
    const std::string key = keys::ConsumeQueueKey(prefix, queue_offset);
    it_->SeekForPrev(key);
    if (!it_->Valid() && it_->status().ok()) it_->Seek(key);
    Load();
  }

  // False at the end or on an error (then status() says which).
  bool Valid() const { return valid_; }
  absl::Status status() const { return status_; }
  void Next() {
    it_->Next();
    Load();
  }
  rocksdb::Slice key() const { return it_->key(); }
  absl::string_view run() const { return ToView(it_->value()); }
  int64_t first() const { return first_; }
  int64_t end() const { return first_ + length_; }
  // The value of `queue_offset`, in [first(), end()).
  keys::ConsumeQueueValue value(int64_t queue_offset) const {
    return keys::ConsumeQueueRunValue(run(), queue_offset - first_);
  }

 private:
  void Load() {
    valid_ = false;
    if (!it_->Valid()) {
      status_ = FromRocks(it_->status(), "read consume queue");
      return;
    }
    const std::optional<int64_t> length = keys::ConsumeQueueRunLength(run());
    if (it_->key().size() != prefix_size_ + 8 || !length.has_value()) {
      status_ = absl::DataLossError("malformed consume queue run");
      return;
    }
    first_ = static_cast<int64_t>(coding::GetFixed64BE(it_->key().data() + prefix_size_));
    length_ = *length;
    valid_ = true;
  }

  const size_t prefix_size_;
  const std::string lower_;
  const std::string upper_;
  const rocksdb::Slice lower_slice_;
  const rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
  bool valid_ = false;
  absl::Status status_;
  int64_t first_ = 0;
  int64_t length_ = 0;
};

// Groups consume_queue keys ([u8 length][topic][u32 queue][u64 offset]) by
// queue. Each queue's keys arrive in increasing order, so RocksDB inserts a
// key next to the previous one of its queue instead of searching the
// memtable from the top (with many queues interleaved that search was a
// third of the store's CPU). The domain is exactly the consume_queue key
// length on purpose: RocksDB 7.8 shares the hints between point keys and
// range tombstones and corrupts its skip list if a range deletion starts at
// a key in the domain, so range deletions start at the bare queue prefix.
class QueueOfConsumeKey final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "apogee.QueueOfConsumeKey"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 8);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return !key.empty() && key.size() == size_t{1} + static_cast<unsigned char>(key[0]) + 4 + 8;
  }
};

// RocksDB's own log, warnings and errors only, goes to the store's stderr
// with the rest of its log, not to a LOG file in the index directory: once
// a LOG append failed on a full disk, RocksDB 7.8 (Debian's, built with
// assertions) aborted on the next log line (WritableFileWriter's
// `sync_without_flush_called_`), and every shutdown logs (issue 12).
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    for (char* c = line; *c != '\0'; ++c) {
      if (*c == '"' || *c == '\n') *c = '\'';
    }
    std::fprintf(stderr, "event=rocksdb_log message=\"%s\"\n", line);
  }
  void LogHeader(const char*, va_list) override {}  // the options dump at open
};

}  // namespace

// Drops msg_id and key entries that point below the log's minimum offset
// during compaction. Thread-safe (RocksDB calls it from its own threads).
class IndexStore::FloorFilter final : public rocksdb::CompactionFilter {
 public:
  bool Filter(int, const rocksdb::Slice& key, const rocksdb::Slice&, std::string*,
              bool*) const override {
    return keys::TrailingCommitOffset(ToView(key)) < floor.load(std::memory_order_relaxed);
  }
  const char* Name() const override { return "apogee.FloorFilter"; }
  std::atomic<int64_t> floor{0};
};

// Highest commit offset among a table file's keys (message-id and key
// entries end with it), stored as a user property for CompactBelow.
constexpr char kMaxOffsetProperty[] = "apogee.max_commit_offset";

class MaxOffsetCollector final : public rocksdb::TablePropertiesCollector {
 public:
  rocksdb::Status AddUserKey(const rocksdb::Slice& key, const rocksdb::Slice&, rocksdb::EntryType,
                             rocksdb::SequenceNumber, uint64_t) override {
    max_ = std::max(max_, keys::TrailingCommitOffset(ToView(key)));
    return rocksdb::Status::OK();
  }
  rocksdb::Status Finish(rocksdb::UserCollectedProperties* properties) override {
    (*properties)[kMaxOffsetProperty] = keys::EncodeFixed64BE(max_);
    return rocksdb::Status::OK();
  }
  rocksdb::UserCollectedProperties GetReadableProperties() const override { return {}; }
  const char* Name() const override { return "apogee.MaxOffsetCollector"; }

 private:
  int64_t max_ = -1;
};

class MaxOffsetCollectorFactory final : public rocksdb::TablePropertiesCollectorFactory {
 public:
  rocksdb::TablePropertiesCollector* CreateTablePropertiesCollector(
      rocksdb::TablePropertiesCollectorFactory::Context) override {
    return new MaxOffsetCollector();
  }
  const char* Name() const override { return "apogee.MaxOffsetCollectorFactory"; }
};

// Applies the dispatch rules of typed records (message-types.md §1.2) to one
// WriteBatch. Reads see the batch's own earlier changes (`overlay_`), since a
// replayed chunk may hold a TIMER and its FIRED copy.
class IndexStore::TypedBatch {
 public:
  TypedBatch(const IndexStore* index, rocksdb::WriteBatch* batch) : index_(index), batch_(batch) {}

  absl::Status Apply(const RecordView& r) {
    const RecordKind kind = r.kind();
    const int64_t o = r.commit_offset();
    switch (kind) {
      case RecordKind::kNormal:
        return absl::OkStatus();
      case RecordKind::kTimer:
        if (r.count() > 0) return Carry(r);  // a moved copy (its subject may be 0)
        [[fallthrough]];
      case RecordKind::kHalf:
        Put(o, {static_cast<uint8_t>(kind), r.at_ms(), r.count(), r.length()});
        return absl::OkStatus();
      case RecordKind::kDiscarded:
        Put(o, {static_cast<uint8_t>(kind), 0, r.count(), r.length()});
        return Resolve(r).status();
      case RecordKind::kChecked: {
        APOGEE_ASSIGN_OR_RETURN(std::optional<keys::PendingValue> before, Get(r.subject()));
        if (!before.has_value()) {
          ++counts_.duplicate_resolvers;
          return absl::OkStatus();
        }
        batch_->Put(index_->cf(kUndo), keys::EncodeFixed64BE(o),
                    keys::EncodeUndoValue({r.subject(), before}));
        keys::PendingValue after = *before;
        after.at_ms = r.at_ms();
        after.count = r.count();
        Delete(r.subject(), *before);
        Put(r.subject(), after);
        return absl::OkStatus();
      }
      default:  // FIRED, COMMITTED, ROLLED_BACK, DROPPED
        return Resolve(r).status();
    }
  }

  // Undoes the resolver at `resolver` (TruncateFrom), given its undo entry.
  absl::Status Undo(int64_t resolver, const keys::UndoValue& undo) {
    APOGEE_ASSIGN_OR_RETURN(std::optional<keys::PendingValue> now, Get(undo.subject));
    if (now.has_value()) Delete(undo.subject, *now);
    if (undo.before.has_value()) {
      Put(undo.subject, *undo.before);
      if (!now.has_value())
        batch_->Delete(index_->cf(kResolved), keys::EncodeFixed64BE(undo.subject));
    }
    batch_->Delete(index_->cf(kUndo), keys::EncodeFixed64BE(resolver));
    return absl::OkStatus();
  }

  void Delete(int64_t o, const keys::PendingValue& v) {
    batch_->Delete(index_->cf(kPending), keys::EncodeFixed64BE(o));
    if (std::optional<Family> f = DueFamily(v.kind)) {
      batch_->Delete(index_->cf(*f), keys::DueKey(v.at_ms, o));
    }
    overlay_[o] = std::nullopt;
    Count(v.kind, -1);
  }

  absl::StatusOr<std::optional<keys::PendingValue>> Get(int64_t o) const {
    auto it = overlay_.find(o);
    if (it != overlay_.end()) return it->second;
    std::string value;
    const rocksdb::Status s = index_->db_->Get(rocksdb::ReadOptions(), index_->cf(kPending),
                                               keys::EncodeFixed64BE(o), &value);
    if (s.IsNotFound()) return std::nullopt;
    APOGEE_RETURN_IF_ERROR(FromRocks(s, "read pending entry"));
    std::optional<keys::PendingValue> v = keys::DecodePendingValue(value);
    if (!v.has_value()) {
      return absl::DataLossError(absl::StrCat("malformed pending entry at offset ", o));
    }
    return v;
  }

  const PendingCounts& delta() const { return counts_; }

 private:
  static std::optional<Family> DueFamily(uint8_t kind) {
    if (kind == static_cast<uint8_t>(RecordKind::kTimer)) return kTimerDue;
    if (kind == static_cast<uint8_t>(RecordKind::kHalf)) return kTxnCheck;
    return std::nullopt;
  }

  void Count(uint8_t kind, int delta) {
    if (kind == static_cast<uint8_t>(RecordKind::kTimer)) counts_.timers += delta;
    if (kind == static_cast<uint8_t>(RecordKind::kHalf)) counts_.transactions += delta;
  }

  void Put(int64_t o, const keys::PendingValue& v) {
    batch_->Put(index_->cf(kPending), keys::EncodeFixed64BE(o), keys::EncodePendingValue(v));
    if (std::optional<Family> f = DueFamily(v.kind)) {
      batch_->Put(index_->cf(*f), keys::DueKey(v.at_ms, o), "");
    }
    overlay_[o] = v;
    Count(v.kind, +1);
  }

  // A moved TIMER (retention carry, §2.4) takes over its subject's pending
  // entry in this one batch, so a timer has one pending entry in any prefix
  // of the log. A copy whose subject is no longer pending (fired, dropped or
  // carried already) is a duplicate and does not become a timer of its own.
  absl::Status Carry(const RecordView& r) {
    APOGEE_ASSIGN_OR_RETURN(bool resolved, Resolve(r));
    if (resolved) {
      Put(r.commit_offset(),
          {static_cast<uint8_t>(RecordKind::kTimer), r.at_ms(), r.count(), r.length()});
    }
    return absl::OkStatus();
  }

  // The resolver `r` ends its subject's pending state, once. False (and
  // counted) when the subject was not pending.
  absl::StatusOr<bool> Resolve(const RecordView& r) {
    APOGEE_ASSIGN_OR_RETURN(std::optional<keys::PendingValue> before, Get(r.subject()));
    if (!before.has_value()) {  // a duplicate resolver: the log is the truth, nothing changes
      ++counts_.duplicate_resolvers;
      return false;
    }
    batch_->Put(index_->cf(kUndo), keys::EncodeFixed64BE(r.commit_offset()),
                keys::EncodeUndoValue({r.subject(), before}));
    Delete(r.subject(), *before);
    std::string resolved(1, static_cast<char>(r.kind()));
    resolved += keys::EncodeFixed64BE(r.commit_offset());
    batch_->Put(index_->cf(kResolved), keys::EncodeFixed64BE(r.subject()), resolved);
    return true;
  }

  const IndexStore* const index_;
  rocksdb::WriteBatch* const batch_;
  std::map<int64_t, std::optional<keys::PendingValue>> overlay_;
  PendingCounts counts_;
};

IndexStore::IndexStore(IndexOptions options)
    : options_(std::move(options)), floor_filter_(std::make_unique<FloorFilter>()) {
  cache_ = rocksdb::NewLRUCache(static_cast<size_t>(options_.memory_budget));
  // Memtables are charged to the cache, so blocks are evicted to make room
  // for them and the two together stay within the budget.
  write_buffers_ = std::make_shared<rocksdb::WriteBufferManager>(
      static_cast<size_t>(options_.memory_budget / 2), cache_);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache_;
  table.cache_index_and_filter_blocks = true;  // charged to the budget too
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table_factory_.reset(rocksdb::NewBlockBasedTableFactory(table));
}

IndexStore::~IndexStore() {
  for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<IndexStore>> IndexStore::Open(IndexOptions options) {
  constexpr int64_t kMinBudget = int64_t{1} << 20;
  constexpr int64_t kMinWriteBuffer = int64_t{64} << 10;
  if (options.memory_budget < kMinBudget) {
    return absl::InvalidArgumentError(absl::StrCat("index memory budget ", options.memory_budget,
                                                   " bytes is below the minimum ", kMinBudget));
  }
  if (options.write_buffer_size < kMinWriteBuffer ||
      options.write_buffer_size > options.memory_budget / 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("index write buffer size ", options.write_buffer_size,
                     " bytes is out of range [", kMinWriteBuffer, ", ", options.memory_budget / 2,
                     "] (half the memory budget of ", options.memory_budget, ")"));
  }
  if (options.max_open_files != -1 && options.max_open_files < 16) {
    return absl::InvalidArgumentError(absl::StrCat("index max open files ", options.max_open_files,
                                                   " is below the minimum 16 (or -1: no limit)"));
  }
  std::unique_ptr<IndexStore> index(new IndexStore(std::move(options)));
  APOGEE_RETURN_IF_ERROR(index->OpenDb());
  APOGEE_RETURN_IF_ERROR(index->LoadState());
  APOGEE_RETURN_IF_ERROR(index->CountPending());
  return index;
}

rocksdb::ColumnFamilyOptions IndexStore::FamilyOptions(Family f) const {
  rocksdb::ColumnFamilyOptions options;
  options.write_buffer_size = static_cast<size_t>(options_.write_buffer_size);
  options.table_factory = table_factory_;
  if (f == kMessageId || f == kKey) {
    options.compaction_filter = floor_filter_.get();
    options.table_properties_collector_factories.push_back(
        std::make_shared<MaxOffsetCollectorFactory>());
  }
  if (f == kConsumeQueue) {
    options.memtable_insert_with_hint_prefix_extractor = std::make_shared<QueueOfConsumeKey>();
  }
  if (f == kTimerDue || f == kTxnCheck || f == kPending) {
    // Queue-like: deleted at the head as timers fire; tombstones trigger
    // compaction so that scans from the head stay cheap.
    options.table_properties_collector_factories.push_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(1024, 512));
  }
  return options;
}

absl::Status IndexStore::OpenDb() {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.info_log = std::make_shared<StderrLogger>();
  db_options.write_buffer_manager = write_buffers_;
  // A rarely written family (configs, offsets, timers) keeps every WAL
  // written since its last flush. RocksDB's default cap is 4x the sum of all
  // memtables (gigabytes here): a soak kept 70 WAL files after 8 minutes.
  // Past this size RocksDB flushes the families that pin the oldest WAL.
  db_options.max_total_wal_size = 64 << 20;
  db_options.max_open_files = options_.max_open_files;
  if (options_.env != nullptr) db_options.env = options_.env;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (int f = 0; f < kFamilies; ++f) {
    families.emplace_back(kFamilyNames[f], FamilyOptions(static_cast<Family>(f)));
  }
  // Created here, so that RocksDB does not log an error about it missing.
  APOGEE_RETURN_IF_ERROR(FromRocks(db_options.env->CreateDirIfMissing(options_.path),
                                   absl::StrCat("create index directory ", options_.path)));
  rocksdb::DB* db = nullptr;
  APOGEE_RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::Open(db_options, options_.path, families, &handles_, &db),
                absl::StrCat("open index RocksDB at ", options_.path)));
  db_.reset(db);
  return absl::OkStatus();
}

absl::Status IndexStore::LoadState() {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf(kDefault), ToSlice(keys::kFormatVersionKey), &value);
  std::optional<int64_t> version;
  if (s.IsNotFound()) {
    created_ = true;
  } else {
    APOGEE_RETURN_IF_ERROR(FromRocks(s, "read index format version"));
    version = keys::DecodeFixed64BE(value);
    if (!version.has_value() || *version < kOldestFormatVersion || *version > kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "index at ", options_.path, " has an unknown format version (this build reads ",
          kOldestFormatVersion, " to ", kFormatVersion, "); rebuild it from the commit log"));
    }
  }
  if (version != kFormatVersion) {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    APOGEE_RETURN_IF_ERROR(FromRocks(db_->Put(sync, cf(kDefault), ToSlice(keys::kFormatVersionKey),
                                              keys::EncodeFixed64BE(kFormatVersion)),
                                     "write index format version"));
  }
  int64_t dispatched = 0;
  const rocksdb::Status d =
      db_->Get(rocksdb::ReadOptions(), cf(kDefault), ToSlice(keys::kDispatchedKey), &value);
  if (d.ok()) {
    dispatched = keys::DecodeFixed64BE(value).value_or(0);
  } else if (!d.IsNotFound()) {
    return FromRocks(d, "read dispatch checkpoint");
  }

  absl::flat_hash_map<TopicQueue, QueueState> queues;
  const std::string meta_prefix(1, keys::kQueueNextPrefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kDefault)));
  for (it->Seek(meta_prefix); it->Valid() && it->key().starts_with(meta_prefix); it->Next()) {
    absl::string_view key = ToView(it->key());
    key.remove_prefix(1);
    const std::string prefix(key);
    std::optional<TopicQueue> tq = keys::ConsumeTopicQueue(&key);
    std::optional<int64_t> next = keys::DecodeFixed64BE(ToView(it->value()));
    if (!tq.has_value() || !key.empty() || !next.has_value()) {
      return absl::DataLossError("index meta holds a malformed queue entry");
    }
    QueueState state;
    state.range = {*next, *next};
    std::unique_ptr<rocksdb::Iterator> cq(
        db_->NewIterator(rocksdb::ReadOptions(), cf(kConsumeQueue)));
    cq->Seek(prefix);
    if (cq->Valid() && cq->key().starts_with(prefix) && cq->key().size() == prefix.size() + 8) {
      state.range.min_offset =
          static_cast<int64_t>(coding::GetFixed64BE(cq->key().data() + prefix.size()));
    }
    APOGEE_RETURN_IF_ERROR(FromRocks(cq->status(), "scan consume queue"));
    queues[*tq] = state;
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "scan index meta"));

  absl::flat_hash_map<std::string, TopicTombstone> tombstones;
  const std::string tombstone_prefix(1, keys::kTombstonePrefix);
  for (it->Seek(tombstone_prefix); it->Valid() && it->key().starts_with(tombstone_prefix);
       it->Next()) {
    absl::string_view key = ToView(it->key());
    key.remove_prefix(1);
    std::optional<std::string> topic = keys::ConsumeGroup(&key);  // same [u8 len][name] layout
    std::optional<TopicTombstone> tombstone = DecodeTombstone(ToView(it->value()));
    if (!topic.has_value() || !key.empty() || !tombstone.has_value()) {
      return absl::DataLossError("index meta holds a malformed topic tombstone");
    }
    tombstones[*topic] = *tombstone;
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "scan topic tombstones"));
  absl::MutexLock lock(&mu_);
  queues_ = std::move(queues);
  dispatched_ = dispatched;
  tombstones_ = std::move(tombstones);
  return absl::OkStatus();
}

int64_t IndexStore::dispatched_offset() const {
  absl::MutexLock lock(&mu_);
  return dispatched_;
}

absl::Status IndexStore::ApplyDispatch(absl::Span<const RecordView> records, int64_t end_offset) {
  absl::MutexLock write_lock(&write_mu_);
  // Each queue of the batch: its state and the run of its new entries.
  struct Touched {
    QueueState state;
    std::string prefix;
    int64_t run_first = 0;
    std::string run;
  };
  std::map<TopicQueue, Touched> touched;
  std::vector<bool> deleted(records.size(), false);  // of a deleted incarnation: not indexed
  int64_t expected_offset = 0;
  {
    absl::MutexLock lock(&mu_);
    expected_offset = dispatched_;
    for (size_t i = 0; i < records.size(); ++i) {
      const RecordView& r = records[i];
      if (!tombstones_.empty()) {
        auto t = tombstones_.find(r.topic());
        deleted[i] = t != tombstones_.end() && r.commit_offset() < t->second.deleted_below;
        if (deleted[i]) continue;
      }
      TopicQueue tq{std::string(r.topic()), r.queue_id()};
      if (touched.count(tq) > 0) continue;
      auto it = queues_.find(tq);
      Touched t;
      if (it != queues_.end()) {
        t.state = it->second;
      } else {
        t.state.range = {r.queue_offset(), r.queue_offset()};  // a queue new to the index
      }
      t.prefix = keys::TopicQueuePrefix(tq);
      t.run_first = t.state.range.next_offset;
      touched.emplace(std::move(tq), std::move(t));
    }
  }
  rocksdb::WriteBatch batch;
  TypedBatch typed(this, &batch);
  MessageIdRuns id_runs(&batch, cf(kMessageId));
  // Records of one queue usually come together: the last one's is kept.
  Touched* last = nullptr;
  absl::string_view last_topic;
  int32_t last_queue = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const RecordView& r = records[i];
    if (r.commit_offset() != expected_offset) {
      return absl::InternalError(absl::StrCat("dispatch expected a record at commit offset ",
                                              expected_offset, ", got ", r.commit_offset()));
    }
    expected_offset = r.end_offset();
    // Also for a deleted topic's copy: a timer whose copy landed just before
    // the delete must not fire again.
    APOGEE_RETURN_IF_ERROR(typed.Apply(r));
    if (deleted[i]) continue;
    if (last == nullptr || r.queue_id() != last_queue || r.topic() != last_topic) {
      last = &touched[TopicQueue{std::string(r.topic()), r.queue_id()}];
      last_topic = r.topic();
      last_queue = r.queue_id();
    }
    QueueState& state = last->state;
    if (r.queue_offset() != state.range.next_offset) {
      return absl::DataLossError(absl::StrCat("record at commit offset ", r.commit_offset(),
                                              " has queue offset ", r.queue_offset(),
                                              " but topic \"", r.topic(), "\" queue ", r.queue_id(),
                                              " expects ", state.range.next_offset));
    }
    ++state.range.next_offset;
    keys::PutConsumeQueueValue(
        &last->run, {r.commit_offset(), r.length(), r.tags_hash(), r.store_timestamp_ms()});
    if (last->run.size() >= kMaxRunValues * keys::kConsumeQueueValueSize) {
      batch.Put(cf(kConsumeQueue), keys::ConsumeQueueKey(last->prefix, last->run_first), last->run);
      last->run.clear();
      last->run_first = state.range.next_offset;
    }
    const int64_t second = FloorDiv(r.store_timestamp_ms(), 1000);
    if (second != state.last_second) {
      batch.Put(cf(kTime), keys::TimeKey(last->prefix, second, r.queue_offset()), "");
      state.last_second = second;
    }
    if (!r.message_id().empty()) id_runs.Add(r.message_id(), r.commit_offset(), r.length());
    for (absl::string_view key : r.keys()) {
      if (key.empty()) continue;
      batch.Put(cf(kKey),
                keys::WithCommitOffset(keys::KeyPrefix(r.topic(), key), r.commit_offset()),
                EncodeSize(r.length()));
    }
  }
  if (expected_offset != end_offset) {
    return absl::InternalError(absl::StrCat("dispatch batch ends at ", expected_offset,
                                            ", not at the checkpoint ", end_offset));
  }
  id_runs.Flush();
  for (const auto& [tq, t] : touched) {
    if (!t.run.empty()) {
      batch.Put(cf(kConsumeQueue), keys::ConsumeQueueKey(t.prefix, t.run_first), t.run);
    }
    batch.Put(cf(kDefault), absl::StrCat(std::string(1, keys::kQueueNextPrefix), t.prefix),
              keys::EncodeFixed64BE(t.state.range.next_offset));
  }
  batch.Put(cf(kDefault), ToSlice(keys::kDispatchedKey), keys::EncodeFixed64BE(end_offset));
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.sync_writes;
  APOGEE_RETURN_IF_ERROR(FromRocks(db_->Write(write_options, &batch),
                                   absl::StrCat("write index batch up to offset ", end_offset)));
  absl::MutexLock lock(&mu_);
  for (auto& [tq, t] : touched) queues_[tq] = t.state;
  dispatched_ = end_offset;
  pending_.timers += typed.delta().timers;
  pending_.transactions += typed.delta().transactions;
  pending_.duplicate_resolvers += typed.delta().duplicate_resolvers;
  if (typed.delta().duplicate_resolvers > 0) {
    std::fprintf(stderr, "event=duplicate_resolver count=%lld below_offset=%lld\n",
                 static_cast<long long>(typed.delta().duplicate_resolvers),
                 static_cast<long long>(end_offset));
  }
  return absl::OkStatus();
}

absl::Status IndexStore::CountPending() {
  PendingCounts counts;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kPending)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::optional<keys::PendingValue> v = keys::DecodePendingValue(ToView(it->value()));
    if (!v.has_value()) continue;
    if (v->kind == static_cast<uint8_t>(RecordKind::kTimer)) ++counts.timers;
    if (v->kind == static_cast<uint8_t>(RecordKind::kHalf)) ++counts.transactions;
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "count pending entries"));
  absl::MutexLock lock(&mu_);
  counts.duplicate_resolvers = pending_.duplicate_resolvers;
  pending_ = counts;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DueEntry>> IndexStore::ScanPendingBefore(int64_t from, int64_t end,
                                                                    int limit) const {
  return ScanPendingRange(from, end, std::nullopt, limit);
}

absl::StatusOr<std::vector<DueEntry>> IndexStore::ScanPendingRange(int64_t from, int64_t end,
                                                                   std::optional<RecordKind> kind,
                                                                   int limit) const {
  const std::string upper = keys::EncodeFixed64BE(end);
  const rocksdb::Slice upper_slice(upper);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(Below(&upper_slice), cf(kPending)));
  std::vector<DueEntry> out;
  for (it->Seek(keys::EncodeFixed64BE(std::max<int64_t>(from, 0)));
       it->Valid() && static_cast<int>(out.size()) < limit; it->Next()) {
    std::optional<keys::PendingValue> v = keys::DecodePendingValue(ToView(it->value()));
    std::optional<int64_t> o = keys::DecodeFixed64BE(ToView(it->key()));
    if (!v.has_value() || !o.has_value()) return absl::DataLossError("malformed pending entry");
    const RecordKind k = static_cast<RecordKind>(v->kind);
    if (kind.has_value() && k != *kind) continue;
    out.push_back(DueEntry{v->at_ms, *o, v->size, k, v->count});
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "scan pending entries"));
  return out;
}

PendingCounts IndexStore::pending_counts() const {
  absl::MutexLock lock(&mu_);
  return pending_;
}

absl::StatusOr<std::vector<DueEntry>> IndexStore::ScanDue(RecordKind kind, int64_t from_ms,
                                                          int64_t due_ms, int limit,
                                                          int64_t from_offset) const {
  const Family f = kind == RecordKind::kHalf ? kTxnCheck : kTimerDue;
  // Bounded above so the iterator never walks past the due keys it wants.
  const std::string upper = keys::DueKey(due_ms + 1, 0);
  const rocksdb::Slice upper_slice(upper);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(Below(&upper_slice), cf(f)));
  std::vector<DueEntry> out;
  for (it->Seek(keys::DueKey(from_ms, from_offset));
       it->Valid() && static_cast<int>(out.size()) < limit; it->Next()) {
    std::optional<std::pair<int64_t, int64_t>> key = keys::DecodeDueKey(ToView(it->key()));
    if (!key.has_value()) return absl::DataLossError("malformed due-time key");
    APOGEE_ASSIGN_OR_RETURN(std::optional<DueEntry> entry, GetPending(key->second));
    if (!entry.has_value()) continue;  // resolved meanwhile
    out.push_back(*entry);
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "scan due-time index"));
  return out;
}

absl::StatusOr<std::optional<int64_t>> IndexStore::NextDue(RecordKind kind) const {
  const Family f = kind == RecordKind::kHalf ? kTxnCheck : kTimerDue;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(f)));
  it->SeekToFirst();
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "seek due-time index"));
  if (!it->Valid()) return std::nullopt;
  std::optional<std::pair<int64_t, int64_t>> key = keys::DecodeDueKey(ToView(it->key()));
  if (!key.has_value()) return absl::DataLossError("malformed due-time key");
  return key->first;
}

absl::StatusOr<std::optional<DueEntry>> IndexStore::GetPending(int64_t commit_offset) const {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf(kPending), keys::EncodeFixed64BE(commit_offset), &value);
  if (s.IsNotFound()) return std::nullopt;
  APOGEE_RETURN_IF_ERROR(FromRocks(s, "read pending entry"));
  std::optional<keys::PendingValue> v = keys::DecodePendingValue(value);
  if (!v.has_value()) {
    return absl::DataLossError(absl::StrCat("malformed pending entry at offset ", commit_offset));
  }
  return DueEntry{v->at_ms, commit_offset, v->size, static_cast<RecordKind>(v->kind), v->count};
}

absl::StatusOr<std::vector<DueEntry>> IndexStore::ScanPending(RecordKind kind, int64_t after,
                                                              int limit) const {
  return ScanPendingRange(after > 0 ? after + 1 : 0, std::numeric_limits<int64_t>::max(), kind,
                          limit);
}

absl::StatusOr<std::optional<std::pair<RecordKind, int64_t>>> IndexStore::GetResolved(
    int64_t subject) const {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf(kResolved), keys::EncodeFixed64BE(subject), &value);
  if (s.IsNotFound()) return std::nullopt;
  APOGEE_RETURN_IF_ERROR(FromRocks(s, "read resolved entry"));
  if (value.size() != 9) {
    return absl::DataLossError(absl::StrCat("malformed resolved entry of offset ", subject));
  }
  return std::make_pair(static_cast<RecordKind>(value[0]),
                        *keys::DecodeFixed64BE(absl::string_view(value).substr(1)));
}

std::optional<QueueRange> IndexStore::GetQueueRange(const TopicQueue& tq) const {
  absl::MutexLock lock(&mu_);
  auto it = queues_.find(tq);
  if (it != queues_.end()) return it->second.range;
  auto t = tombstones_.find(tq.topic);
  if (t != tombstones_.end()) return QueueRange{t->second.queue_base, t->second.queue_base};
  return std::nullopt;
}

std::vector<std::pair<TopicQueue, QueueRange>> IndexStore::ListQueues() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<TopicQueue, QueueRange>> out;
  out.reserve(queues_.size());
  for (const auto& [tq, state] : queues_) out.emplace_back(tq, state.range);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

absl::StatusOr<std::vector<ConsumeQueueEntry>> IndexStore::ReadConsumeQueue(const TopicQueue& tq,
                                                                            int64_t from,
                                                                            int max_entries) const {
  std::vector<ConsumeQueueEntry> out;
  int64_t expected = from;
  RunCursor runs(db_.get(), cf(kConsumeQueue), keys::TopicQueuePrefix(tq), from);
  for (; runs.Valid() && static_cast<int>(out.size()) < max_entries; runs.Next()) {
    if (runs.end() <= expected) continue;  // the last run, when `from` is past it
    if (runs.first() > expected) {
      std::optional<QueueRange> range = GetQueueRange(tq);
      if (range.has_value() && expected < range->min_offset) {  // trimmed by retention
        return absl::OutOfRangeError(
            absl::StrCat("queue offset ", expected, " of topic \"", tq.topic, "\" queue ",
                         tq.queue_id, " is below the queue's minimum ", range->min_offset));
      }
      return absl::DataLossError(absl::StrCat("consume queue of topic \"", tq.topic, "\" queue ",
                                              tq.queue_id, " is broken at queue offset ",
                                              expected));
    }
    for (; expected < runs.end() && static_cast<int>(out.size()) < max_entries; ++expected) {
      const keys::ConsumeQueueValue v = runs.value(expected);
      out.push_back({expected, v.commit_offset, v.size, v.tags_hash, v.store_timestamp_ms});
    }
  }
  APOGEE_RETURN_IF_ERROR(runs.status());
  return out;
}

absl::StatusOr<std::optional<ConsumeQueueEntry>> IndexStore::GetEntry(const std::string& prefix,
                                                                      int64_t queue_offset) const {
  RunCursor runs(db_.get(), cf(kConsumeQueue), prefix, queue_offset);
  APOGEE_RETURN_IF_ERROR(runs.status());
  if (!runs.Valid() || queue_offset < runs.first() || queue_offset >= runs.end()) {
    return std::nullopt;
  }
  const keys::ConsumeQueueValue v = runs.value(queue_offset);
  return ConsumeQueueEntry{queue_offset, v.commit_offset, v.size, v.tags_hash,
                           v.store_timestamp_ms};
}

absl::Status IndexStore::CutRunsFrom(const std::string& prefix, int64_t queue_offset,
                                     rocksdb::WriteBatch* batch) const {
  RunCursor runs(db_.get(), cf(kConsumeQueue), prefix, queue_offset);
  for (; runs.Valid(); runs.Next()) {
    if (runs.first() >= queue_offset) {
      batch->Delete(cf(kConsumeQueue), runs.key());
    } else if (runs.end() > queue_offset) {
      const size_t kept = static_cast<size_t>(queue_offset - runs.first());
      batch->Put(cf(kConsumeQueue), runs.key(),
                 ToSlice(runs.run().substr(0, kept * keys::kConsumeQueueValueSize)));
    }
  }
  return runs.status();
}

absl::Status IndexStore::CutRunsBefore(const std::string& prefix, int64_t queue_offset,
                                       rocksdb::WriteBatch* batch) const {
  RunCursor runs(db_.get(), cf(kConsumeQueue), prefix, queue_offset);
  if (runs.Valid() && runs.first() < queue_offset && runs.end() > queue_offset) {
    const size_t dropped = static_cast<size_t>(queue_offset - runs.first());
    batch->Put(cf(kConsumeQueue), keys::ConsumeQueueKey(prefix, queue_offset),
               ToSlice(runs.run().substr(dropped * keys::kConsumeQueueValueSize)));
  }
  return runs.status();
}

absl::StatusOr<int64_t> IndexStore::FirstAtOrAbove(const TopicQueue& tq, const QueueRange& range,
                                                   int64_t commit_offset,
                                                   std::optional<ConsumeQueueEntry>* entry) const {
  const std::string prefix = keys::TopicQueuePrefix(tq);
  // Binary search over [min, next): an entry's commit offset rises with its
  // queue offset. Invariant: every offset below lo is below commit_offset;
  // hi is next_offset or holds an entry at or above it.
  int64_t lo = range.min_offset, hi = range.next_offset;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    APOGEE_ASSIGN_OR_RETURN(std::optional<ConsumeQueueEntry> e, GetEntry(prefix, mid));
    if (!e.has_value()) {
      return absl::DataLossError(absl::StrCat("consume queue of topic \"", tq.topic, "\" queue ",
                                              tq.queue_id, " misses offset ", mid));
    }
    if (e->commit_offset >= commit_offset) {
      hi = mid;
      if (entry != nullptr) *entry = std::move(e);
    } else {
      lo = mid + 1;
    }
  }
  return hi;
}

absl::StatusOr<int64_t> IndexStore::LookupOffsetByTime(const TopicQueue& tq,
                                                       int64_t timestamp_ms) const {
  std::optional<QueueRange> range = GetQueueRange(tq);
  if (!range.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("topic \"", tq.topic, "\" queue ", tq.queue_id, " has no messages"));
  }
  const std::string prefix = keys::TopicQueuePrefix(tq);
  const int64_t second = FloorDiv(timestamp_ms, 1000);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kTime)));
  it->Seek(keys::TimeKey(prefix, second, 0));
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "seek time index"));
  if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 16) {
    return range->next_offset;  // every record is older
  }
  const auto found_second =
      static_cast<int64_t>(coding::GetFixed64BE(it->key().data() + prefix.size()));
  int64_t candidate =
      std::max(range->min_offset,
               static_cast<int64_t>(coding::GetFixed64BE(it->key().data() + prefix.size() + 8)));
  if (found_second != second) return std::min(candidate, range->next_offset);
  // Same second: walk its records to the first at or after the millisecond.
  constexpr int kStep = 256;
  while (candidate < range->next_offset) {
    APOGEE_ASSIGN_OR_RETURN(std::vector<ConsumeQueueEntry> entries,
                            ReadConsumeQueue(tq, candidate, kStep));
    if (entries.empty()) break;
    for (const ConsumeQueueEntry& e : entries) {
      if (e.store_timestamp_ms >= timestamp_ms) return e.queue_offset;
    }
    candidate = entries.back().queue_offset + 1;
  }
  return range->next_offset;
}

absl::Status IndexStore::ScanPositions(Family family, const std::string& prefix, int max_results,
                                       EntryDecoder decode, std::vector<IndexPosition>* out) const {
  const std::string upper = keys::PrefixSuccessor(prefix);
  const rocksdb::Slice upper_slice(upper);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(Below(&upper_slice), cf(family)));
  const int64_t floor = floor_filter_->floor.load(std::memory_order_relaxed);
  for (it->Seek(keys::WithCommitOffset(prefix, floor));
       it->Valid() && static_cast<int>(out->size()) < max_results; it->Next()) {
    if (it->key().size() != prefix.size() + 8) continue;
    APOGEE_RETURN_IF_ERROR(decode(ToView(it->key()), ToView(it->value()), floor, out));
  }
  return FromRocks(it->status(), "scan index");
}

namespace {

// A key or (formats 1-2) message-id entry: one record.
absl::Status DecodeSingleEntry(absl::string_view key, absl::string_view value, int64_t,
                               std::vector<IndexPosition>* out) {
  if (value.size() == keys::kSingleEntryValueSize) {
    out->push_back({keys::TrailingCommitOffset(key), coding::GetFixed32LE(value.data())});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<IndexPosition>> IndexStore::LookupMessageId(absl::string_view message_id,
                                                                       int max_results) const {
  const absl::string_view suffix = keys::MessageIdSuffix(message_id);
  // Runs are keyed by their last record: the first key at or above the
  // floor is the first run that may hold a record above it.
  const auto decode_run = [suffix](absl::string_view key, absl::string_view run, int64_t floor,
                                   std::vector<IndexPosition>* out) {
    // A single entry (formats 1-2) of an id equal to this bucket is not ours.
    if (run.size() == keys::kSingleEntryValueSize) return absl::OkStatus();
    while (!run.empty()) {
      const std::optional<keys::MessageIdRunEntry> e = keys::ConsumeMessageIdRunEntry(&run);
      if (!e.has_value()) {
        return absl::DataLossError(absl::StrCat("malformed message-id run ending at commit offset ",
                                                keys::TrailingCommitOffset(key)));
      }
      if (e->suffix == suffix && e->commit_offset >= floor) {
        out->push_back({e->commit_offset, e->size});
      }
    }
    return absl::OkStatus();
  };
  std::vector<IndexPosition> out;
  APOGEE_RETURN_IF_ERROR(ScanPositions(kMessageId,
                                       keys::MessageIdPrefix(keys::MessageIdBucket(message_id)),
                                       max_results, decode_run, &out));
  // Entries an index of format 1 or 2 wrote, one per id.
  std::vector<IndexPosition> single;
  APOGEE_RETURN_IF_ERROR(ScanPositions(kMessageId, keys::MessageIdPrefix(message_id), max_results,
                                       DecodeSingleEntry, &single));
  if (!single.empty()) {
    out.insert(out.end(), single.begin(), single.end());
    std::sort(out.begin(), out.end(), [](const IndexPosition& a, const IndexPosition& b) {
      return a.commit_offset < b.commit_offset;
    });
  }
  if (static_cast<int>(out.size()) > max_results) out.resize(max_results);
  return out;
}

absl::StatusOr<std::vector<IndexPosition>> IndexStore::LookupKey(absl::string_view topic,
                                                                 absl::string_view key,
                                                                 int max_results) const {
  std::vector<IndexPosition> out;
  APOGEE_RETURN_IF_ERROR(
      ScanPositions(kKey, keys::KeyPrefix(topic, key), max_results, DecodeSingleEntry, &out));
  return out;
}

absl::Status IndexStore::TruncateFrom(int64_t log_end) {
  absl::MutexLock write_lock(&write_mu_);
  if (dispatched_offset() <= log_end) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  std::vector<std::pair<TopicQueue, QueueState>> changed;
  for (auto& [tq, range] : ListQueues()) {
    const std::string prefix = keys::TopicQueuePrefix(tq);
    if (range.next_offset == range.min_offset) continue;
    APOGEE_ASSIGN_OR_RETURN(std::optional<ConsumeQueueEntry> last,
                            GetEntry(prefix, range.next_offset - 1));
    if (!last.has_value() || last->commit_offset < log_end) continue;  // nothing to cut
    QueueState state;
    state.range = range;
    APOGEE_ASSIGN_OR_RETURN(state.range.next_offset, FirstAtOrAbove(tq, range, log_end, nullptr));
    APOGEE_ASSIGN_OR_RETURN(
        std::vector<ConsumeQueueEntry> cut,
        ReadConsumeQueue(tq, state.range.next_offset,
                         static_cast<int>(range.next_offset - state.range.next_offset)));
    for (const ConsumeQueueEntry& e : cut) {
      batch.Delete(cf(kTime),
                   keys::TimeKey(prefix, FloorDiv(e.store_timestamp_ms, 1000), e.queue_offset));
    }
    APOGEE_RETURN_IF_ERROR(CutRunsFrom(prefix, state.range.next_offset, &batch));
    batch.Put(cf(kDefault), absl::StrCat(std::string(1, keys::kQueueNextPrefix), prefix),
              keys::EncodeFixed64BE(state.range.next_offset));
    changed.emplace_back(tq, state);
  }
  // Typed state: undo the resolvers being cut, newest first, then drop the
  // pending entries of records being cut.
  TypedBatch typed(this, &batch);
  {
    std::vector<std::pair<int64_t, keys::UndoValue>> undos;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kUndo)));
    for (it->Seek(keys::EncodeFixed64BE(log_end)); it->Valid(); it->Next()) {
      std::optional<int64_t> resolver = keys::DecodeFixed64BE(ToView(it->key()));
      std::optional<keys::UndoValue> undo = keys::DecodeUndoValue(ToView(it->value()));
      if (!resolver.has_value() || !undo.has_value()) {
        return absl::DataLossError("malformed undo entry");
      }
      undos.emplace_back(*resolver, std::move(*undo));
    }
    APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "scan undo entries"));
    for (auto u = undos.rbegin(); u != undos.rend(); ++u) {
      APOGEE_RETURN_IF_ERROR(typed.Undo(u->first, u->second));
    }
    std::vector<int64_t> cut;
    std::unique_ptr<rocksdb::Iterator> p(db_->NewIterator(rocksdb::ReadOptions(), cf(kPending)));
    for (p->Seek(keys::EncodeFixed64BE(log_end)); p->Valid(); p->Next()) {
      cut.push_back(keys::DecodeFixed64BE(ToView(p->key())).value_or(0));
    }
    APOGEE_RETURN_IF_ERROR(FromRocks(p->status(), "scan pending entries"));
    for (int64_t o : cut) {
      APOGEE_ASSIGN_OR_RETURN(std::optional<keys::PendingValue> v, typed.Get(o));
      if (v.has_value()) typed.Delete(o, *v);
    }
  }
  batch.Put(cf(kDefault), ToSlice(keys::kDispatchedKey), keys::EncodeFixed64BE(log_end));
  rocksdb::WriteOptions sync;
  sync.sync = true;
  APOGEE_RETURN_IF_ERROR(
      FromRocks(db_->Write(sync, &batch), absl::StrCat("truncate indexes at offset ", log_end)));
  {
    absl::MutexLock lock(&mu_);
    for (auto& [tq, state] : changed) queues_[tq] = state;
    dispatched_ = log_end;
  }
  return CountPending();
}

absl::Status IndexStore::TrimBefore(int64_t log_min) {
  APOGEE_RETURN_IF_ERROR(TrimEntriesBefore(log_min));
  // Outside write_mu_: compaction takes a while and dispatch goes on.
  for (Family f : {kMessageId, kKey}) {
    APOGEE_RETURN_IF_ERROR(CompactBelow(f, log_min));
    // Best effort: a merge that lost a race with RocksDB's compactions
    // (ABORTED) is tried again at the next trim; anything else (an I/O
    // error) is logged, and the trim itself stands.
    const absl::Status merged = MergeSmallFiles(f);
    if (!merged.ok() && merged.code() != absl::StatusCode::kAborted) {
      std::fprintf(stderr, "event=index_merge_failed family=%s error=\"%s\"\n", kFamilyNames[f],
                   std::string(merged.message()).c_str());
    }
  }
  return absl::OkStatus();
}

absl::Status IndexStore::TrimEntriesBefore(int64_t log_min) {
  absl::MutexLock write_lock(&write_mu_);
  if (floor_filter_->floor.load() < log_min) floor_filter_->floor.store(log_min);
  rocksdb::WriteBatch batch;
  std::vector<std::pair<TopicQueue, int64_t>> new_mins;
  for (const auto& [tq, range] : ListQueues()) {
    if (range.min_offset == range.next_offset) continue;
    const std::string prefix = keys::TopicQueuePrefix(tq);
    APOGEE_ASSIGN_OR_RETURN(std::optional<ConsumeQueueEntry> first,
                            GetEntry(prefix, range.min_offset));
    if (first.has_value() && first->commit_offset >= log_min) continue;  // nothing to drop
    std::optional<ConsumeQueueEntry> answer;
    APOGEE_ASSIGN_OR_RETURN(const int64_t new_min, FirstAtOrAbove(tq, range, log_min, &answer));
    // The run holding new_min starts there now; the ones before it go,
    // from the bare prefix, outside the insert hints' domain (see
    // QueueOfConsumeKey).
    APOGEE_RETURN_IF_ERROR(CutRunsBefore(prefix, new_min, &batch));
    batch.DeleteRange(cf(kConsumeQueue), prefix, keys::ConsumeQueueKey(prefix, new_min));
    if (answer.has_value()) {
      const std::string time_key =
          keys::TimeKey(prefix, FloorDiv(answer->store_timestamp_ms, 1000), new_min);
      batch.DeleteRange(cf(kTime), prefix, time_key);
      batch.Put(cf(kTime), time_key, "");  // its second may have started before new_min
    } else {
      batch.DeleteRange(cf(kTime), prefix, keys::PrefixSuccessor(prefix));
    }
    new_mins.emplace_back(tq, new_min);
  }
  // Resolutions of records retention dropped are history nobody asks for.
  // The pending entries below are DISCARDED ones, which go with their
  // segment; retention never drops a pending TIMER or HALF
  // (message-types.md §2.4), so the in-memory counts stay right.
  for (Family f : {kResolved, kUndo, kPending}) {
    batch.DeleteRange(cf(f), keys::EncodeFixed64BE(0), keys::EncodeFixed64BE(log_min));
  }
  {
    APOGEE_RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &batch),
                                     absl::StrCat("trim indexes below offset ", log_min)));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [tq, new_min] : new_mins) queues_[tq].range.min_offset = new_min;
  return absl::OkStatus();
}

absl::Status IndexStore::CompactBelow(Family f, int64_t floor) {
  rocksdb::TablePropertiesCollection properties;
  APOGEE_RETURN_IF_ERROR(
      FromRocks(db_->GetPropertiesOfAllTables(cf(f), &properties), "read index table properties"));
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  std::optional<std::string> lo, hi;
  for (const rocksdb::LiveFileMetaData& file : files) {
    if (file.column_family_name != kFamilyNames[f]) continue;
    auto table = properties.find(file.db_path + file.name);
    if (table == properties.end()) continue;
    const auto& user = table->second->user_collected_properties;
    auto max = user.find(kMaxOffsetProperty);
    if (max == user.end()) continue;  // written before the property existed
    const std::optional<int64_t> highest = keys::DecodeFixed64BE(max->second);
    if (!highest.has_value() || *highest >= floor) continue;
    if (!lo.has_value() || file.smallestkey < *lo) lo = file.smallestkey;
    if (!hi.has_value() || file.largestkey > *hi) hi = file.largestkey;
  }
  if (!lo.has_value()) return absl::OkStatus();
  const rocksdb::Slice begin(*lo), end(*hi);
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return FromRocks(db_->CompactRange(options, cf(f), &begin, &end),
                   absl::StrCat("compact ", kFamilyNames[f], " entries below offset ", floor));
}

absl::Status IndexStore::MergeSmallFiles(Family f) {
  // Below this a table file counts as small: a flush of a few MiB of
  // memtable; RocksDB's own compactions write files up to 64 MiB.
  constexpr uint64_t kSmallFile = 8 << 20;
  constexpr size_t kMinRun = 8;   // merging fewer is not worth a compaction
  constexpr size_t kMaxRun = 64;  // one output of up to ~kMaxRun small files
  rocksdb::ColumnFamilyMetaData meta;
  db_->GetColumnFamilyMetaData(cf(f), &meta);
  for (const rocksdb::LevelMetaData& level : meta.levels) {
    if (level.level == 0) continue;  // L0 files overlap; RocksDB compacts them
    // Files of a level >= 1 are sorted by key and do not overlap: a run of
    // neighbours merges into one file without overlapping the others.
    std::vector<const rocksdb::SstFileMetaData*> files;
    for (const rocksdb::SstFileMetaData& file : level.files) files.push_back(&file);
    std::sort(files.begin(), files.end(),
              [](const auto* a, const auto* b) { return a->smallestkey < b->smallestkey; });
    std::vector<std::string> run;
    for (const rocksdb::SstFileMetaData* file : files) {
      if (file->size >= kSmallFile || file->being_compacted) {
        if (run.size() >= kMinRun) break;
        run.clear();
        continue;
      }
      run.push_back(file->db_path + file->name);
      if (run.size() == kMaxRun) break;
    }
    if (run.size() < kMinRun) continue;
    const std::string what =
        absl::StrCat("merge ", run.size(), " small ", kFamilyNames[f], " files");
    const rocksdb::Status s =
        db_->CompactFiles(rocksdb::CompactionOptions(), cf(f), run, level.level);
    // A race with RocksDB's own compactions: a file of the run is being
    // compacted, or gone, since the listing above.
    if (s.IsAborted() || s.IsInvalidArgument()) {
      return absl::AbortedError(absl::StrCat(what, ": ", s.ToString()));
    }
    return FromRocks(s, what);
  }
  return absl::OkStatus();
}

absl::Status IndexStore::ResetIndexes(int64_t start) {
  absl::MutexLock write_lock(&write_mu_);
  for (Family f :
       {kConsumeQueue, kMessageId, kKey, kTime, kPending, kTimerDue, kTxnCheck, kResolved, kUndo}) {
    APOGEE_RETURN_IF_ERROR(FromRocks(db_->DropColumnFamily(handles_[f]), "drop index family"));
    APOGEE_RETURN_IF_ERROR(
        FromRocks(db_->DestroyColumnFamilyHandle(handles_[f]), "drop index family"));
    APOGEE_RETURN_IF_ERROR(
        FromRocks(db_->CreateColumnFamily(FamilyOptions(f), kFamilyNames[f], &handles_[f]),
                  "recreate family"));
  }
  rocksdb::WriteBatch batch;
  const std::string q(1, keys::kQueueNextPrefix);
  batch.DeleteRange(cf(kDefault), q, keys::PrefixSuccessor(q));
  batch.Put(cf(kDefault), ToSlice(keys::kDispatchedKey), keys::EncodeFixed64BE(start));
  rocksdb::WriteOptions sync;
  sync.sync = true;
  APOGEE_RETURN_IF_ERROR(FromRocks(db_->Write(sync, &batch), "reset index meta"));
  absl::MutexLock lock(&mu_);
  queues_.clear();
  dispatched_ = start;
  pending_.timers = 0;
  pending_.transactions = 0;
  return absl::OkStatus();
}

absl::Status IndexStore::DropTopic(absl::string_view topic, const TopicTombstone& tombstone,
                                   uint8_t config_kind) {
  absl::MutexLock write_lock(&write_mu_);
  rocksdb::WriteBatch batch;
  // Ranges from the bare topic prefix, outside the insert hints' domain (see
  // QueueOfConsumeKey); the topic's name length makes them cover no other
  // topic.
  const std::string prefix = keys::TopicPrefix(topic);
  const std::string end = keys::PrefixSuccessor(prefix);
  for (Family f : {kConsumeQueue, kTime, kKey}) batch.DeleteRange(cf(f), prefix, end);
  const std::string q(1, keys::kQueueNextPrefix);
  batch.DeleteRange(cf(kDefault), q + prefix, q + end);
  // Offsets are keyed by group first: find the topic's among every group's.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kOffsets)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::string_view rest = ToView(it->key());
    if (keys::ConsumeGroup(&rest).has_value() && absl::StartsWith(rest, prefix)) {
      batch.Delete(cf(kOffsets), it->key());
    }
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "scan consumer offsets"));
  batch.Delete(cf(kConfig), keys::ConfigKey(config_kind, topic));
  batch.Put(cf(kDefault), TombstoneKey(topic), EncodeTombstone(tombstone));
  rocksdb::WriteOptions sync;
  sync.sync = true;
  APOGEE_RETURN_IF_ERROR(FromRocks(db_->Write(sync, &batch),
                                   absl::StrCat("delete topic \"", topic, "\" from the index")));
  absl::MutexLock lock(&mu_);
  absl::erase_if(queues_, [topic](const auto& entry) { return entry.first.topic == topic; });
  tombstones_[topic] = tombstone;
  return absl::OkStatus();
}

std::optional<TopicTombstone> IndexStore::GetTombstone(absl::string_view topic) const {
  absl::MutexLock lock(&mu_);
  auto it = tombstones_.find(topic);
  if (it == tombstones_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, TopicTombstone>> IndexStore::ListTombstones() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, TopicTombstone>> out(tombstones_.begin(), tombstones_.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

bool IndexStore::IsDeleted(absl::string_view topic, int64_t commit_offset) const {
  absl::MutexLock lock(&mu_);
  auto it = tombstones_.find(topic);
  return it != tombstones_.end() && commit_offset < it->second.deleted_below;
}

absl::Status IndexStore::CommitOffset(absl::string_view group, const TopicQueue& tq, int64_t offset,
                                      int64_t commit_time_ms) {
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.sync_writes;
  return FromRocks(
      db_->Put(write_options, cf(kOffsets), keys::GroupPrefix(group) + keys::TopicQueuePrefix(tq),
               keys::EncodeOffsetValue({offset, commit_time_ms})),
      absl::StrCat("commit offset of group \"", group, "\""));
}

absl::StatusOr<GroupOffset> IndexStore::FetchOffset(absl::string_view group,
                                                    const TopicQueue& tq) const {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kOffsets),
                                     keys::GroupPrefix(group) + keys::TopicQueuePrefix(tq), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("group \"", group, "\" has no offset for topic \"",
                                            tq.topic, "\" queue ", tq.queue_id));
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(s, "fetch consumer offset"));
  std::optional<keys::OffsetValue> decoded = keys::DecodeOffsetValue(value);
  if (!decoded.has_value()) {
    return absl::DataLossError(absl::StrCat("malformed consumer offset of group \"", group, "\" (",
                                            value.size(), " bytes, want 8 or 16)"));
  }
  return GroupOffset{std::string(group), tq, decoded->offset, decoded->commit_time_ms};
}

absl::StatusOr<std::vector<GroupOffset>> IndexStore::ListOffsets(absl::string_view group) const {
  const std::string prefix = group.empty() ? std::string() : keys::GroupPrefix(group);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kOffsets)));
  std::vector<GroupOffset> out;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    absl::string_view rest = ToView(it->key());
    std::optional<std::string> name = keys::ConsumeGroup(&rest);
    std::optional<TopicQueue> tq = keys::ConsumeTopicQueue(&rest);
    std::optional<keys::OffsetValue> value = keys::DecodeOffsetValue(ToView(it->value()));
    if (name.has_value() && tq.has_value() && value.has_value()) {
      out.push_back({std::move(*name), std::move(*tq), value->offset, value->commit_time_ms});
    }
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "list consumer offsets"));
  return out;
}

absl::Status IndexStore::DeleteOffsets(absl::string_view group) {
  const std::string prefix = keys::GroupPrefix(group);
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.sync_writes;
  return FromRocks(
      db_->DeleteRange(write_options, cf(kOffsets), prefix, keys::PrefixSuccessor(prefix)),
      absl::StrCat("delete offsets of group \"", group, "\""));
}

absl::Status IndexStore::PutConfig(uint8_t kind, absl::string_view name, absl::string_view value) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Put(sync, cf(kConfig), keys::ConfigKey(kind, name), ToSlice(value)),
                   absl::StrCat("write config \"", name, "\""));
}

absl::StatusOr<std::string> IndexStore::GetConfig(uint8_t kind, absl::string_view name) const {
  std::string value;
  APOGEE_RETURN_IF_ERROR(
      FromRocks(db_->Get(rocksdb::ReadOptions(), cf(kConfig), keys::ConfigKey(kind, name), &value),
                absl::StrCat("config \"", name, "\"")));
  return value;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> IndexStore::ListConfigs(
    uint8_t kind) const {
  const std::string prefix = keys::ConfigKey(kind, "");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kConfig)));
  std::vector<std::pair<std::string, std::string>> out;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    out.emplace_back(std::string(ToView(it->key()).substr(1)), it->value().ToString());
  }
  APOGEE_RETURN_IF_ERROR(FromRocks(it->status(), "list configs"));
  return out;
}

absl::Status IndexStore::DeleteConfig(uint8_t kind, absl::string_view name) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Delete(sync, cf(kConfig), keys::ConfigKey(kind, name)),
                   absl::StrCat("delete config \"", name, "\""));
}

int IndexStore::TableFiles(absl::string_view family) const {
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  return static_cast<int>(std::count_if(
      files.begin(), files.end(), [&](const auto& f) { return f.column_family_name == family; }));
}

IndexMemory IndexStore::Memory() const {
  IndexMemory memory;
  memory.budget = options_.memory_budget;
  memory.memtables = static_cast<int64_t>(write_buffers_->memory_usage());
  memory.block_cache = static_cast<int64_t>(cache_->GetUsage());
  memory.block_cache_pinned = static_cast<int64_t>(cache_->GetPinnedUsage());
  uint64_t readers = 0;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    uint64_t value = 0;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kEstimateTableReadersMem, &value)) {
      readers += value;
    }
  }
  memory.table_readers = static_cast<int64_t>(readers);
  return memory;
}

absl::Status IndexStore::SyncWal() {
  // Not DB::SyncWAL(): after a WAL append failed (a full disk), RocksDB 7.8
  // (Debian's, built with assertions) aborts in WritableFileWriter when
  // SyncWAL syncs that file, and SyncWAL runs beside writers, so it can race
  // the failing append. A synced write goes through RocksDB's write queue
  // instead: it never starts after a failed WAL append (that stops the DB
  // with a background error first; this then returns the error) and it
  // fsyncs every live WAL, as SyncWAL does. The record is WAL-only.
  rocksdb::WriteBatch batch;
  APOGEE_RETURN_IF_ERROR(FromRocks(batch.PutLogData("sync"), "sync index WAL"));
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(db_->Write(sync, &batch), "sync index WAL");
}

}  // namespace apogee::store
