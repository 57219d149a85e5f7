#include "services/store/commitlog/commit_log.h"

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/common/status/status_macros.h"

namespace apogee::store {
namespace {

constexpr size_t kScanChunkBytes = 1 << 20;

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

absl::Status BelowMinimum(int64_t offset, int64_t min_offset) {
  return absl::OutOfRangeError(absl::StrCat("commit-log offset ", offset,
                                            " is below the log's minimum ", min_offset,
                                            " (older segments were deleted)"));
}

}  // namespace

CommitLog::CommitLog(FileSystem* fs, const Clock* clock, CommitLogOptions options)
    : fs_(fs), clock_(clock), options_(std::move(options)) {}

CommitLog::~CommitLog() = default;

absl::StatusOr<std::unique_ptr<CommitLog>> CommitLog::Open(FileSystem* fs, const Clock* clock,
                                                           CommitLogOptions options) {
  if (options.segment_size < static_cast<int64_t>(options.max_record_size)) {
    return absl::InvalidArgumentError(absl::StrCat("segment size ", options.segment_size,
                                                   " is smaller than the maximum record size ",
                                                   options.max_record_size));
  }
  std::unique_ptr<CommitLog> log(new CommitLog(fs, clock, std::move(options)));
  APOGEE_RETURN_IF_ERROR(log->Recover());
  return log;
}

absl::Status CommitLog::Recover() {
  const std::string& dir = options_.dir;
  APOGEE_RETURN_IF_ERROR(fs_->CreateDirs(dir));
  APOGEE_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir));
  std::vector<int64_t> starts;
  for (const std::string& name : names) {
    if (std::optional<int64_t> start = Segment::ParseFileName(name)) starts.push_back(*start);
  }
  std::sort(starts.begin(), starts.end());
  if (starts.empty()) starts.push_back(0);

  std::vector<std::shared_ptr<Segment>> segments;
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    const std::string path = JoinPath(dir, Segment::FileName(starts[i]));
    APOGEE_ASSIGN_OR_RETURN(const uint64_t size, fs_->FileSize(path));
    const int64_t end = starts[i] + static_cast<int64_t>(size);
    if (end != starts[i + 1]) {
      return absl::DataLossError(absl::StrCat("commit-log segment ", path, " holds ", size,
                                              " bytes, so the log continues at offset ", end,
                                              ", but the next segment starts at ", starts[i + 1]));
    }
    APOGEE_ASSIGN_OR_RETURN(std::shared_ptr<Segment> segment,
                            Segment::Open(fs_, dir, starts[i], size, /*writable=*/false));
    segments.push_back(std::move(segment));
  }
  const int64_t last_start = starts.back();
  APOGEE_ASSIGN_OR_RETURN(std::shared_ptr<Segment> last,
                          Segment::Open(fs_, dir, last_start, /*size=*/0, /*writable=*/true));
  APOGEE_ASSIGN_OR_RETURN(const uint64_t file_size, fs_->FileSize(last->path()));
  const int64_t file_end = last_start + static_cast<int64_t>(file_size);
  segments.push_back(last);
  APOGEE_ASSIGN_OR_RETURN(TailScan scan, ScanTail(*last, file_end));
  recovery_.scanned_bytes = scan.scanned_end - last_start;
  recovery_.truncation_reason = scan.reason;
  // The log's end must be a whole record. When the last segment holds none
  // (corrupt from its first byte, or empty after a crash in a roll), the end
  // is where the segment before it ends, which sealed segments do not prove
  // (only the tail is scanned on open): scan that one too, and cut it when
  // its tail is torn; the segments after it then go.
  size_t tail = segments.size() - 1;
  while (scan.valid_end == segments[tail]->start() && tail > 0) {
    const Segment& previous = *segments[tail - 1];
    APOGEE_ASSIGN_OR_RETURN(TailScan before, ScanTail(previous, previous.end()));
    recovery_.scanned_bytes += before.scanned_end - previous.start();
    if (before.valid_end == previous.end()) {  // it ends on a whole batch
      scan.last_store_timestamp_ms = before.last_store_timestamp_ms;
      break;
    }
    recovery_.truncation_reason = absl::StrCat(
        scan.reason.empty() ? absl::StrCat(segments[tail]->path(), " is empty") : scan.reason,
        "; the segment before it ends inside a record: ", before.reason);
    scan = std::move(before);
    --tail;
  }
  const int64_t valid_end = scan.valid_end;
  if (valid_end < options_.protected_offset) {
    return absl::DataLossError(absl::StrCat(
        "commit log is valid only up to offset ", valid_end, " (", segments[tail]->path(), ": ",
        recovery_.truncation_reason.empty() ? "file ends there" : recovery_.truncation_reason,
        ") but offset ", options_.protected_offset,
        " was acknowledged as durable; refusing to truncate acknowledged data"));
  }
  if (tail + 1 < segments.size()) {
    // Later segments go first: a crash before the cut below leaves a log
    // whose last segment is the torn one, which the next open cuts again.
    for (size_t i = tail + 1; i < segments.size(); ++i) {
      APOGEE_RETURN_IF_ERROR(fs_->DeleteFile(segments[i]->path()));
      absl::StrAppend(&recovery_.truncation_reason, "; removed ", segments[i]->path());
    }
    APOGEE_RETURN_IF_ERROR(fs_->SyncDir(dir));
    const Segment& kept = *segments[tail];
    APOGEE_ASSIGN_OR_RETURN(
        segments[tail],
        Segment::Open(fs_, dir, kept.start(), static_cast<uint64_t>(kept.end() - kept.start()),
                      /*writable=*/true));
    segments.resize(tail + 1);
    last = segments[tail];
  }
  if (valid_end < file_end) {
    recovery_.truncated_bytes = file_end - valid_end;
    APOGEE_RETURN_IF_ERROR(last->TruncateTo(valid_end));
    APOGEE_RETURN_IF_ERROR(last->Sync());
  }
  APOGEE_RETURN_IF_ERROR(fs_->SyncDir(dir));
  last->set_end(valid_end);
  recovery_.segments = static_cast<int>(segments.size());
  const int64_t last_store_timestamp_ms = scan.last_store_timestamp_ms;

  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  active_ = last;
  next_offset_ = valid_end;
  last_store_timestamp_ms_ = last_store_timestamp_ms;
  segments_ = std::move(segments);
  min_offset_ = segments_.front()->start();
  written_offset_ = valid_end;
  flushed_offset_ = valid_end;
  return absl::OkStatus();
}

