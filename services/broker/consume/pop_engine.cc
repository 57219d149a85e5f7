#include "services/broker/consume/pop_engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/clock/proto_time.h"
#include "services/common/status/status_macros.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

// Body bytes one pop's store read returns at most (besides one larger
// record).
constexpr int64_t kPopReadBytes = 16 << 20;

// Calls one ack batch makes at most for the commits of its cursors.
constexpr int kCommitRounds = 4;

absl::Status StaleHandle(const std::string& handle) {
  return WithV2Code(absl::InvalidArgumentError(
                        absl::StrCat("receipt handle \"", handle,
                                     "\" is not in flight (already acked, expired, or replaced)")),
                    v2::INVALID_RECEIPT_HANDLE);
}

}  // namespace

PopEngine::PopEngine(StoreClient* store, TopicManager* topics, const Clock* clock,
                     PopOptions options)
    : store_(store),
      topics_(topics),
      clock_(clock),
      options_(options),
      // Delivery ids start at the clock so handles from before a restart
      // never match a new delivery.
      next_delivery_id_(static_cast<uint64_t>(absl::ToUnixMicros(clock->Now()))) {}

PopEngine::Cursor* PopEngine::GetCursor(const std::string& group, const std::string& topic,
                                        int32_t queue) {
  absl::MutexLock lock(&mu_);
  auto& slot = cursors_[CursorKey(group, topic, queue)];
  if (slot == nullptr) {
    slot = std::make_unique<Cursor>();
    if (options_.tail != nullptr) options_.tail->Want(topic);
  }
  return slot.get();
}

absl::Status PopEngine::LoadCursor(const std::string& group, const std::string& topic,
                                   int32_t queue, Cursor* cursor) {
  if (cursor->loaded) return absl::OkStatus();
  auto committed = store_->FetchOffset(group, topic, queue);
  if (committed.ok()) {
    cursor->next_offset = *committed;
    cursor->committed = *committed;
  } else if (committed.status().code() == absl::StatusCode::kNotFound) {
    APOGEE_ASSIGN_OR_RETURN(auto offsets, store_->GetQueueOffsets(topic, queue));
    const bool earliest = options_.new_group_from_earliest || IsRetryTopic(topic);
    cursor->next_offset = earliest ? offsets.min_offset() : offsets.max_offset();
    cursor->committed = -1;
  } else {
    return committed.status();
  }
  cursor->loaded = true;
  return absl::OkStatus();
}

absl::Status PopEngine::Advance(const std::string& group, const std::string& topic, int32_t queue,
                                Cursor* cursor) {
  const int64_t low = cursor->Low();
  // An ack batch's commit in flight commits this too once it is back.
  if (low <= cursor->committed || cursor->committing) return absl::OkStatus();
  APOGEE_RETURN_IF_ERROR(store_->CommitOffset(group, topic, queue, low));
  cursor->committed = low;
  return absl::OkStatus();
}

store::v1::ReadRequest PopEngine::QueueRead(const std::string& topic, int32_t queue, int64_t offset,
                                            int max_messages, const MessageFilter& filter) {
  store::v1::ReadRequest request;
  request.set_topic(topic);
  request.set_queue_id(queue);
  request.set_offset(offset);
  request.set_max_messages(filter.RecordsToRead(max_messages));
  request.set_max_bytes(kPopReadBytes);
  filter.NarrowRead(&request);
  return request;
}

absl::StatusOr<store::v1::ReadResponse> PopEngine::ReadFrom(const std::string& topic, int32_t queue,
                                                            int64_t offset, int max_messages,
                                                            const MessageFilter& filter) {
  store::v1::ReadRequest request = QueueRead(topic, queue, offset, max_messages, filter);
  if (auto cached = ReadTail(request)) return *std::move(cached);
  store_reads_.fetch_add(1, std::memory_order_relaxed);
  auto response = store_->Read(request);
  if (!response.ok() && response.status().code() == absl::StatusCode::kOutOfRange) {
    return ReadFromOldest(std::move(request));
  }
  return response;
}

std::optional<store::v1::ReadResponse> PopEngine::ReadTail(const store::v1::ReadRequest& request) {
  if (options_.tail == nullptr) return std::nullopt;
  return options_.tail->Read(request);
}

absl::StatusOr<store::v1::ReadResponse> PopEngine::ReadFromOldest(store::v1::ReadRequest request) {
  // Retention removed what we were about to read: continue from the oldest.
  APOGEE_ASSIGN_OR_RETURN(auto offsets,
                          store_->GetQueueOffsets(request.topic(), request.queue_id()));
  request.set_offset(std::max(request.offset(), offsets.min_offset()));
  store_reads_.fetch_add(1, std::memory_order_relaxed);
  return store_->Read(request);
}

