#include "services/store/engine/store.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"
#include "services/store/io/coding.h"
#include "services/store/io/posix_file_system.h"

namespace apogee::store {
namespace {

constexpr uint8_t kTopicKind = 't';
constexpr uint8_t kGroupKind = 'g';

std::string EncodeTopic(const TopicConfig& topic) {
  std::string out;
  coding::PutFixed32LE(&out, static_cast<uint32_t>(topic.queue_count));
  out += topic.attributes;
  return out;
}

std::optional<TopicConfig> DecodeTopic(const std::string& name, absl::string_view value) {
  if (value.size() < 4) return std::nullopt;
  TopicConfig topic;
  topic.name = name;
  topic.queue_count = static_cast<int32_t>(coding::GetFixed32LE(value.data()));
  topic.attributes = std::string(value.substr(4));
  return topic;
}

std::string QueueName(absl::string_view topic, int32_t queue_id) {
  return absl::StrCat("topic \"", topic, "\" queue ", queue_id);
}

// The largest record a message within the limits can encode to. The slack
// covers version-1 records, whose bodies carried the tag in a 3-byte
// envelope; the typed extension of version 3 is counted at its largest.
uint32_t MaxRecordSize(uint32_t max_body_size) {
  return static_cast<uint32_t>(kRecordHeaderSizeV3 + kRecordExtFixedSize + kMaxRecordTopicLength +
                               kMaxTopicNameLength + kMaxMessageIdLength + kMaxTagLength + 3 +
                               kMaxKeysPerMessage * (2 + kMaxKeyLength) + max_body_size);
}

// Reads the records of one batch of a queue's consume entries for
// Store::Read. Entries laid end to end in the log (the messages of one
// append batch) are read together, one read instead of one per message, in
// runs of at most kMaxRunBytes (the run's buffer is held beside its
// records until they are split out).
constexpr int64_t kMaxRunBytes = 1 << 20;
class EntryReader {
 public:
  EntryReader(const CommitLog& log, const std::vector<ConsumeQueueEntry>& entries,
              const ReadRequest& request)
      : log_(log), entries_(entries), request_(request) {}

  // The record of entries[i]. The caller may return `bytes_left` more
  // bytes and `messages_left` more messages: a run read ahead stays within
  // them and ends at an entry the tag filter skips.
  absl::StatusOr<StoredRecord> Read(size_t i, int64_t bytes_left, size_t messages_left) {
    if (i >= from_ && i < from_ + ahead_.size()) return std::move(ahead_[i - from_]);
    std::vector<uint32_t> sizes = {entries_[i].size};
    int64_t bytes = entries_[i].size;
    for (size_t j = i + 1; j < entries_.size() && sizes.size() < messages_left; ++j) {
      const ConsumeQueueEntry& prev = entries_[j - 1];
      const ConsumeQueueEntry& next = entries_[j];
      if (next.commit_offset != prev.commit_offset + prev.size) break;
      if (request_.tag_filter && !request_.tag_filter(next.tags_hash)) break;
      if (bytes + next.size > std::min(bytes_left, kMaxRunBytes)) break;
      bytes += next.size;
      sizes.push_back(next.size);
    }
    if (sizes.size() == 1) return log_.ReadRecord(entries_[i].commit_offset, entries_[i].size);
    APOGEE_ASSIGN_OR_RETURN(ahead_, log_.ReadRecords(entries_[i].commit_offset, sizes));
    from_ = i;
    return std::move(ahead_[0]);
  }