absl::StatusOr<CommitLog::TailScan> CommitLog::ScanTail(const Segment& segment,
                                                        int64_t file_end) const {
  TailScan scan;
  int64_t offset = segment.start();
  // Where the last complete batch ends: a batch is appended atomically, so
  // whole records of a torn batch are cut too.
  scan.valid_end = offset;
  while (offset < file_end) {
    absl::StatusOr<RecordChunk> chunk =
        ReadChunkFrom(segment, offset, kScanChunkBytes, file_end, options_.max_record_size);
    if (!chunk.ok()) {
      if (chunk.status().code() != absl::StatusCode::kOutOfRange &&
          chunk.status().code() != absl::StatusCode::kDataLoss) {
        return chunk.status();  // an I/O error: do not mistake it for a torn tail
      }
      scan.reason = std::string(chunk.status().message());
      break;
    }
    for (const RecordView& record : chunk->records) {
      if (record.batch_continues()) continue;
      scan.valid_end = record.end_offset();
      scan.last_store_timestamp_ms = record.store_timestamp_ms();
    }
    offset = chunk->end;
  }
  if (scan.valid_end < offset && scan.reason.empty()) {
    scan.reason = absl::StrCat(segment.path(), ": the append batch starting at offset ",
                               scan.valid_end, " is incomplete");
  }
  scan.scanned_end = offset;
  return scan;
}

void CommitLog::RestoreQueueOffsets(
    const std::vector<std::pair<TopicQueue, int64_t>>& next_offsets) {
  absl::MutexLock lock(&write_mu_);
  for (const auto& [tq, next] : next_offsets) next_queue_offset_[tq] = next;
}

int64_t CommitLog::MaxQueueOffset(const std::string& topic, int64_t floor) const {
  absl::MutexLock lock(&write_mu_);
  int64_t max = floor;
  auto base = topic_queue_base_.find(topic);
  if (base != topic_queue_base_.end()) max = std::max(max, base->second);
  for (const auto& [tq, next] : next_queue_offset_) {
    if (tq.topic == topic) max = std::max(max, next);
  }
  return max;
}

