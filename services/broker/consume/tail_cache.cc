#include "services/broker/consume/tail_cache.h"

#include <algorithm>

namespace apogee::broker {
namespace {

// The store keeps milliseconds: a copy must read back as the store's would.
google::protobuf::Timestamp ToMillis(const google::protobuf::Timestamp& t) {
  google::protobuf::Timestamp out;
  out.set_seconds(t.seconds());
  out.set_nanos(t.nanos() / 1'000'000 * 1'000'000);
  return out;
}

// The record as a store read returns it (services/store record_codec ToProto).
store::v1::StoredRecord ToStored(const store::v1::AppendRecord& in,
                                 const store::v1::AppendResult& result) {
  store::v1::StoredRecord out;
  out.set_topic(in.topic());
  out.set_queue_id(in.queue_id());
  out.set_queue_offset(result.queue_offset());
  out.set_commit_log_offset(result.commit_log_offset());
  out.set_message_id(in.message_id());
  *out.mutable_keys() = in.keys();
  out.set_tag(in.tag());
  if (in.has_born_time()) {
    google::protobuf::Timestamp born = ToMillis(in.born_time());
    if (born.seconds() != 0 || born.nanos() != 0) *out.mutable_born_time() = born;
  }
  *out.mutable_store_time() = result.store_time();
  out.set_flags(in.flags());
  out.set_body(in.body());
  return out;
}

}  // namespace

TailCache::TailCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

void TailCache::Want(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  wanted_.insert(topic);
}

bool TailCache::Wants(const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  return live_ && wanted_.count(topic) > 0;
}

uint64_t TailCache::Epoch() const {
  absl::MutexLock lock(&mu_);
  return epoch_;
}

int64_t TailCache::SizeOf(const store::v1::StoredRecord& record) {
  int64_t size =
      kRecordOverhead + static_cast<int64_t>(record.body().size() + record.message_id().size() +
                                             record.tag().size() + record.topic().size());
  for (const std::string& key : record.keys()) size += static_cast<int64_t>(key.size());
  return size;
}

void TailCache::Insert(uint64_t epoch, const std::vector<store::v1::AppendRecord>& records,
                       const std::vector<store::v1::AppendResult>& results) {
  absl::MutexLock lock(&mu_);
  if (epoch != epoch_ || !live_) return;
  for (size_t i = 0; i < records.size() && i < results.size(); ++i) {
    const store::v1::AppendRecord& record = records[i];
    if (record.kind() != store::v1::RECORD_NORMAL || wanted_.count(record.topic()) == 0) continue;
    std::unique_ptr<Queue>& slot = queues_[QueueKey(record.topic(), record.queue_id())];
    if (slot == nullptr) slot = std::make_unique<Queue>();
    const int64_t offset = results[i].queue_offset();
    auto [it, added] = slot->records.try_emplace(offset);
    if (!added) {
      // The store gave out this offset twice: it lost a tail and reused its
      // offsets, so no copy here can be trusted any more.
      ClearLocked();
      return;
    }
    it->second = ToStored(record, results[i]);
    bytes_ += SizeOf(it->second);
    slot->end = std::max(slot->end, offset + 1);
    order_.emplace_back(slot.get(), offset);
  }
  EvictLocked();
}

void TailCache::EvictLocked() {
  while (bytes_ > max_bytes_ && !order_.empty()) {
    auto [queue, offset] = order_.front();
    order_.pop_front();
    auto it = queue->records.find(offset);
    if (it == queue->records.end()) continue;  // dropped already
    bytes_ -= SizeOf(it->second);
    queue->records.erase(it);
  }
}

std::optional<store::v1::ReadResponse> TailCache::Read(const store::v1::ReadRequest& request) {
  absl::MutexLock lock(&mu_);
  if (!live_) return std::nullopt;
  auto slot = queues_.find(QueueKey(request.topic(), request.queue_id()));
  if (slot == queues_.end()) return std::nullopt;
  const Queue& queue = *slot->second;
  auto it = queue.records.find(request.offset());
  if (it == queue.records.end()) return std::nullopt;
  // The store's defaults for unset limits (Read's 32 records and 4 MiB).
  const int max_messages = request.max_messages() > 0 ? request.max_messages() : 32;
  const int64_t max_bytes = request.max_bytes() > 0 ? request.max_bytes() : int64_t{4} << 20;
  store::v1::ReadResponse out;
  int64_t next = request.offset();
  int64_t bytes = 0;
  for (; it != queue.records.end() && it->first == next; ++it) {
    const store::v1::StoredRecord& record = it->second;
    if (request.tags_size() > 0 && std::find(request.tags().begin(), request.tags().end(),
                                             record.tag()) == request.tags().end()) {
      ++next;  // skipped, as the store skips it
      continue;
    }
    const auto size = static_cast<int64_t>(record.body().size());
    if (out.records_size() == max_messages ||
        (out.records_size() > 0 && bytes + size > max_bytes)) {
      break;
    }
    *out.add_records() = record;
    bytes += size;
    ++next;
  }
  out.set_next_offset(next);
  out.set_min_offset(queue.records.begin()->first);
  out.set_max_offset(queue.end);
  ++hits_;
  return out;
}

void TailCache::SetLive(bool live) {
  absl::MutexLock lock(&mu_);
  if (live == live_) return;
  live_ = live;
  ClearLocked();
}

void TailCache::Clear() {
  absl::MutexLock lock(&mu_);
  ClearLocked();
}

void TailCache::EmptyLocked(Queue* queue) {
  for (const auto& [offset, record] : queue->records) bytes_ -= SizeOf(record);
  queue->records.clear();
  queue->end = 0;
}

void TailCache::ClearLocked() {
  for (auto& [key, queue] : queues_) EmptyLocked(queue.get());
  order_.clear();
  ++epoch_;
}

void TailCache::DropTopic(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  for (auto it = queues_.lower_bound(QueueKey(topic, INT32_MIN));
       it != queues_.end() && it->first.first == topic; ++it) {
    EmptyLocked(it->second.get());
  }
  ++epoch_;  // appends of the old topic still on their way stay out
}

int64_t TailCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

int64_t TailCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

}  // namespace apogee::broker