 private:
  const CommitLog& log_;
  const std::vector<ConsumeQueueEntry>& entries_;
  const ReadRequest& request_;
  std::vector<StoredRecord> ahead_;  // entries_[from_ ...]
  size_t from_ = 0;
};

}  // namespace

Store::Store(StoreOptions options)
    : options_(std::move(options)),
      fs_(options_.file_system != nullptr ? options_.file_system : PosixFileSystem::Default()),
      clock_(options_.clock != nullptr ? options_.clock : RealClock::Default()) {}

absl::StatusOr<std::unique_ptr<Store>> Store::Create(StoreOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("store data_dir is empty");
  if (options.max_body_size == 0) {
    return absl::InvalidArgumentError("store max_body_size must be positive");
  }
  const uint32_t max_record = MaxRecordSize(options.max_body_size);
  if (options.segment_size < max_record) {
    return absl::InvalidArgumentError(absl::StrCat(
        "store segment_size ", options.segment_size, " is smaller than the largest record (",
        max_record, " bytes for max_body_size ", options.max_body_size, ")"));
  }
  std::unique_ptr<Store> store(new Store(std::move(options)));
  APOGEE_RETURN_IF_ERROR(store->Open());
  return store;
}

absl::Status Store::Open() {
  APOGEE_RETURN_IF_ERROR(fs_->CreateDirs(options_.data_dir));
  IndexOptions index_options;
  index_options.path = JoinPath(options_.data_dir, "index");
  index_options.sync_writes = options_.sync_index_writes;
  index_options.memory_budget = options_.index_memory_budget;
  index_options.write_buffer_size = options_.index_write_buffer_size;
  index_options.max_open_files = options_.index_max_open_files;
  index_options.env = options_.index_env;
  APOGEE_ASSIGN_OR_RETURN(index_, IndexStore::Open(std::move(index_options)));
  CommitLogOptions log_options;
  log_options.dir = JoinPath(options_.data_dir, "commitlog");
  log_options.segment_size = options_.segment_size;
  log_options.max_record_size = MaxRecordSize(options_.max_body_size);
  log_options.flush_mode = options_.flush_mode;
  // In sync mode everything dispatched was acknowledged as durable.
  log_options.protected_offset =
      options_.flush_mode == FlushMode::kSync ? index_->dispatched_offset() : 0;
  APOGEE_ASSIGN_OR_RETURN(log_, CommitLog::Open(fs_, clock_, log_options));
  dispatcher_ = std::make_unique<Dispatcher>(log_.get(), index_.get());
  APOGEE_ASSIGN_OR_RETURN(recovery_, RecoverIndexes(log_.get(), index_.get(), dispatcher_.get(),
                                                    options_.rebuild_indexes));

  APOGEE_ASSIGN_OR_RETURN(auto topics, index_->ListConfigs(kTopicKind));
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, value] : topics) {
      std::optional<TopicConfig> topic = DecodeTopic(name, value);
      if (!topic.has_value()) {
        return absl::DataLossError(absl::StrCat("config of topic \"", name, "\" is malformed"));
      }
      topics_[name] = std::move(*topic);
    }
  }

  Dispatcher* dispatcher = dispatcher_.get();
  log_->SetWriteListener([dispatcher](int64_t start, std::shared_ptr<const std::string> bytes) {
    dispatcher->OnWritten(start, std::move(bytes));
  });
  log_->SetCommitListener([dispatcher, on_commit = options_.on_commit](int64_t end) {
    dispatcher->OnCommitted(end);
    if (on_commit) on_commit(end);
  });
  dispatcher_->SetListener(options_.on_dispatch);
  dispatcher_->Start();
  if (options_.flush_mode == FlushMode::kAsync && options_.flush_interval > absl::ZeroDuration()) {
    flush_task_ =
        std::make_unique<PeriodicTask>(options_.flush_interval, [this] { Flush().IgnoreError(); });
  }
  if (options_.retention.check_interval > absl::ZeroDuration()) {
    retention_task_ = std::make_unique<PeriodicTask>(options_.retention.check_interval,
                                                     [this] { RunRetention().IgnoreError(); });
  }
  return absl::OkStatus();
}

Store::~Store() {
  retention_task_.reset();
  flush_task_.reset();
  if (dispatcher_ != nullptr) dispatcher_->Stop();
  if (log_ != nullptr) log_->Flush().IgnoreError();
  if (dispatcher_ != nullptr) dispatcher_->CatchUp().IgnoreError();
  if (index_ != nullptr) index_->SyncWal().IgnoreError();
  dispatcher_.reset();
  log_.reset();
  index_.reset();
}

absl::Status Store::CheckQueue(absl::string_view field, const std::string& topic,
                               int32_t queue_id) const {
  if (IsImplicitTopic(topic) && queue_id == 0) return absl::OkStatus();  // one queue each
  APOGEE_RETURN_IF_ERROR(ValidateTopicName(absl::StrCat(field, "topic"), topic));
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat(field, "topic \"", topic, "\" does not exist"));
  }
  if (queue_id < 0 || queue_id >= it->second.queue_count) {
    return absl::InvalidArgumentError(absl::StrCat(field, "queue ", queue_id, " of topic \"", topic,
                                                   "\" is out of range [0, ",
                                                   it->second.queue_count, ")"));
  }
  return absl::OkStatus();
}