void CommitLog::RebaseTopicQueues(const std::string& topic, int64_t base) {
  absl::MutexLock lock(&write_mu_);
  topic_queue_base_[topic] = base;
  // Assigned in place: an unsynced group's undo list points at the counters.
  for (auto& [tq, next] : next_queue_offset_) {
    if (tq.topic == topic) next = base;
  }
}

void CommitLog::SetCommitListener(std::function<void(int64_t)> listener) {
  commit_listener_ = std::move(listener);
}

void CommitLog::SetWriteListener(WriteListener listener) { write_listener_ = std::move(listener); }

absl::StatusOr<std::vector<AppendResult>> CommitLog::Append(const std::vector<RecordInput>& batch) {
  if (batch.empty()) return absl::InvalidArgumentError("append batch is empty");
  Writer w;
  w.batch = &batch;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (absl::Status s = ValidateRecordInput(batch[i]); !s.ok()) {
      return Annotate(s, absl::StrCat("batch record ", i));
    }
    const size_t size = EncodedRecordSize(batch[i]);
    if (size > options_.max_record_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch record ", i, " (topic \"", batch[i].topic, "\") encodes to ", size,
                       " bytes (max record size ", options_.max_record_size, ")"));
    }
    w.bytes += static_cast<int64_t>(size);
  }
  if (w.bytes > options_.segment_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("append batch of ", batch.size(), " records encodes to ", w.bytes,
                     " bytes (max segment size ", options_.segment_size, ")"));
  }

  mu_.Lock();
  writers_.push_back(&w);
  auto my_turn = [this, &w]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // A member of a group that left the queue to sync waits for `done`.
    return w.done || (!writers_.empty() && writers_.front() == &w);
  };
  mu_.Await(absl::Condition(&my_turn));
  if (w.done) {
    mu_.Unlock();
    if (!w.status.ok()) return w.status;
    return std::move(w.results);
  }

  // Leader: take the waiting writers that fit in one segment and one group.
  const int64_t active_start = segments_.back()->start();
  const int64_t used = written_offset_ - active_start;
  const int64_t room = options_.segment_size - used;
  const int64_t cap = std::max(
      w.bytes, std::min(options_.max_group_bytes, w.bytes <= room ? room : options_.segment_size));
  std::vector<Writer*> group = {&w};
  int64_t total = w.bytes;
  for (size_t i = 1; i < writers_.size() && total + writers_[i]->bytes <= cap; ++i) {
    group.push_back(writers_[i]);
    total += writers_[i]->bytes;
  }
  mu_.Unlock();

  const bool sync = options_.flush_mode == FlushMode::kSync;
  std::shared_ptr<UnsyncedGroup> unsynced;
  absl::Status status;
  {
    absl::MutexLock write_lock(&write_mu_);
    status = WriteGroup(group, &unsynced);
  }
  const bool left_queue = sync && status.ok();
  if (left_queue) {
    // Leave the queue first: the next leader writes while we sync.
    {
      absl::MutexLock lock(&mu_);
      for (size_t i = 0; i < group.size(); ++i) writers_.pop_front();
    }
    status = SyncGroup(*unsynced);
  }

  int64_t committed = 0;
  {
    absl::MutexLock lock(&mu_);
    for (Writer* member : group) {
      if (!left_queue) writers_.pop_front();
      member->status = status;
      member->done = true;
    }
    if (!status.ok()) {
      ++stats_.append_errors;
      stats_.last_error = status.ToString();
    }
    committed = sync ? flushed_offset_ : written_offset_;
  }
  if (!status.ok()) return status;
  if (commit_listener_) commit_listener_(committed);
  return std::move(w.results);
}