std::string PopEngine::HandOut(const std::string& topic, int32_t queue, int64_t offset,
                               absl::Duration invisible, Cursor* cursor) {
  uint64_t delivery_id;
  {
    absl::MutexLock ids(&mu_);
    delivery_id = ++next_delivery_id_;
  }
  cursor->in_flight[offset] = InFlightEntry{delivery_id, clock_->Now() + invisible};
  return ReceiptHandle{topic, queue, offset, delivery_id}.Encode();
}

void PopEngine::HandOutDecoded(const std::string& topic, int32_t queue, int64_t offset,
                               absl::Duration invisible, Cursor* cursor, v2::Message* message) {
  v2::SystemProperties* sp = message->mutable_system_properties();
  sp->set_receipt_handle(HandOut(topic, queue, offset, invisible, cursor));
  ToProtoDuration(invisible, sp->mutable_invisible_duration());
}

absl::Status PopEngine::PopQueue(const std::string& group, const std::string& topic, int32_t queue,
                                 const MessageFilter& filter, int max_messages,
                                 absl::Duration invisible, bool ordered, Popped* out,
                                 bool* drained) {
  Cursor* cursor = GetCursor(group, topic, queue);
  absl::MutexLock lock(&cursor->mu);
  APOGEE_RETURN_IF_ERROR(LoadCursor(group, topic, queue, cursor));
  // Sticky until the cursor reloads: its waiting messages must stay ordered.
  if (ordered) cursor->ordered = true;
  if (cursor->ordered) {
    APOGEE_RETURN_IF_ERROR(
        PopOrdered(topic, queue, filter, max_messages, invisible, cursor, out, drained));
    return Advance(group, topic, queue, cursor);
  }

  APOGEE_ASSIGN_OR_RETURN(store::v1::ReadResponse response,
                          ReadFrom(topic, queue, cursor->next_offset, max_messages, filter));
  return TakeRead(group, topic, queue, filter, max_messages, invisible, &response, cursor, out,
                  drained);
}

absl::Status PopEngine::TakeRead(const std::string& group, const std::string& topic, int32_t queue,
                                 const MessageFilter& filter, int max_messages,
                                 absl::Duration invisible, store::v1::ReadResponse* response,
                                 Cursor* cursor, Popped* out, bool* drained, bool commit) {
  const bool retry = IsRetryTopic(topic);
  // A topic record needs decoding only for a SQL filter: it holds no
  // internal property and is on its first delivery.
  const bool stored = out->take_stored && !retry && filter.by_tag_only();
  int64_t next_offset = response->next_offset();
  int popped = 0;
  for (store::v1::StoredRecord& record : *response->mutable_records()) {
    if (popped == max_messages) {  // read ahead for a filter: resume here
      next_offset = record.queue_offset();
      *drained = false;
      break;
    }
    if (stored) {
      if (!filter.MatchesTag(record.tag())) continue;  // consumed: not for this subscription
      ++popped;
      std::string handle = HandOut(topic, queue, record.queue_offset(), invisible, cursor);
      out->stored.push_back(StoredDelivery{std::move(record), std::move(handle)});
      continue;
    }
    auto message = FromStoreRecord(record);
    if (!message.ok()) continue;  // never serve what does not decode
    if (retry && RetriesDeletedTopic(record, *message)) continue;  // consumed: its topic is gone
    if (!filter.Matches(*message)) continue;  // consumed: not for this subscription
    ++popped;
    HandOutDecoded(topic, queue, record.queue_offset(), invisible, cursor, &*message);
    out->messages.push_back(std::move(message).value());
  }
  cursor->next_offset = std::max(cursor->next_offset, next_offset);
  cursor->known_end = std::max(cursor->known_end, response->max_offset());
  if (response->next_offset() < response->max_offset()) *drained = false;
  if (!commit) return absl::OkStatus();
  return Advance(group, topic, queue, cursor);  // filtered-out records count as consumed
}

namespace {
// Records one FIFO store read covers: new records past the scan frontier, or
// waiting messages read back (those within this many offsets of the lowest).
constexpr int kFifoReadSpan = 256;
}  // namespace

bool PopEngine::HasRoom(int64_t bytes, const Cursor& cursor) const {
  return cursor.held_bytes + bytes <= options_.fifo_held_bytes;
}

void PopEngine::Keep(int64_t offset, int64_t bytes, v2::Message message, Cursor* cursor) {
  if (!HasRoom(bytes, *cursor)) return;
  cursor->held_bytes += bytes;
  cursor->held[offset] = {std::move(message), bytes};
}