absl::Status Store::ValidateRecord(size_t i, const RecordInput& record) const {
  const std::string field = absl::StrCat("batch[", i, "].");
  APOGEE_RETURN_IF_ERROR(CheckQueue(field, record.topic, record.queue_id));
  if (record.ext.kind == RecordKind::kTimer) {
    if (record.topic != kTimerTopic || record.queue_id != 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, "TIMER record must go to ", kTimerTopic,
                                                     " queue 0, not \"", record.topic, "\" queue ",
                                                     record.queue_id));
    }
    if (record.ext.at_ms <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, "TIMER record has no deliver_time"));
    }
    // The target must exist now; the timer service checks it again at the
    // due time. A moved copy (count = times carried; only the store writes
    // one) keeps the target its original was accepted with, even one
    // deleted since.
    if (record.ext.count == 0) {
      APOGEE_RETURN_IF_ERROR(CheckQueue(absl::StrCat(field, "target "), record.ext.target_topic,
                                        record.ext.target_queue));
    }
  } else if (record.ext.kind == RecordKind::kHalf) {
    if (record.topic != kTransHalfTopic || record.queue_id != 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, "HALF record must go to ",
                                                     kTransHalfTopic, " queue 0, not \"",
                                                     record.topic, "\" queue ", record.queue_id));
    }
    if (record.ext.at_ms <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, "HALF record has no check_time"));
    }
    APOGEE_RETURN_IF_ERROR(CheckQueue(absl::StrCat(field, "target "), record.ext.target_topic,
                                      record.ext.target_queue));
  } else if (record.topic == kTimerTopic && record.ext.kind != RecordKind::kDropped) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "topic ", kTimerTopic, " takes only TIMER and DROPPED records"));
  } else if (record.topic == kTransHalfTopic) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "topic ", kTransHalfTopic, " takes only HALF records"));
  } else if (record.topic == kTransOpTopic && record.ext.kind != RecordKind::kRolledBack &&
             record.ext.kind != RecordKind::kChecked) {
    return absl::InvalidArgumentError(absl::StrCat(field, "topic ", kTransOpTopic,
                                                   " takes only ROLLED_BACK and CHECKED records"));
  } else if (record.topic == kTransCheckMaxTopic && record.ext.kind != RecordKind::kDiscarded) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "topic ", kTransCheckMaxTopic, " takes only DISCARDED records"));
  }
  if (record.body.size() > options_.max_body_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "body of ", QueueName(record.topic, record.queue_id), " is ",
                     record.body.size(), " bytes (max ", options_.max_body_size, ")"));
  }
  if (record.message_id.size() > kMaxMessageIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, "message_id is ",
                                                   record.message_id.size(), " bytes (max ",
                                                   kMaxMessageIdLength, ")"));
  }
  if (record.tag.size() > kMaxTagLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "tag is ", record.tag.size(), " bytes (max ", kMaxTagLength, ")"));
  }
  if (record.keys.size() > kMaxKeysPerMessage) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "has ", record.keys.size(), " keys (max ", kMaxKeysPerMessage, ")"));
  }
  for (size_t k = 0; k < record.keys.size(); ++k) {
    if (record.keys[k].size() > kMaxKeyLength) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "keys[", k, "] is ", record.keys[k].size(), " bytes (max ", kMaxKeyLength, ")"));
    }
  }
  return absl::OkStatus();
}

bool Store::following() const {
  absl::ReaderMutexLock appends(&append_mu_);
  return following_;
}

absl::StatusOr<std::vector<DueEntry>> Store::ScanDueTimers(int64_t from_ms, int64_t due_ms,
                                                           int limit) const {
  return index_->ScanDue(RecordKind::kTimer, from_ms, due_ms, limit);
}

absl::StatusOr<std::vector<DueEntry>> Store::ScanPending(RecordKind kind, int64_t from_ms,
                                                         int64_t from_offset, int64_t due_ms,
                                                         int limit) const {
  return index_->ScanDue(kind, from_ms, due_ms, limit, from_offset);
}

absl::StatusOr<std::optional<int64_t>> Store::NextTimerDue() const {
  return index_->NextDue(RecordKind::kTimer);
}

absl::StatusOr<std::vector<DueEntry>> Store::ScanDue(RecordKind kind, int64_t from_ms,
                                                     int64_t due_ms, int limit) const {
  return index_->ScanDue(kind, from_ms, due_ms, limit);
}

absl::StatusOr<std::vector<DueEntry>> Store::ScanPending(RecordKind kind, int64_t after,
                                                         int limit) const {
  return index_->ScanPending(kind, after, limit);
}

absl::StatusOr<std::optional<DueEntry>> Store::GetPending(int64_t commit_offset) const {
  return index_->GetPending(commit_offset);
}