absl::StatusOr<int64_t> CommitLog::AppendRaw(int64_t start, absl::string_view data) {
  if (data.empty()) return written_offset();
  if (static_cast<int64_t>(data.size()) > options_.segment_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicated chunk of ", data.size(), " bytes at offset ", start,
                     " is larger than a segment (", options_.segment_size, " bytes)"));
  }
  // Parse everything before writing anything.
  std::vector<RecordView> records;
  size_t pos = 0;
  while (pos < data.size()) {
    const int64_t at = start + static_cast<int64_t>(pos);
    absl::StatusOr<RecordView> view =
        RecordView::Parse(data.substr(pos), at, options_.max_record_size);
    if (!view.ok()) {
      return absl::DataLossError(
          absl::StrCat("replicated chunk [", start, ", ", start + static_cast<int64_t>(data.size()),
                       ") is refused: record at offset ", at, ": ", view.status().message()));
    }
    records.push_back(*view);
    pos += view->length();
  }
  const int64_t end = start + static_cast<int64_t>(data.size());
  {
    absl::MutexLock write_lock(&write_mu_);
    if (start != next_offset_) {
      return absl::FailedPreconditionError(absl::StrCat("replicated chunk starts at offset ", start,
                                                        " but the log ends at ", next_offset_));
    }
    if (broken_) APOGEE_RETURN_IF_ERROR(Repair());
    if (active_->sealed() || (next_offset_ > active_->start() &&
                              next_offset_ - active_->start() + static_cast<int64_t>(data.size()) >
                                  options_.segment_size)) {
      APOGEE_RETURN_IF_ERROR(Roll());
    }
    const absl::Status status = active_->Append(data);
    if (!status.ok()) {
      if (!active_->TruncateTo(start).ok()) broken_ = true;
      absl::MutexLock lock(&mu_);
      ++stats_.append_errors;
      stats_.last_error = status.ToString();
      return Annotate(status, absl::StrCat("append of a replicated chunk at offset ", start, " to ",
                                           active_->path(), " failed"));
    }
    for (const RecordView& r : records) {
      next_queue_offset_[TopicQueue{std::string(r.topic()), r.queue_id()}] = r.queue_offset() + 1;
      last_store_timestamp_ms_ = std::max(last_store_timestamp_ms_, r.store_timestamp_ms());
    }
    next_offset_ = end;
    active_->set_end(end);
    if (write_listener_) write_listener_(start, std::make_shared<const std::string>(data));
    absl::MutexLock lock(&mu_);
    written_offset_ = end;
    stats_.appended_records += static_cast<int64_t>(records.size());
    stats_.appended_bytes += end - start;
    ++stats_.group_commits;
  }
  if (options_.flush_mode == FlushMode::kSync) APOGEE_RETURN_IF_ERROR(Flush());
  if (commit_listener_) commit_listener_(committed_offset());
  return end;
}

absl::StatusOr<int64_t> CommitLog::TruncateTo(int64_t offset) {
  absl::MutexLock sync_lock(&sync_mu_);
  absl::MutexLock write_lock(&write_mu_);
  const int64_t end = next_offset_;
  if (offset == end) return 0;
  if (offset > end || offset < min_offset()) {
    return absl::OutOfRangeError(absl::StrCat("cannot truncate the commit log to offset ", offset,
                                              ": it holds [", min_offset(), ", ", end, ")"));
  }
  // A record boundary: a record must start there.
  APOGEE_RETURN_IF_ERROR(ReadRecord(offset).status());
  std::vector<std::shared_ptr<Segment>> doomed;
  std::shared_ptr<Segment> keep;
  {
    absl::MutexLock lock(&mu_);
    while (segments_.size() > 1 && segments_.back()->start() > offset) {
      doomed.push_back(segments_.back());
      segments_.pop_back();
    }
    keep = segments_.back();
  }
  for (const std::shared_ptr<Segment>& segment : doomed) {
    APOGEE_RETURN_IF_ERROR(fs_->DeleteFile(segment->path()));
  }
  if (keep->sealed()) {
    APOGEE_ASSIGN_OR_RETURN(keep, Segment::Open(fs_, options_.dir, keep->start(),
                                                static_cast<uint64_t>(keep->end() - keep->start()),
                                                /*writable=*/true));
  }
  APOGEE_RETURN_IF_ERROR(keep->TruncateTo(offset));
  APOGEE_RETURN_IF_ERROR(keep->Sync());
  APOGEE_RETURN_IF_ERROR(fs_->SyncDir(options_.dir));
  keep->set_end(offset);
  active_ = keep;
  next_offset_ = offset;
  broken_ = false;
  absl::MutexLock lock(&mu_);
  segments_.back() = keep;
  written_offset_ = offset;
  flushed_offset_ = offset;  // the kept segment was synced above
  unsynced_.clear();
  return end - offset;
}