std::map<int64_t, v2::Message> PopEngine::TakePicked(const std::string& topic, int32_t queue,
                                                     const std::vector<FifoState::Pick>& picks,
                                                     Cursor* cursor) {
  std::map<int64_t, v2::Message> out;
  std::vector<int64_t> missing;  // ascending, as the picks
  for (const FifoState::Pick& pick : picks) {
    auto it = cursor->held.find(pick.offset);
    if (it == cursor->held.end()) {
      missing.push_back(pick.offset);
      continue;
    }
    cursor->held_bytes -= it->second.second;
    out[pick.offset] = std::move(it->second.first);
    cursor->held.erase(it);
  }
  // Not kept (over the budget, or released after a delivery): one read per
  // run of picks within kFifoReadSpan offsets, not one per message.
  size_t i = 0;
  while (i < missing.size()) {
    size_t end = i;
    while (end < missing.size() && missing[end] - missing[i] < kFifoReadSpan) ++end;
    const int span = static_cast<int>(missing[end - 1] - missing[i] + 1);
    auto response = ReadFrom(topic, queue, missing[i], span, MessageFilter());
    size_t next = i;
    if (response.ok()) {
      auto record = response->records().begin();
      for (; next < end && missing[next] < response->next_offset(); ++next) {
        const int64_t offset = missing[next];
        while (record != response->records().end() && record->queue_offset() < offset) ++record;
        auto message = absl::StatusOr<v2::Message>(absl::NotFoundError("gone"));
        if (record != response->records().end() && record->queue_offset() == offset) {
          message = FromStoreRecord(*record);
        }
        if (message.ok()) {
          out[offset] = std::move(message).value();
        } else {
          cursor->fifo.Done(offset);  // retention took it, or undecodable: nothing to deliver
        }
      }
    }
    if (next == i) {  // store trouble: these wait again, try next pop
      for (; next < end; ++next) cursor->fifo.Release(missing[next]);
    }
    i = next;  // a read stopped short (max_bytes) continues from there
  }
  return out;
}

absl::Status PopEngine::PopOrdered(const std::string& topic, int32_t queue,
                                   const MessageFilter& filter, int max_messages,
                                   absl::Duration invisible, Cursor* cursor, Popped* out,
                                   bool* drained) {
  int handed = 0;
  // 1. Redeliveries and held-back messages whose group is free, first.
  const std::vector<FifoState::Pick> picks = cursor->fifo.PickWaiting(max_messages);
  std::map<int64_t, v2::Message> picked = TakePicked(topic, queue, picks, cursor);
  for (const FifoState::Pick& pick : picks) {
    auto it = picked.find(pick.offset);
    if (it == picked.end()) continue;  // gone, or waits again
    it->second.mutable_system_properties()->set_delivery_attempt(pick.attempt);
    HandOutDecoded(topic, queue, pick.offset, invisible, cursor, &it->second);
    out->messages.push_back(std::move(it->second));
    ++handed;
  }
  // 2. New messages, within the window past the lowest one not done.
  const int64_t room =
      options_.fifo_window - (cursor->next_offset - cursor->fifo.Low(cursor->next_offset));
  if (handed >= max_messages || room <= 0) {
    if (handed >= max_messages || cursor->fifo.ready() > 0) *drained = false;
    return absl::OkStatus();
  }
  const int batch = static_cast<int>(std::min<int64_t>(room, kFifoReadSpan));
  APOGEE_ASSIGN_OR_RETURN(store::v1::ReadResponse response,
                          ReadFrom(topic, queue, cursor->next_offset, batch, filter));
  int64_t next = std::max(cursor->next_offset, response.next_offset());
  for (const store::v1::StoredRecord& record : response.records()) {
    auto message = FromStoreRecord(record);
    if (!message.ok()) continue;              // never serve what does not decode
    if (!filter.Matches(*message)) continue;  // consumed: never offered, so never waited on
    const v2::SystemProperties& sp = message->system_properties();
    const uint64_t group =
        sp.has_message_group() ? MessageGroupHash(sp.message_group()) : kNoMessageGroup;
    const auto bytes = static_cast<int64_t>(record.body().size());
    if (handed >= max_messages) {
      // The pop is full: the rest of the read waits, kept so it is not read
      // again, while the copies fit their budget.
      if (!HasRoom(bytes, *cursor)) {
        next = record.queue_offset();  // the rest is read again next pop
        break;
      }
      cursor->fifo.Hold(record.queue_offset(), group);
      Keep(record.queue_offset(), bytes, std::move(message).value(), cursor);
      continue;
    }
    if (!cursor->fifo.Offer(record.queue_offset(), group)) {  // waits behind its group
      Keep(record.queue_offset(), bytes, std::move(message).value(), cursor);
      continue;
    }
    HandOutDecoded(topic, queue, record.queue_offset(), invisible, cursor, &*message);
    out->messages.push_back(std::move(message).value());
    ++handed;
  }
  cursor->next_offset = next;
  if (response.next_offset() < response.max_offset() || next < response.next_offset() ||
      cursor->fifo.ready() > 0) {
    *drained = false;
  }
  return absl::OkStatus();
}