absl::StatusOr<std::optional<std::pair<RecordKind, int64_t>>> Store::GetResolved(
    int64_t subject) const {
  return index_->GetResolved(subject);
}

absl::StatusOr<std::vector<DueEntry>> Store::ScanPendingBefore(int64_t from, int64_t end,
                                                               int limit) const {
  return index_->ScanPendingBefore(from, end, limit);
}

absl::StatusOr<bool> Store::IsPending(int64_t commit_offset) const {
  APOGEE_ASSIGN_OR_RETURN(std::optional<DueEntry> entry, index_->GetPending(commit_offset));
  return entry.has_value();
}

PendingCounts Store::pending_counts() const { return index_->pending_counts(); }

void Store::SetFollowing(bool following, std::string reason) {
  absl::WriterMutexLock appends(&append_mu_);
  following_ = following;
  following_reason_ = std::move(reason);
}

absl::StatusOr<std::vector<AppendResult>> Store::Append(const std::vector<RecordInput>& batch) {
  absl::ReaderMutexLock appends(&append_mu_);
  if (following_) {
    return absl::FailedPreconditionError(
        absl::StrCat("append refused: this store follows a master (", following_reason_, ")"));
  }
  for (size_t i = 0; i < batch.size(); ++i) APOGEE_RETURN_IF_ERROR(ValidateRecord(i, batch[i]));
  return log_->Append(batch);
}

void Store::AwaitIndexed() const {
  const int64_t committed = log_->committed_offset();
  if (dispatcher_->dispatched_offset() >= committed) return;
  dispatcher_->WaitForDispatched(committed, kIndexWait, /*until_error=*/true);
}

absl::StatusOr<StoredRecord> Store::ReadIndexed(int64_t commit_offset, uint32_t size) const {
  return log_->ReadRecord(commit_offset, size);
}

absl::StatusOr<ReadResult> Store::Read(const ReadRequest& request) const {
  APOGEE_RETURN_IF_ERROR(CheckQueue("", request.topic, request.queue_id));
  if (request.max_messages < 1 || request.max_messages > kMaxReadMessages) {
    return absl::InvalidArgumentError(absl::StrCat("max_messages ", request.max_messages,
                                                   " is out of range [1, ", kMaxReadMessages, "]"));
  }
  AwaitIndexed();
  const TopicQueue tq{request.topic, request.queue_id};
  const QueueRange range = index_->GetQueueRange(tq).value_or(QueueRange{});
  ReadResult result;
  result.min_offset = range.min_offset;
  result.max_offset = range.next_offset;
  result.next_offset = request.offset;
  const std::string what =
      absl::StrCat("queue offset ", request.offset, " of ", QueueName(tq.topic, tq.queue_id));
  const std::string retained =
      absl::StrCat(" (retained range [", range.min_offset, ", ", range.next_offset, "))");
  if (request.offset < range.min_offset) {
    return absl::OutOfRangeError(
        absl::StrCat(what, " is below the queue's minimum ", range.min_offset, retained));
  }
  if (request.offset > range.next_offset) {
    return absl::OutOfRangeError(
        absl::StrCat(what, " is past the queue's end ", range.next_offset, retained));
  }

  const int max_scan =
      request.tag_filter ? std::max(request.max_messages * 16, 512) : request.max_messages;
  int scanned = 0;
  int64_t bytes = 0;
  bool done = false;
  while (!done && result.next_offset < range.next_offset && scanned < max_scan) {
    absl::StatusOr<std::vector<ConsumeQueueEntry>> entries =
        index_->ReadConsumeQueue(tq, result.next_offset, std::min(max_scan - scanned, 256));
    if (!entries.ok()) {
      if (!result.records.empty()) break;  // trimmed meanwhile; return what we have
      return entries.status();
    }
    if (entries->empty()) break;
    EntryReader reader(*log_, *entries, request);
    for (size_t i = 0; i < entries->size(); ++i) {
      const ConsumeQueueEntry& e = (*entries)[i];
      ++scanned;
      if (request.tag_filter && !request.tag_filter(e.tags_hash)) {
        result.next_offset = e.queue_offset + 1;
      } else if (!result.records.empty() && bytes + e.size > request.max_bytes) {
        done = true;
      } else {
        absl::StatusOr<StoredRecord> record =
            reader.Read(i, request.max_bytes - bytes,
                        static_cast<size_t>(request.max_messages) - result.records.size());
        if (!record.ok()) {
          if (record.status().code() == absl::StatusCode::kOutOfRange) {
            if (!result.records.empty()) {
              done = true;
              break;
            }
            return absl::OutOfRangeError(
                absl::StrCat(what, " was deleted by retention: ", record.status().message()));
          }
          return record.status();
        }
        const RecordView view = record->view();
        if (view.topic() != tq.topic || view.queue_id() != tq.queue_id ||
            view.queue_offset() != e.queue_offset) {
          return absl::DataLossError(absl::StrCat(
              "consume queue entry ", e.queue_offset, " of ", QueueName(tq.topic, tq.queue_id),
              " points at commit offset ", e.commit_offset, ", which holds ",
              QueueName(view.topic(), view.queue_id()), " offset ", view.queue_offset()));
        }
        bytes += e.size;
        result.records.push_back(std::move(*record));
        result.next_offset = e.queue_offset + 1;
        done = static_cast<int>(result.records.size()) >= request.max_messages;
      }
      if (done || scanned >= max_scan) break;
    }
  }
  return result;
}