void CommitLog::ResetQueueOffsets(const std::vector<std::pair<TopicQueue, int64_t>>& next_offsets) {
  absl::MutexLock lock(&write_mu_);
  // Assigned in place (never erased): an unsynced group may point at them.
  for (auto& [tq, next] : next_queue_offset_) {
    auto base = topic_queue_base_.find(tq.topic);
    next = base == topic_queue_base_.end() ? 0 : base->second;
  }
  for (const auto& [tq, next] : next_offsets) next_queue_offset_[tq] = next;
}

absl::Status CommitLog::SyncGroup(const UnsyncedGroup& group) {
  absl::MutexLock sync_lock(&sync_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!group.failure.ok()) return group.failure;
    if (flushed_offset_ >= group.end) return absl::OkStatus();  // a later sync covered it
  }
  const absl::Status status = SyncWritten();
  if (status.ok()) return status;
  absl::MutexLock lock(&mu_);
  return group.failure.ok() ? status : group.failure;
}

absl::Status CommitLog::SyncWritten() {
  std::shared_ptr<Segment> segment;
  int64_t end = 0;
  {
    absl::MutexLock lock(&mu_);
    end = written_offset_;
    if (end <= flushed_offset_) return absl::OkStatus();
    // Everything unflushed is in the last segment: a roll syncs the segment
    // it seals.
    segment = segments_.back();
  }
  const absl::Status status = segment->Sync();
  if (!status.ok()) {
    if (options_.flush_mode == FlushMode::kSync) {
      RollBackUnsynced(status);
    } else {
      absl::MutexLock lock(&mu_);
      ++stats_.flush_errors;
      stats_.last_error = status.ToString();
    }
    return Annotate(status, "flush of the commit log failed");
  }
  absl::MutexLock lock(&mu_);
  ++stats_.syncs;
  flushed_offset_ = std::max(flushed_offset_, end);
  while (!unsynced_.empty() && unsynced_.front()->end <= flushed_offset_) unsynced_.pop_front();
  return absl::OkStatus();
}

void CommitLog::RollBackUnsynced(const absl::Status& cause) {
  absl::MutexLock write_lock(&write_mu_);
  int64_t good = 0;
  {
    absl::MutexLock lock(&mu_);
    good = flushed_offset_;
    for (auto it = unsynced_.rbegin(); it != unsynced_.rend(); ++it) {
      UnsyncedGroup& group = **it;
      for (auto u = group.undo.rbegin(); u != group.undo.rend(); ++u) *u->first = u->second;
      group.failure = Annotate(cause, absl::StrCat("sync of the records at commit-log offsets ",
                                                   group.start, "..", group.end, " failed"));
    }
    unsynced_.clear();
    written_offset_ = good;
    ++stats_.flush_errors;
    stats_.last_error = cause.ToString();
  }
  next_offset_ = good;
  active_->set_end(good);
  if (!active_->TruncateTo(good).ok()) broken_ = true;  // the next leader repairs the tail
}