bool PopEngine::IsOrdered(const std::string& group, const TopicConfig& config) const {
  return config.message_type() == nameserver::v1::TOPIC_MESSAGE_TYPE_FIFO && options_.fifo_group &&
         options_.fifo_group(group);
}

void PopEngine::Unblocked(const std::string& topic) const {
  if (options_.fifo_unblocked) options_.fifo_unblocked(topic);
}

bool PopEngine::RetriesDeletedTopic(const store::v1::StoredRecord& record,
                                    const v2::Message& message) const {
  // FromStoreRecord named the message after its original topic. Revived
  // before the delete means stored below the new incarnation's start: both
  // live in this broker's one commit log.
  return message.topic().name() != record.topic() &&
         topics_->IsFromDeletedTopic(message.topic().name(), record.commit_log_offset());
}

absl::StatusOr<std::vector<v2::Message>> PopEngine::Pop(
    const std::string& group, const std::string& topic, const MessageFilter& filter,
    int max_messages, absl::Duration invisible, const std::vector<int32_t>* queues, bool* drained) {
  if (drained != nullptr) *drained = false;
  APOGEE_ASSIGN_OR_RETURN(TopicConfig config, topics_->Get(topic));
  Scope scope;
  scope.retry = true;
  for (int32_t q = 0; q < config.read_queues(); ++q) {
    if (queues == nullptr || std::find(queues->begin(), queues->end(), q) != queues->end()) {
      scope.queues.push_back(q);
    }
  }
  Unread unread;
  APOGEE_ASSIGN_OR_RETURN(Popped out,
                          PopScoped(group, topic, filter, max_messages, invisible, scope, &unread));
  if (drained != nullptr) *drained = unread.queues.empty() && !unread.retry;
  return std::move(out.messages);
}

absl::StatusOr<PopEngine::Popped> PopEngine::PopScoped(const std::string& group,
                                                       const std::string& topic,
                                                       const MessageFilter& filter,
                                                       int max_messages, absl::Duration invisible,
                                                       const Scope& scope, Unread* unread) {
  APOGEE_ASSIGN_OR_RETURN(TopicConfig config, topics_->Get(topic));
  Popped out;
  unread->queues.clear();
  unread->retry = false;
  std::vector<int32_t> chosen;  // the scope's queues this topic has
  for (int32_t q : scope.queues) {
    if (q >= 0 && q < config.read_queues()) chosen.push_back(q);
  }
  if (scope.memory_only) {
    unread->retry = scope.retry;  // the retry topic is read from the store
    out.take_stored = scope.stored;
    APOGEE_RETURN_IF_ERROR(
        PopFromMemory(group, topic, config, filter, max_messages, invisible, chosen, &out, unread));
    return out;
  }
  // Retries first: they are older than anything new in the topic.
  auto retry = scope.retry ? topics_->Get(RetryTopic(group))
                           : absl::StatusOr<TopicConfig>(absl::NotFoundError("not in scope"));
  if (retry.ok()) {
    for (int32_t q = 0; q < retry->read_queues(); ++q) {
      if (out.count() >= max_messages) {
        unread->retry = true;
        break;
      }
      // A group has one retry topic for all its topics; each retried message
      // is delivered under its original topic name (decoded, always).
      bool drained = true;
      APOGEE_RETURN_IF_ERROR(PopQueue(group, RetryTopic(group), q, filter,
                                      max_messages - out.count(), invisible,
                                      /*ordered=*/false, &out, &drained));
      unread->retry |= !drained;
    }
  }
  out.take_stored = scope.stored;
  const bool ordered = IsOrdered(group, config);
  const size_t count = chosen.size();
  static std::atomic<uint32_t> rotation{0};
  const uint32_t start = count == 0 ? 0 : rotation++;
  std::vector<int32_t> rotated;
  for (size_t i = 0; i < count; ++i) rotated.push_back(chosen[(start + i) % count]);
  if (!ordered && rotated.size() > 1 && out.count() < max_messages) {
    APOGEE_ASSIGN_OR_RETURN(rotated, PopTogether(group, topic, filter, max_messages, invisible,
                                                 rotated, /*memory_only=*/false, &out, unread));
  }
  for (const int32_t q : rotated) {
    if (out.count() >= max_messages) {
      unread->queues.push_back(q);
      continue;
    }
    bool drained = true;
    APOGEE_RETURN_IF_ERROR(PopQueue(group, topic, q, filter, max_messages - out.count(), invisible,
                                    ordered, &out, &drained));
    if (!drained) unread->queues.push_back(q);
  }
  return out;
}