absl::StatusOr<QueueRange> Store::GetQueueRange(const std::string& topic, int32_t queue_id) const {
  APOGEE_RETURN_IF_ERROR(CheckQueue("", topic, queue_id));
  AwaitIndexed();
  return index_->GetQueueRange({topic, queue_id}).value_or(QueueRange{});
}

absl::StatusOr<int64_t> Store::LookupOffsetByTime(const std::string& topic, int32_t queue_id,
                                                  int64_t timestamp_ms) const {
  APOGEE_RETURN_IF_ERROR(CheckQueue("", topic, queue_id));
  AwaitIndexed();
  absl::StatusOr<int64_t> offset = index_->LookupOffsetByTime({topic, queue_id}, timestamp_ms);
  if (offset.status().code() == absl::StatusCode::kNotFound) return 0;  // never written
  return offset;
}

absl::StatusOr<std::vector<StoredRecord>> Store::LookupById(const std::string& message_id,
                                                            int max_results) const {
  if (message_id.empty() || message_id.size() > kMaxMessageIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "message_id is ", message_id.size(), " bytes (allowed: 1..", kMaxMessageIdLength, ")"));
  }
  AwaitIndexed();
  APOGEE_ASSIGN_OR_RETURN(std::vector<IndexPosition> positions,
                          index_->LookupMessageId(message_id, max_results));
  std::vector<StoredRecord> out;
  for (const IndexPosition& p : positions) {
    // Entries may outlive their record (an async-mode crash cut the log
    // tail); only a record that really carries the id counts.
    absl::StatusOr<StoredRecord> record = ReadIndexed(p.commit_offset, p.size);
    if (record.ok() && record->view().message_id() == message_id &&
        !index_->IsDeleted(record->view().topic(), p.commit_offset)) {
      out.push_back(std::move(*record));
    }
  }
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat("no message with id \"", message_id, "\""));
  }
  return out;
}

absl::StatusOr<std::vector<StoredRecord>> Store::LookupByKey(const std::string& topic,
                                                             const std::string& key,
                                                             int max_results) const {
  APOGEE_RETURN_IF_ERROR(CheckQueue("", topic, 0));
  AwaitIndexed();
  APOGEE_ASSIGN_OR_RETURN(std::vector<IndexPosition> positions,
                          index_->LookupKey(topic, key, max_results));
  std::vector<StoredRecord> out;
  for (const IndexPosition& p : positions) {
    absl::StatusOr<StoredRecord> record = ReadIndexed(p.commit_offset, p.size);
    if (!record.ok() || record->view().topic() != topic) continue;
    const std::vector<absl::string_view> keys = record->view().keys();
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) out.push_back(std::move(*record));
  }
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no message with key \"", key, "\" in topic \"", topic, "\""));
  }
  return out;
}

absl::StatusOr<StoredRecord> Store::ReadAt(int64_t commit_offset) const {
  return log_->ReadRecord(commit_offset);
}

absl::StatusOr<RecordChunk> Store::ReadRaw(int64_t commit_offset, size_t max_bytes) const {
  return log_->ReadChunk(commit_offset, max_bytes, log_->committed_offset());
}

absl::StatusOr<int64_t> Store::AppendReplicated(int64_t start, absl::string_view data) {
  absl::ReaderMutexLock appends(&append_mu_);
  return log_->AppendRaw(start, data);
}