absl::Status CommitLog::WriteGroup(const std::vector<Writer*>& group,
                                   std::shared_ptr<UnsyncedGroup>* unsynced) {
  if (broken_) APOGEE_RETURN_IF_ERROR(Repair());
  int64_t total = 0;
  for (const Writer* member : group) total += member->bytes;
  if (active_->sealed() || (next_offset_ > active_->start() &&
                            next_offset_ - active_->start() + total > options_.segment_size)) {
    APOGEE_RETURN_IF_ERROR(Roll());
  }

  const int64_t group_start = next_offset_;
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  const int64_t store_ms = std::max(now_ms, last_store_timestamp_ms_);  // never goes back
  std::vector<std::pair<int64_t*, int64_t>> undo;
  buffer_.clear();
  buffer_.reserve(static_cast<size_t>(total));  // one allocation when it was handed off
  int64_t offset = group_start;
  int64_t records = 0;
  for (Writer* member : group) {
    member->results.clear();
    const std::vector<RecordInput>& batch = *member->batch;
    for (size_t i = 0; i < batch.size(); ++i) {
      const RecordInput& input = batch[i];
      auto [slot, inserted] =
          next_queue_offset_.try_emplace(TopicQueue{input.topic, input.queue_id}, 0);
      if (inserted && !topic_queue_base_.empty()) {
        auto base = topic_queue_base_.find(input.topic);
        if (base != topic_queue_base_.end()) slot->second = base->second;
      }
      int64_t& counter = slot->second;
      undo.emplace_back(&counter, counter);
      const RecordPosition position{offset, counter++, store_ms, i + 1 < batch.size()};
      const size_t before = buffer_.size();
      EncodeRecord(input, position, &buffer_);
      const auto size = static_cast<uint32_t>(buffer_.size() - before);
      member->results.push_back({offset, position.queue_offset, store_ms, size});
      offset += size;
      ++records;
    }
  }

  const absl::Status status = active_->Append(buffer_);
  if (!status.ok()) {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) *it->first = it->second;
    const absl::Status truncated = active_->TruncateTo(group_start);
    if (!truncated.ok()) broken_ = true;  // the next leader repairs the tail first
    return Annotate(status, absl::StrCat("append of ", records, " records at commit-log offset ",
                                         group_start, " to ", active_->path(), " failed"));
  }

  last_store_timestamp_ms_ = store_ms;
  next_offset_ = offset;
  active_->set_end(offset);
  if (write_listener_) {
    // Hand the encoded group over instead of copying it; the next group
    // encodes into a buffer the listener has let go of.
    auto handed = std::make_shared<std::string>(std::move(buffer_));
    buffer_ = TakeFreeBuffer();
    handed_.push_back(handed);
    write_listener_(group_start, std::move(handed));
  }
  absl::MutexLock lock(&mu_);
  written_offset_ = offset;
  if (options_.flush_mode == FlushMode::kSync) {
    auto group_state = std::make_shared<UnsyncedGroup>();
    group_state->start = group_start;
    group_state->end = offset;
    group_state->undo = std::move(undo);
    unsynced_.push_back(group_state);
    *unsynced = std::move(group_state);
  }
  stats_.appended_records += records;
  stats_.appended_bytes += offset - group_start;
  ++stats_.group_commits;
  return absl::OkStatus();
}

std::string CommitLog::TakeFreeBuffer() {
  for (auto it = handed_.begin(); it != handed_.end(); ++it) {
    if (it->use_count() == 1) {
      // The listener dropped it: its last release pairs with this acquire,
      // so its reads of the bytes happened before we write them again.
      std::atomic_thread_fence(std::memory_order_acquire);
      std::string free = std::move(**it);
      handed_.erase(it);
      free.clear();
      return free;
    }
  }
  if (handed_.size() >= kMaxHandedBuffers) handed_.pop_front();  // still held: let it go
  return std::string();
}

absl::Status CommitLog::Roll() {
  APOGEE_RETURN_IF_ERROR(active_->Seal());
  {
    absl::MutexLock lock(&mu_);
    flushed_offset_ = std::max(flushed_offset_, next_offset_);
  }
  APOGEE_ASSIGN_OR_RETURN(std::shared_ptr<Segment> segment,
                          Segment::Open(fs_, options_.dir, next_offset_, 0, /*writable=*/true));
  APOGEE_RETURN_IF_ERROR(segment->TruncateTo(next_offset_));  // a leftover from a failed roll
  APOGEE_RETURN_IF_ERROR(fs_->SyncDir(options_.dir));
  active_ = segment;
  absl::MutexLock lock(&mu_);
  segments_.push_back(std::move(segment));
  return absl::OkStatus();
}

absl::Status CommitLog::Repair() {
  const absl::Status status = active_->TruncateTo(next_offset_);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("commit log cannot accept appends: its tail at offset ", next_offset_, " in ",
                     active_->path(),
                     " could not be restored after an earlier write failure: ", status.message()));
  }
  broken_ = false;
  return absl::OkStatus();
}