absl::Status PopEngine::PopFromMemory(const std::string& group, const std::string& topic,
                                      const TopicConfig& config, const MessageFilter& filter,
                                      int max_messages, absl::Duration invisible,
                                      const std::vector<int32_t>& queues, Popped* out,
                                      Unread* unread) {
  // FIFO topics decide per message group, with store reads: not here.
  if (options_.tail == nullptr ||
      config.message_type() == nameserver::v1::TOPIC_MESSAGE_TYPE_FIFO) {
    unread->queues = queues;
    return absl::OkStatus();
  }
  APOGEE_ASSIGN_OR_RETURN(std::vector<int32_t> rest,
                          PopTogether(group, topic, filter, max_messages, invisible, queues,
                                      /*memory_only=*/true, out, unread));
  unread->queues.insert(unread->queues.end(), rest.begin(), rest.end());
  return absl::OkStatus();
}

std::vector<int32_t> PopEngine::LockFree(const std::string& group, const std::string& topic,
                                         const std::vector<int32_t>& queues, int wanted,
                                         bool memory_only,
                                         std::vector<std::pair<int32_t, Cursor*>>* locked) {
  std::vector<int32_t> rest;
  int64_t known = 0;  // records the locked queues hold for sure
  for (const int32_t q : queues) {
    if (known >= wanted) {
      // Enough for this pop (a backlog): the rest stays free for other
      // pops and acks, and is read next time.
      rest.push_back(q);
      continue;
    }
    Cursor* cursor = GetCursor(group, topic, q);
    // Never waits: a cursor another pop or ack holds is read alone after.
    if (!cursor->mu.TryLock()) {
      rest.push_back(q);
      continue;
    }
    if ((memory_only && !cursor->loaded) || !LoadCursor(group, topic, q, cursor).ok() ||
        cursor->ordered) {
      cursor->mu.Unlock();
      rest.push_back(q);
      continue;
    }
    locked->emplace_back(q, cursor);
    known += std::max<int64_t>(0, cursor->known_end - cursor->next_offset);
  }
  return rest;
}

absl::StatusOr<std::vector<int32_t>> PopEngine::PopTogether(
    const std::string& group, const std::string& topic, const MessageFilter& filter,
    int max_messages, absl::Duration invisible, const std::vector<int32_t>& queues,
    bool memory_only, Popped* out, Unread* unread) {
  std::vector<std::pair<int32_t, Cursor*>> cursors;
  std::vector<int32_t> rest =
      LockFree(group, topic, queues, max_messages - out->count(), memory_only, &cursors);
  struct Unlock {
    std::vector<std::pair<int32_t, Cursor*>>& cursors;
    ~Unlock() {
      for (auto& [q, c] : cursors) c->mu.Unlock();
    }
  } unlock{cursors};
  if (cursors.empty()) return rest;
  // One store call for every queue the tail cache cannot answer: at a
  // steady rate each holds a few new messages, and one round trip per queue
  // would make the last wait for all.
  auto left = [&] { return max_messages - out->count(); };
  std::vector<std::optional<store::v1::ReadResponse>> cached(cursors.size());
  std::vector<int> sent(cursors.size(), -1);  // cursors[i]'s index in request.reads
  store::v1::ReadQueuesRequest request;
  request.set_max_messages(filter.RecordsToRead(left()));
  request.set_max_bytes(kPopReadBytes);
  for (size_t i = 0; i < cursors.size(); ++i) {
    const auto [q, cursor] = cursors[i];
    store::v1::ReadRequest read = QueueRead(topic, q, cursor->next_offset, left(), filter);
    cached[i] = ReadTail(read);
    if (cached[i].has_value() || memory_only) continue;
    sent[i] = request.reads_size();
    *request.add_reads() = std::move(read);
  }
  store::v1::ReadQueuesResponse response;
  if (request.reads_size() > 0) {
    store_reads_.fetch_add(1, std::memory_order_relaxed);
    APOGEE_ASSIGN_OR_RETURN(response, store_->ReadQueues(request));
  }
  for (size_t i = 0; i < cursors.size(); ++i) {
    const auto [q, cursor] = cursors[i];
    absl::StatusOr<store::v1::ReadResponse> read = absl::UnknownError("unread");
    if (cached[i].has_value()) {
      read = *std::move(cached[i]);
    } else if (sent[i] < 0 || sent[i] >= response.results_size()) {
      unread->queues.push_back(q);  // not in memory, or past the call's budget: not read
      continue;
    } else {
      store::v1::ReadQueueResult& result = *response.mutable_results(sent[i]);
      read = std::move(*result.mutable_response());  // not copied: 256 records are ~256 KiB
      if (result.code() == static_cast<int32_t>(absl::StatusCode::kOutOfRange)) {
        read = ReadFromOldest(request.reads(sent[i]));
      } else if (result.code() != 0) {
        read = absl::Status(static_cast<absl::StatusCode>(result.code()), result.error());
      }
    }
    if (!read.ok()) return read.status();
    bool drained = true;
    APOGEE_RETURN_IF_ERROR(TakeRead(group, topic, q, filter, std::max(0, left()), invisible, &*read,
                                    cursor, out, &drained, /*commit=*/!memory_only));
    if (!drained) unread->queues.push_back(q);
  }
  return rest;
}