absl::StatusOr<int64_t> Store::TruncateLog(int64_t offset) {
  absl::WriterMutexLock appends(&append_mu_);
  if (offset == log_->written_offset()) return 0;
  // The dispatcher must not index the tail while it is cut.
  dispatcher_->Stop();
  absl::Status status = index_->TruncateFrom(offset);
  absl::StatusOr<int64_t> dropped = status.ok() ? log_->TruncateTo(offset) : status;
  if (dropped.ok()) {
    for (const auto& [topic, tombstone] : index_->ListTombstones()) {
      log_->RebaseTopicQueues(topic, tombstone.queue_base);
    }
    std::vector<std::pair<TopicQueue, int64_t>> next_offsets;
    for (auto& [tq, range] : index_->ListQueues()) next_offsets.emplace_back(tq, range.next_offset);
    log_->ResetQueueOffsets(next_offsets);
  }
  dispatcher_->Start();
  return dropped;
}

absl::StatusOr<Store::MetaSnapshot> Store::SnapshotMeta() const {
  MetaSnapshot snapshot;
  snapshot.topics = ListTopics();
  APOGEE_ASSIGN_OR_RETURN(snapshot.groups, ListGroups());
  APOGEE_ASSIGN_OR_RETURN(snapshot.offsets, ListOffsets(""));
  snapshot.tombstones = index_->ListTombstones();
  return snapshot;
}

absl::Status Store::ApplyMeta(const MetaSnapshot& snapshot) {
  absl::WriterMutexLock appends(&append_mu_);
  // Tombstones first: a topic deleted and re-created gets its new config
  // below.
  for (const auto& [name, tombstone] : snapshot.tombstones) {
    const std::optional<TopicTombstone> mine = index_->GetTombstone(name);
    if (mine.has_value() && mine->deleted_below == tombstone.deleted_below &&
        mine->queue_base == tombstone.queue_base) {
      continue;
    }
    APOGEE_RETURN_IF_ERROR(index_->DropTopic(name, tombstone, kTopicKind));
    log_->RebaseTopicQueues(name, tombstone.queue_base);
    absl::MutexLock lock(&mu_);
    topics_.erase(name);
  }
  absl::flat_hash_map<std::string, const TopicConfig*> wanted;
  for (const TopicConfig& topic : snapshot.topics) wanted[topic.name] = &topic;
  for (const TopicConfig& topic : ListTopics()) {
    if (!wanted.contains(topic.name)) {
      APOGEE_RETURN_IF_ERROR(index_->DeleteConfig(kTopicKind, topic.name));
      absl::MutexLock lock(&mu_);
      topics_.erase(topic.name);
    }
  }
  for (const TopicConfig& topic : snapshot.topics) {
    {
      absl::MutexLock lock(&mu_);
      auto it = topics_.find(topic.name);
      if (it != topics_.end() && it->second.queue_count == topic.queue_count &&
          it->second.attributes == topic.attributes) {
        continue;
      }
    }
    APOGEE_RETURN_IF_ERROR(index_->PutConfig(kTopicKind, topic.name, EncodeTopic(topic)));
    absl::MutexLock lock(&mu_);
    topics_[topic.name] = topic;
  }
  absl::flat_hash_map<std::string, const std::string*> groups;
  for (const auto& [name, config] : snapshot.groups) groups[name] = &config;
  APOGEE_ASSIGN_OR_RETURN(auto current_groups, ListGroups());
  for (const auto& [name, config] : current_groups) {
    auto it = groups.find(name);
    if (it == groups.end()) {
      APOGEE_RETURN_IF_ERROR(index_->DeleteConfig(kGroupKind, name));
    } else if (*it->second == config) {
      groups.erase(it);
    }
  }
  for (const auto& [name, config] : groups) {
    APOGEE_RETURN_IF_ERROR(index_->PutConfig(kGroupKind, name, *config));
  }
  APOGEE_ASSIGN_OR_RETURN(std::vector<GroupOffset> current_offsets, index_->ListOffsets(""));
  absl::flat_hash_map<std::pair<std::string, TopicQueue>, int64_t> held;
  for (const GroupOffset& o : current_offsets) held[{o.group, o.tq}] = o.offset;
  absl::flat_hash_set<std::string> offset_groups;
  for (const ConsumerOffset& o : snapshot.offsets) {
    offset_groups.insert(o.group);
    auto it = held.find(std::make_pair(o.group, TopicQueue{o.topic, o.queue_id}));
    if (it != held.end() && it->second == o.offset) continue;  // unchanged: no write
    APOGEE_RETURN_IF_ERROR(
        index_->CommitOffset(o.group, {o.topic, o.queue_id}, o.offset, o.commit_time_ms));
  }
  for (const GroupOffset& o : current_offsets) {
    if (!offset_groups.contains(o.group)) {
      APOGEE_RETURN_IF_ERROR(index_->DeleteOffsets(o.group));
      offset_groups.insert(o.group);  // deleted once
    }
  }
  MetaChanged();
  return absl::OkStatus();
}