std::shared_ptr<Segment> CommitLog::SegmentFor(int64_t offset) const {
  auto it =
      std::upper_bound(segments_.begin(), segments_.end(), offset,
                       [](int64_t o, const std::shared_ptr<Segment>& s) { return o < s->start(); });
  return it == segments_.begin() ? nullptr : *std::prev(it);
}

absl::StatusOr<std::shared_ptr<Segment>> CommitLog::ReadableSegment(int64_t offset) const {
  absl::MutexLock lock(&mu_);
  if (offset < min_offset_) return BelowMinimum(offset, min_offset_);
  if (offset >= written_offset_) {
    return absl::OutOfRangeError(absl::StrCat("commit-log offset ", offset,
                                              " is at or past the log's end ", written_offset_));
  }
  return SegmentFor(offset);
}

absl::StatusOr<StoredRecord> CommitLog::ReadRecord(int64_t offset, uint32_t size_hint) const {
  APOGEE_ASSIGN_OR_RETURN(std::shared_ptr<Segment> segment, ReadableSegment(offset));
  const size_t available = static_cast<size_t>(segment->end() - offset);
  size_t want = std::min<size_t>(size_hint > 0 ? size_hint : kRecordHeaderSize, available);
  std::string bytes(want, '\0');
  APOGEE_ASSIGN_OR_RETURN(absl::string_view data, segment->Read(offset, want, bytes.data()));
  if (data.size() >= 4) {
    const size_t length = RecordView::PeekLength(data);
    if (length > data.size() && length <= available && length <= options_.max_record_size) {
      bytes.resize(length);
      APOGEE_ASSIGN_OR_RETURN(data, segment->Read(offset, length, bytes.data()));
    }
  }
  absl::StatusOr<RecordView> view = RecordView::Parse(data, offset, options_.max_record_size);
  if (!view.ok()) {
    return absl::DataLossError(
        absl::StrCat("no valid record in ", segment->path(), ": ", view.status().message()));
  }
  bytes.resize(view->length());
  return StoredRecord(std::move(bytes));
}

absl::StatusOr<std::vector<StoredRecord>> CommitLog::ReadRecords(
    int64_t offset, absl::Span<const uint32_t> sizes) const {
  APOGEE_ASSIGN_OR_RETURN(std::shared_ptr<Segment> segment, ReadableSegment(offset));
  const int64_t available = segment->end() - offset;
  size_t count = 0;
  int64_t want = 0;
  while (count < sizes.size() && want + sizes[count] <= available) want += sizes[count++];
  std::string bytes(static_cast<size_t>(want), '\0');
  absl::string_view data;
  if (want > 0) {
    APOGEE_ASSIGN_OR_RETURN(data, segment->Read(offset, static_cast<size_t>(want), bytes.data()));
  }
  std::vector<StoredRecord> records;
  records.reserve(count);
  size_t pos = 0;
  for (size_t i = 0; i < count && pos + sizes[i] <= data.size(); pos += sizes[i++]) {
    absl::StatusOr<RecordView> view = RecordView::Parse(
        data.substr(pos, sizes[i]), offset + static_cast<int64_t>(pos), options_.max_record_size);
    if (!view.ok() || view->length() != sizes[i]) break;
    records.emplace_back(std::string(data.substr(pos, sizes[i])));
  }
  if (records.empty()) {  // the first did not fit or verify: ReadRecord says why
    APOGEE_ASSIGN_OR_RETURN(StoredRecord record, ReadRecord(offset, sizes.empty() ? 0 : sizes[0]));
    records.push_back(std::move(record));
  }
  return records;
}