absl::Status PopEngine::Ack(const std::string& group, const std::string& text) {
  return AckBatch(group, {text})[0];
}

std::vector<absl::Status> PopEngine::AckBatch(const std::string& group,
                                              const std::vector<std::string>& texts) {
  std::vector<absl::Status> statuses(texts.size());
  // Handles grouped by queue, so each queue's offset is committed once.
  std::map<std::pair<std::string, int32_t>, std::vector<std::pair<size_t, ReceiptHandle>>> queues;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto handle = ReceiptHandle::Decode(texts[i]);
    if (!handle.ok()) {
      statuses[i] = handle.status();
      continue;
    }
    queues[{handle->topic, handle->queue_id}].emplace_back(i, *handle);
  }
  // The acks take each cursor's lock briefly; the offsets go to the store
  // after, without the locks (a pop of those queues need not wait for the
  // round trip), in one call for every queue.
  std::vector<Commit> commits;
  for (auto& [queue, handles] : queues) {
    Cursor* cursor = GetCursor(group, queue.first, queue.second);
    bool unblocked = false;
    {
      absl::MutexLock lock(&cursor->mu);
      std::vector<size_t> acked;
      for (auto& [i, handle] : handles) {
        auto it = cursor->in_flight.find(handle.offset);
        if (it == cursor->in_flight.end() || it->second.delivery_id != handle.delivery_id) {
          statuses[i] = StaleHandle(texts[i]);
          continue;
        }
        cursor->in_flight.erase(it);
        unblocked |= cursor->fifo.Done(handle.offset) && cursor->fifo.waiting() > 0;
        acked.push_back(i);
      }
      // A commit of this cursor already in flight takes these acks too.
      if (cursor->Low() > cursor->committed && !cursor->committing) {
        cursor->committing = true;
        commits.push_back(
            Commit{&queue.first, queue.second, cursor, cursor->Low(), std::move(acked)});
      }
    }
    if (unblocked) Unblocked(queue.first);
  }
  // The acks hold in memory either way; a failed commit only means a
  // restart may redeliver, so report it but keep the acks.
  absl::Status committed = CommitAll(group, &commits);
  if (!committed.ok()) {
    for (const Commit& c : commits) {
      for (size_t i : c.acked) statuses[i] = committed;
    }
  }
  return statuses;
}

absl::Status PopEngine::CommitAll(const std::string& group, std::vector<Commit>* commits) {
  std::vector<Commit*> open;
  for (Commit& c : *commits) open.push_back(&c);
  absl::Status status;
  for (int round = 1; !open.empty(); ++round) {
    store::v1::CommitOffsetsRequest request;
    for (const Commit* c : open) {
      store::v1::CommitOffsetRequest* o = request.add_offsets();
      o->set_group(group);
      o->set_topic(*c->topic);
      o->set_queue_id(c->queue);
      o->set_offset(c->offset);
    }
    commits_out_.fetch_add(1, std::memory_order_relaxed);
    status = store_->CommitOffsets(request);
    commits_out_.fetch_sub(1, std::memory_order_relaxed);
    // Back under each lock: record what the store holds, and go again for
    // the cursors whose Low() moved while the call was out. Not forever
    // (acks that keep coming would hold this caller): after kCommitRounds
    // the next ack or the revive scan's Advance commits what is left.
    std::vector<Commit*> again;
    for (Commit* c : open) {
      absl::MutexLock lock(&c->cursor->mu);
      if (status.ok()) c->cursor->committed = std::max(c->cursor->committed, c->offset);
      const int64_t low = c->cursor->Low();
      if (status.ok() && low > c->cursor->committed && round < kCommitRounds) {
        c->offset = low;
        again.push_back(c);
      } else {
        c->cursor->committing = false;
      }
    }
    if (!status.ok()) return status;
    open.swap(again);
  }
  return status;
}