LogOffsets Store::GetLogOffsets() const {
  LogOffsets offsets;
  offsets.min = log_->min_offset();
  offsets.max = log_->written_offset();
  offsets.flushed = log_->flushed_offset();
  offsets.committed = log_->committed_offset();
  offsets.dispatched = index_->dispatched_offset();
  return offsets;
}

absl::Status Store::Flush() {
  absl::Status status = log_->Flush();
  status.Update(index_->SyncWal());
  return status;
}

bool Store::WaitForDispatch(int64_t commit_offset, absl::Duration timeout) const {
  return dispatcher_->WaitForDispatched(commit_offset, timeout);
}

bool Store::WaitForVisible(int64_t commit_offset, absl::Duration timeout) const {
  return dispatcher_->WaitForDispatched(commit_offset, timeout, /*until_error=*/true);
}

absl::Status Store::CommitOffset(const std::string& group, const std::string& topic,
                                 int32_t queue_id, int64_t offset) {
  APOGEE_RETURN_IF_ERROR(ValidateGroupName("group", group));
  APOGEE_RETURN_IF_ERROR(CheckQueue("", topic, queue_id));
  AwaitIndexed();
  const QueueRange range = index_->GetQueueRange({topic, queue_id}).value_or(QueueRange{});
  if (offset < 0 || offset > range.next_offset) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " committed by group \"", group,
                                              "\" for ", QueueName(topic, queue_id),
                                              " is out of range [0, ", range.next_offset, "]"));
  }
  APOGEE_RETURN_IF_ERROR(
      index_->CommitOffset(group, {topic, queue_id}, offset, absl::ToUnixMillis(clock_->Now())));
  MetaChanged();  // after the write: a snapshot taken for this version holds it
  return absl::OkStatus();
}

namespace {

ConsumerOffset ToConsumerOffset(GroupOffset o) {
  return {std::move(o.group), std::move(o.tq.topic), o.tq.queue_id, o.offset, o.commit_time_ms};
}

}  // namespace

absl::StatusOr<ConsumerOffset> Store::FetchOffset(const std::string& group,
                                                  const std::string& topic,
                                                  int32_t queue_id) const {
  APOGEE_RETURN_IF_ERROR(ValidateGroupName("group", group));
  APOGEE_RETURN_IF_ERROR(CheckQueue("", topic, queue_id));
  APOGEE_ASSIGN_OR_RETURN(GroupOffset offset, index_->FetchOffset(group, {topic, queue_id}));
  return ToConsumerOffset(std::move(offset));
}

absl::StatusOr<std::vector<ConsumerOffset>> Store::ListOffsets(const std::string& group) const {
  if (!group.empty()) APOGEE_RETURN_IF_ERROR(ValidateGroupName("group", group));
  APOGEE_ASSIGN_OR_RETURN(std::vector<GroupOffset> offsets, index_->ListOffsets(group));
  std::vector<ConsumerOffset> out;
  out.reserve(offsets.size());
  for (GroupOffset& o : offsets) out.push_back(ToConsumerOffset(std::move(o)));
  return out;
}

absl::Status Store::DeleteOffsets(const std::string& group) {
  APOGEE_RETURN_IF_ERROR(ValidateGroupName("group", group));
  APOGEE_RETURN_IF_ERROR(index_->DeleteOffsets(group));
  MetaChanged();
  return absl::OkStatus();
}

absl::Status Store::PutTopic(const TopicConfig& topic) {
  APOGEE_RETURN_IF_ERROR(ValidateTopicName("topic.name", topic.name));
  if (topic.queue_count < 1 || topic.queue_count > kMaxQueuesPerTopic) {
    return absl::InvalidArgumentError(absl::StrCat("topic \"", topic.name, "\" queue_count ",
                                                   topic.queue_count, " is out of range [1, ",
                                                   kMaxQueuesPerTopic, "]"));
  }
  APOGEE_RETURN_IF_ERROR(index_->PutConfig(kTopicKind, topic.name, EncodeTopic(topic)));
  {
    absl::MutexLock lock(&mu_);
    topics_[topic.name] = topic;
  }
  MetaChanged();
  return absl::OkStatus();
}

absl::StatusOr<TopicConfig> Store::GetTopic(const std::string& name) const {
  APOGEE_RETURN_IF_ERROR(ValidateTopicName("topic", name));
  TopicConfig topic;
  {
    absl::MutexLock lock(&mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) {
      return absl::NotFoundError(absl::StrCat("topic \"", name, "\" does not exist"));
    }
    topic = it->second;
  }
  topic.incarnation_start = IncarnationStart(name);
  return topic;
}