absl::StatusOr<RecordChunk> CommitLog::ReadChunkFrom(const Segment& segment, int64_t offset,
                                                     size_t max_bytes, int64_t limit,
                                                     uint32_t max_record_size) {
  RecordChunk chunk;
  chunk.start = chunk.end = offset;
  chunk.data = std::make_unique<std::string>();
  if (offset >= limit) return chunk;
  size_t want = std::min<size_t>(std::max<size_t>(max_bytes, kRecordHeaderSize), limit - offset);
  chunk.data->resize(want);
  APOGEE_ASSIGN_OR_RETURN(absl::string_view data, segment.Read(offset, want, chunk.data->data()));
  if (data.size() >= 4 && RecordView::PeekLength(data) > data.size() &&
      RecordView::PeekLength(data) <= std::min<int64_t>(limit - offset, max_record_size)) {
    want = RecordView::PeekLength(data);  // the first record alone exceeds max_bytes
    chunk.data->resize(want);
    APOGEE_ASSIGN_OR_RETURN(data, segment.Read(offset, want, chunk.data->data()));
  }
  size_t pos = 0;
  while (pos < data.size()) {
    absl::StatusOr<RecordView> view =
        RecordView::Parse(data.substr(pos), offset + static_cast<int64_t>(pos), max_record_size);
    if (!view.ok()) {
      // Return the good records; the next call, starting at this record,
      // reads more bytes or reports the problem.
      if (!chunk.records.empty()) break;
      return absl::Status(view.status().code(),
                          absl::StrCat(segment.path(), ": ", view.status().message()));
    }
    chunk.records.push_back(*view);
    pos += view->length();
  }
  chunk.end = offset + static_cast<int64_t>(pos);
  return chunk;
}

absl::StatusOr<RecordChunk> CommitLog::ReadChunk(int64_t offset, size_t max_bytes,
                                                 int64_t limit) const {
  std::shared_ptr<Segment> segment;
  {
    absl::MutexLock lock(&mu_);
    if (offset < min_offset_) return BelowMinimum(offset, min_offset_);
    limit = std::min(limit, written_offset_);
    if (offset >= limit) {
      RecordChunk empty;
      empty.start = empty.end = offset;
      empty.data = std::make_unique<std::string>();
      return empty;
    }
    segment = SegmentFor(offset);
  }
  absl::StatusOr<RecordChunk> chunk = ReadChunkFrom(
      *segment, offset, max_bytes, std::min(limit, segment->end()), options_.max_record_size);
  if (!chunk.ok() && chunk.status().code() == absl::StatusCode::kOutOfRange) {
    // Limits are record boundaries, so a record cut short there is corrupt.
    return absl::DataLossError(chunk.status().message());
  }
  return chunk;
}

absl::Status CommitLog::Flush() {
  absl::MutexLock sync_lock(&sync_mu_);
  return SyncWritten();
}

absl::StatusOr<int> CommitLog::DeleteSegmentsBefore(int64_t offset) {
  std::vector<std::shared_ptr<Segment>> doomed;
  {
    absl::MutexLock lock(&mu_);
    while (segments_.size() > 1 && segments_.front()->end() <= offset) {
      doomed.push_back(segments_.front());
      segments_.erase(segments_.begin());
    }
    min_offset_ = segments_.front()->start();
  }
  absl::Status status;
  for (const std::shared_ptr<Segment>& segment : doomed) {
    status.Update(fs_->DeleteFile(segment->path()));
  }
  if (!doomed.empty()) status.Update(fs_->SyncDir(options_.dir));
  if (!status.ok()) return status;
  return static_cast<int>(doomed.size());
}

std::vector<SegmentInfo> CommitLog::ListSegments() const {
  absl::MutexLock lock(&mu_);
  std::vector<SegmentInfo> out;
  for (size_t i = 0; i < segments_.size(); ++i) {
    out.push_back({segments_[i]->start(), segments_[i]->end(), i + 1 == segments_.size(),
                   segments_[i]->path()});
  }
  return out;
}

int64_t CommitLog::min_offset() const {
  absl::MutexLock lock(&mu_);
  return min_offset_;
}

int64_t CommitLog::written_offset() const {
  absl::MutexLock lock(&mu_);
  return written_offset_;
}

int64_t CommitLog::flushed_offset() const {
  absl::MutexLock lock(&mu_);
  return flushed_offset_;
}

int64_t CommitLog::committed_offset() const {
  absl::MutexLock lock(&mu_);
  return options_.flush_mode == FlushMode::kSync ? flushed_offset_ : written_offset_;
}

CommitLogStats CommitLog::stats() const {
  absl::MutexLock lock(&mu_);
  CommitLogStats stats = stats_;
  stats.min_offset = min_offset_;
  stats.written_offset = written_offset_;
  stats.flushed_offset = flushed_offset_;
  stats.segments = static_cast<int>(segments_.size());
  stats.pending_appends = static_cast<int>(writers_.size());
  return stats;
}

}  // namespace apogee::store