absl::StatusOr<std::string> PopEngine::ChangeInvisible(const std::string& group,
                                                       const std::string& text,
                                                       absl::Duration invisible) {
  APOGEE_ASSIGN_OR_RETURN(ReceiptHandle handle, ReceiptHandle::Decode(text));
  Cursor* cursor = GetCursor(group, handle.topic, handle.queue_id);
  absl::MutexLock lock(&cursor->mu);
  auto it = cursor->in_flight.find(handle.offset);
  if (it == cursor->in_flight.end() || it->second.delivery_id != handle.delivery_id) {
    return StaleHandle(text);
  }
  {
    absl::MutexLock ids(&mu_);
    handle.delivery_id = ++next_delivery_id_;
  }
  it->second = InFlightEntry{handle.delivery_id, clock_->Now() + invisible};
  return handle.Encode();
}

absl::StatusOr<bool> PopEngine::Revive(const std::string& group, const std::string& topic,
                                       int32_t queue, int64_t offset, bool force_dlq) {
  store::v1::ReadRequest request;
  request.set_topic(topic);
  request.set_queue_id(queue);
  request.set_offset(offset);
  request.set_max_messages(1);
  request.set_max_bytes(1);
  store_reads_.fetch_add(1, std::memory_order_relaxed);
  auto response = store_->Read(request);
  if (!response.ok() || response->records_size() == 0 ||
      response->records(0).queue_offset() != offset) {
    // Gone (retention) or unreadable: nothing left to redeliver.
    return false;
  }
  const store::v1::StoredRecord& record = response->records(0);
  v2::Message message;
  if (!message.ParseFromString(record.body())) return false;
  const int deliveries = ReconsumeTimes(message) + 1;
  auto* props = message.mutable_user_properties();
  std::string original_topic = record.topic();
  auto retry_of = props->find(kPropRetryTopic);
  if (retry_of != props->end()) original_topic = retry_of->second;

  const bool dead = force_dlq || deliveries >= options_.max_delivery_attempts;
  std::string target;
  if (dead) {
    target = DlqTopic(group);
    (*props)[kPropDlqOriginTopic] = original_topic;
    (*props)[kPropDlqOriginMessageId] = message.system_properties().message_id();
    props->erase(kPropRetryTopic);
  } else {
    target = RetryTopic(group);
    (*props)[kPropRetryTopic] = original_topic;
  }
  (*props)[kPropReconsumeTimes] = absl::StrCat(deliveries);
  APOGEE_RETURN_IF_ERROR(topics_->GetOrCreateSystem(target).status());

  store::v1::AppendRecord copy;
  copy.set_topic(target);
  copy.set_queue_id(0);
  copy.set_message_id(record.message_id());
  for (const std::string& key : record.keys()) copy.add_keys(key);
  copy.set_tag(record.tag());
  *copy.mutable_born_time() = record.born_time();
  copy.set_flags(record.flags());
  copy.set_body(message.SerializeAsString());
  std::vector<store::v1::AppendRecord> batch;
  batch.push_back(std::move(copy));
  APOGEE_RETURN_IF_ERROR(store_->AppendAndWait(std::move(batch)).status());
  return dead;
}

std::map<std::string, RevivedCounts> PopEngine::ReviveExpired() {
  std::vector<std::pair<CursorKey, Cursor*>> cursors;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, cursor] : cursors_) cursors.emplace_back(key, cursor.get());
  }
  std::map<std::string, RevivedCounts> counts;
  const absl::Time now = clock_->Now();
  for (auto& [key, cursor] : cursors) {
    const auto& [group, topic, queue] = key;
    bool unblocked = false;
    {
      absl::MutexLock lock(&cursor->mu);
      std::vector<int64_t> expired;
      for (const auto& [offset, entry] : cursor->in_flight) {
        if (entry.deadline <= now) expired.push_back(offset);
      }
      for (int64_t offset : expired) {
        // (A delivery from before the cursor turned FIFO is not in `fifo`:
        // it is revived as usual.)
        if (cursor->ordered && cursor->fifo.Attempt(offset) > 0) {
          // FIFO: redelivered from its place in the queue, never via %RETRY%,
          // until its attempts are used up.
          const bool last = cursor->fifo.Attempt(offset) >= options_.max_delivery_attempts;
          if (last && !Revive(group, topic, queue, offset, /*force_dlq=*/true).ok()) break;
          if (last) {
            cursor->fifo.Done(offset);
            ++counts[group].dead_lettered;
          } else {
            cursor->fifo.Release(offset);
            ++counts[group].redelivered;
          }
          cursor->in_flight.erase(offset);
          unblocked = true;
          continue;
        }
        auto dead = Revive(group, topic, queue, offset, false);
        if (!dead.ok()) break;  // store trouble: keep it in flight, try next scan
        *dead ? ++counts[group].dead_lettered : ++counts[group].retried;
        cursor->in_flight.erase(offset);
      }
      Advance(group, topic, queue, cursor).IgnoreError();
    }
    if (unblocked) Unblocked(topic);
  }
  return counts;
}