std::vector<TopicConfig> Store::ListTopics() const {
  std::vector<TopicConfig> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(topics_.size());
    for (const auto& [name, topic] : topics_) out.push_back(topic);
  }
  for (TopicConfig& topic : out) topic.incarnation_start = IncarnationStart(topic.name);
  std::sort(out.begin(), out.end(),
            [](const TopicConfig& a, const TopicConfig& b) { return a.name < b.name; });
  return out;
}

int64_t Store::IncarnationStart(const std::string& name) const {
  const std::optional<TopicTombstone> tombstone = index_->GetTombstone(name);
  return tombstone.has_value() ? tombstone->deleted_below : 0;
}

absl::Status Store::DeleteTopic(const std::string& name) {
  // No append is between validation and the log now: everything the topic
  // holds lies below the written offset.
  absl::WriterMutexLock appends(&append_mu_);
  APOGEE_RETURN_IF_ERROR(GetTopic(name).status());
  TopicTombstone tombstone;
  tombstone.deleted_below = log_->written_offset();
  const std::optional<TopicTombstone> previous = index_->GetTombstone(name);
  tombstone.queue_base = log_->MaxQueueOffset(name, previous ? previous->queue_base : 0);
  APOGEE_RETURN_IF_ERROR(index_->DropTopic(name, tombstone, kTopicKind));
  // Only once the tombstone is durable: on failure the queues go on as they were.
  log_->RebaseTopicQueues(name, tombstone.queue_base);
  {
    absl::MutexLock lock(&mu_);
    topics_.erase(name);
  }
  MetaChanged();
  return absl::OkStatus();
}

absl::Status Store::PutGroup(const std::string& name, const std::string& config) {
  APOGEE_RETURN_IF_ERROR(ValidateGroupName("group", name));
  APOGEE_RETURN_IF_ERROR(index_->PutConfig(kGroupKind, name, config));
  MetaChanged();
  return absl::OkStatus();
}

absl::StatusOr<std::string> Store::GetGroup(const std::string& name) const {
  APOGEE_RETURN_IF_ERROR(ValidateGroupName("group", name));
  absl::StatusOr<std::string> config = index_->GetConfig(kGroupKind, name);
  if (config.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("group \"", name, "\" does not exist"));
  }
  return config;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Store::ListGroups() const {
  return index_->ListConfigs(kGroupKind);
}

absl::Status Store::DeleteGroup(const std::string& name) {
  APOGEE_RETURN_IF_ERROR(GetGroup(name).status());
  APOGEE_RETURN_IF_ERROR(index_->DeleteConfig(kGroupKind, name));
  MetaChanged();
  return absl::OkStatus();
}

void Store::SetTimerCarrier(TimerCarrier* carrier) {
  absl::MutexLock pass(&retention_mu_);  // not while a pass may be using the old one
  timer_carrier_ = carrier;
}

absl::StatusOr<RetentionReport> Store::RunRetention() {
  absl::MutexLock pass(&retention_mu_);
  // A follower never appends: its pending timers pin their segments until
  // the master's moved copies arrive in the log (message-types.md §2.4).
  TimerCarrier* carrier = following() ? nullptr : timer_carrier_;
  absl::StatusOr<RetentionReport> report = apogee::store::RunRetention(
      log_.get(), index_.get(), fs_, clock_, options_.retention, carrier);
  absl::MutexLock lock(&mu_);
  last_retention_error_ = report.status();
  if (report.ok()) {
    retention_deleted_segments_ += report->deleted_segments;
    timers_carried_ += report->timers_carried;
    retention_pinned_segments_ = report->pinned_segments;
  }
  return report;
}

StoreStats Store::Stats() const {
  StoreStats stats;
  stats.log = log_->stats();
  stats.dispatched_offset = index_->dispatched_offset();
  stats.dispatch_error = dispatcher_->last_error();
  stats.queues = static_cast<int>(index_->ListQueues().size());
  stats.index_memory = index_->Memory();
  absl::MutexLock lock(&mu_);
  stats.topics = static_cast<int>(topics_.size());
  stats.retention_deleted_segments = retention_deleted_segments_;
  stats.timers_carried = timers_carried_;
  stats.retention_pinned_segments = retention_pinned_segments_;
  stats.last_retention_error = last_retention_error_;
  return stats;
}

}  // namespace apogee::store