absl::Status PopEngine::ForwardToDlq(const std::string& group, const std::string& text) {
  APOGEE_ASSIGN_OR_RETURN(ReceiptHandle handle, ReceiptHandle::Decode(text));
  Cursor* cursor = GetCursor(group, handle.topic, handle.queue_id);
  absl::MutexLock lock(&cursor->mu);
  auto it = cursor->in_flight.find(handle.offset);
  if (it == cursor->in_flight.end() || it->second.delivery_id != handle.delivery_id) {
    return StaleHandle(text);
  }
  APOGEE_RETURN_IF_ERROR(
      Revive(group, handle.topic, handle.queue_id, handle.offset, true).status());
  cursor->in_flight.erase(handle.offset);
  const bool unblocked = cursor->fifo.Done(handle.offset) && cursor->fifo.waiting() > 0;
  absl::Status committed = Advance(group, handle.topic, handle.queue_id, cursor);
  if (unblocked) Unblocked(handle.topic);
  return committed;
}

std::vector<PopEngine::QueueProgress> PopEngine::Progress() const {
  std::vector<std::pair<CursorKey, Cursor*>> cursors;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, cursor] : cursors_) cursors.emplace_back(key, cursor.get());
  }
  std::vector<QueueProgress> out;
  for (auto& [key, cursor] : cursors) {
    absl::MutexLock lock(&cursor->mu);
    if (!cursor->loaded) continue;
    out.push_back(QueueProgress{std::get<0>(key), std::get<1>(key), std::get<2>(key), cursor->Low(),
                                static_cast<int64_t>(cursor->in_flight.size()),
                                cursor->fifo.busy_groups(), cursor->fifo.waiting(),
                                cursor->fifo.blocked_groups(), cursor->ordered});
  }
  return out;
}

absl::Status PopEngine::ResetCursor(const std::string& group, const std::string& topic,
                                    int32_t queue, int64_t offset) {
  Cursor* cursor = GetCursor(group, topic, queue);
  absl::MutexLock lock(&cursor->mu);
  // An ack batch's commit in flight would land after this one.
  cursor->mu.Await(absl::Condition(
      +[](Cursor* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu) { return !c->committing; }, cursor));
  // Store first: if the commit fails the cursor keeps its old position, so
  // memory and store never disagree about where the group is.
  APOGEE_RETURN_IF_ERROR(store_->CommitOffset(group, topic, queue, offset));
  cursor->in_flight.clear();
  cursor->ClearFifo();
  cursor->next_offset = offset;
  cursor->committed = offset;
  cursor->loaded = true;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PopEngine::NextOffset(const std::string& group, const std::string& topic,
                                              int32_t queue) {
  Cursor* cursor = GetCursor(group, topic, queue);
  absl::MutexLock lock(&cursor->mu);
  APOGEE_RETURN_IF_ERROR(LoadCursor(group, topic, queue, cursor));
  return cursor->next_offset;
}

absl::Status PopEngine::MoveUpTo(const std::string& group, const std::string& topic, int32_t queue,
                                 int64_t offset) {
  Cursor* cursor = GetCursor(group, topic, queue);
  absl::MutexLock lock(&cursor->mu);
  APOGEE_RETURN_IF_ERROR(LoadCursor(group, topic, queue, cursor));
  cursor->next_offset = std::max(cursor->next_offset, offset);
  return Advance(group, topic, queue, cursor);
}

void PopEngine::DropTopic(const std::string& topic) {
  std::vector<Cursor*> cursors;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, cursor] : cursors_) {
      if (std::get<1>(key) == topic) cursors.push_back(cursor.get());
    }
  }
  if (options_.tail != nullptr) options_.tail->DropTopic(topic);
  // Reset in place: other threads may hold the pointers.
  for (Cursor* cursor : cursors) {
    absl::MutexLock lock(&cursor->mu);
    cursor->loaded = false;
    cursor->next_offset = 0;
    cursor->known_end = 0;
    cursor->committed = -1;
    cursor->in_flight.clear();
    cursor->ordered = false;
    cursor->ClearFifo();
  }
}

int64_t PopEngine::InFlight() const {
  std::vector<Cursor*> cursors;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, cursor] : cursors_) cursors.push_back(cursor.get());
  }
  int64_t total = 0;
  for (Cursor* cursor : cursors) {
    absl::MutexLock lock(&cursor->mu);
    total += static_cast<int64_t>(cursor->in_flight.size());
  }
  return total;
}

}  // namespace apogee::broker
