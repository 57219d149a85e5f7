// Clustering consumption in the POP model (RocketMQ 5 ReceiveMessage):
// consumers pop messages, which stay invisible to the rest of the group until
// acked or their invisible time ends. An unacked message is then "revived":
// appended to the group's retry topic with its delivery attempt + 1, or to
// the group's DLQ once it used its attempts. The group's committed offset per
// queue is the lowest offset still in flight, written to the store as soon as
// it moves, so a broker restart redelivers at most what was in flight.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "services/broker/consume/fifo_state.h"
#include "services/broker/consume/receipt_handle.h"
#include "services/broker/consume/tail_cache.h"
#include "services/broker/message/codec.h"
#include "services/broker/message/message_filter.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/common/clock/clock.h"

namespace apogee::broker {

struct PopOptions {
  // Deliveries before a message goes to the DLQ (16 retries + 1).
  int max_delivery_attempts = 17;
  // Where a group with no committed offset starts: the oldest message
  // (true) or the next new one (false).
  bool new_group_from_earliest = true;
  // Whether a consumer group consumes orderly (ConsumerGroup.fifo). Unset:
  // no group does. A FIFO group reading a FIFO topic gets one message in
  // flight per message group, in queue order (FifoState).
  std::function<bool(const std::string& group)> fifo_group;
  // FIFO: how far (in offsets) a queue's scan may run ahead of its lowest
  // message not done. Bounds memory and what a restart redelivers.
  int fifo_window = 4096;
  // FIFO: bytes of message bodies a cursor keeps of its waiting messages
  // (held back behind their group, or read ahead past a full pop), so each
  // is read from the store once. Past it, waiting messages are read again
  // when handed out, several per store read. Only a copy: the store keeps
  // every message, and a restart reads from the committed offset.
  int64_t fifo_held_bytes = 4 << 20;
  // FIFO: a message group of `topic` may hand out its next message (an ack,
  // a dead-letter or an expiry), so parked polls should pop again.
  std::function<void(const std::string& topic)> fifo_unblocked;
  // Copies of the records just appended (null: every read goes to the
  // store). Topics with a cursor are marked wanted; reads try it first.
  TailCache* tail = nullptr;
};

// A record handed out as the store holds it (PopEngine::Scope::stored): not
// decoded, so a push forwards its body without parsing and rebuilding it.
// Only records of the topic itself (first delivery, no internal
// properties) come this way.
struct StoredDelivery {
  store::v1::StoredRecord record;
  std::string receipt_handle;
};

struct RevivedCounts {
  int retried = 0;
  int dead_lettered = 0;
  int redelivered = 0;  // FIFO: visible again in place, first of its message group
};

// Thread-safe. Every method may block on store calls: call from worker
// threads, never from gRPC callback threads.
class PopEngine {
 public:
  PopEngine(StoreClient* store, TopicManager* topics, const Clock* clock, PopOptions options);

  // Pops up to `max_messages` visible messages of `topic` (every queue on
  // this broker, then the group's retry topic) that match `filter`; records
  // it skips are consumed past like acked ones. Each
  // comes back ready to deliver (receipt handle, attempt, invisible time).
  // `queues`, when given, limits the topic's queues to that subset (a push
  // member's assignment); the retry topic is always popped, since the
  // group's shared cursor already keeps its members from overlapping.
  // `drained`, when given, says whether every queue was read to its end (so
  // popping again finds nothing until something arrives).
  absl::StatusOr<std::vector<v2::Message>> Pop(const std::string& group, const std::string& topic,
                                               const MessageFilter& filter, int max_messages,
                                               absl::Duration invisible,
                                               const std::vector<int32_t>* queues = nullptr,
                                               bool* drained = nullptr);

  // Which queues one pop reads, and what it left behind: a push session
  // reads only the queues an arrival named since its last read.
  struct Scope {
    std::vector<int32_t> queues;  // the topic's queues to read
    bool retry = false;           // the group's retry topic too (read first)
    // Only what needs no store call (the tail cache, loaded unordered
    // cursors; a cursor's commit waits for its next ack or the revive
    // scan): the pop never blocks, so it may run on a thread that must not
    // (the one that heard the arrival). Everything else is left unread.
    bool memory_only = false;
    // Records of the topic that a tag filter (or none) decides on, in an
    // unordered queue, come back as StoredDelivery; retries, FIFO queues
    // and SQL filters are decoded as ever.
    bool stored = false;
  };
  struct Unread {
    // Of the scope, the topic queues not read to their end (a full batch
    // stopped there, or before them), and whether the retry topic was not.
    std::vector<int32_t> queues;
    bool retry = false;
  };
  // What a pop hands out, each delivery in one of two forms.
  struct Popped {
    std::vector<v2::Message> messages;   // decoded, handle and attempt stamped
    std::vector<StoredDelivery> stored;  // Scope::stored only
    bool take_stored = false;
    int count() const { return static_cast<int>(messages.size() + stored.size()); }
  };
  // Pop restricted to `scope`; `unread` says where popping again may find
  // more before anything new arrives.
  absl::StatusOr<Popped> PopScoped(const std::string& group, const std::string& topic,
                                   const MessageFilter& filter, int max_messages,
                                   absl::Duration invisible, const Scope& scope, Unread* unread);

  // Acks the delivery named by `handle`. INVALID_RECEIPT_HANDLE when it is
  // not in flight (acked, expired and revived, or replaced).
  absl::Status Ack(const std::string& group, const std::string& handle);
  // Acks several deliveries; one status per handle. The committed offset of
  // each queue is written once for the whole batch.
  std::vector<absl::Status> AckBatch(const std::string& group,
                                     const std::vector<std::string>& handles);

  // Moves the message's invisible deadline to now + `invisible` and returns
  // its new handle (the old one stops working). 0 redelivers at once.
  absl::StatusOr<std::string> ChangeInvisible(const std::string& group, const std::string& handle,
                                              absl::Duration invisible);

  // Sends the message under `handle` to the group's DLQ now.
  absl::Status ForwardToDlq(const std::string& group, const std::string& handle);

  // Revives every delivery whose invisible time ended; counts by group.
  std::map<std::string, RevivedCounts> ReviveExpired();

  // Progress of every queue a group consumed: the committed (lowest
  // unacked) offset. For lag metrics and the admin API.
  struct QueueProgress {
    std::string group;
    std::string topic;
    int32_t queue_id = 0;
    int64_t committed = 0;
    int64_t in_flight = 0;
    // FIFO cursors: message groups with a message in flight, and messages
    // read but held back (behind their group, or waiting for redelivery).
    int64_t busy_message_groups = 0;
    int64_t waiting = 0;
    int64_t blocked_message_groups = 0;  // with messages waiting
    bool ordered = false;                // a FIFO cursor
  };
  std::vector<QueueProgress> Progress() const;

  // Moves `group`'s cursor on (topic, queue) to `offset` (admin offset
  // reset): its in-flight deliveries are dropped (their handles stop
  // working), the next pop reads from `offset`, and `offset` is committed to
  // the store. The caller keeps `offset` within the queue's [min, max].
  absl::Status ResetCursor(const std::string& group, const std::string& topic, int32_t queue,
                           int64_t offset);

  // Where the next pop of `group` on (topic, queue) reads (loading the
  // cursor from the store on first use).
  absl::StatusOr<int64_t> NextOffset(const std::string& group, const std::string& topic,
                                     int32_t queue);
  // A queue lent to a consumer that reads it elsewhere (push, a slave)
  // reports progress: the cursor moves up to `offset` (never back) and the
  // committed offset follows once nothing below it is in flight.
  absl::Status MoveUpTo(const std::string& group, const std::string& topic, int32_t queue,
                        int64_t offset);

  // Forgets every group's state on `topic` after the topic was deleted: the
  // cursors are reloaded from the store on next use (which dropped the
  // offsets), and deliveries in flight are dropped without being revived
  // (their handles stop working). Retry-topic cursors are kept: a group's
  // retry topic serves all of its topics.
  void DropTopic(const std::string& topic);

  // Messages currently invisible (in flight) across all groups.
  int64_t InFlight() const;

  // Store Read requests sent so far (pops and revives; reads the tail cache
  // answered are not sent): tests check that a FIFO drain reads the store in
  // batches.
  int64_t store_reads() const { return store_reads_.load(std::memory_order_relaxed); }
  // Ack batches' offset commits on their way to the store: a test holds the
  // store and acks again meanwhile.
  int commits_out() const { return commits_out_.load(std::memory_order_relaxed); }

 private:
  struct InFlightEntry {
    uint64_t delivery_id = 0;
    absl::Time deadline;
  };
  struct Cursor {
    absl::Mutex mu;
    bool loaded ABSL_GUARDED_BY(mu) = false;
    int64_t next_offset ABSL_GUARDED_BY(mu) = 0;
    int64_t committed ABSL_GUARDED_BY(mu) = -1;
    // An ack batch's offset commit for this cursor is on its way to the
    // store (sent without the lock): other commits of it wait or leave it
    // to that batch, which commits again if Low() moved meanwhile.
    bool committing ABSL_GUARDED_BY(mu) = false;
    // The queue's end as the last read saw it: next_offset..known_end is
    // there for sure (a lower bound of the backlog).
    int64_t known_end ABSL_GUARDED_BY(mu) = 0;
    std::map<int64_t, InFlightEntry> in_flight ABSL_GUARDED_BY(mu);
    // Set on the first pop by a FIFO group of a FIFO topic; then `fifo`
    // decides what is handed out, and `in_flight` holds only its picks.
    bool ordered ABSL_GUARDED_BY(mu) = false;
    FifoState fifo ABSL_GUARDED_BY(mu);
    // Decoded copies of waiting messages (PopOptions::fifo_held_bytes),
    // with their stored size.
    std::map<int64_t, std::pair<v2::Message, int64_t>> held ABSL_GUARDED_BY(mu);
    int64_t held_bytes ABSL_GUARDED_BY(mu) = 0;
    void ClearFifo() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      fifo.Clear();
      held.clear();
      held_bytes = 0;
    }
    // Lowest offset not done: what may be committed.
    int64_t Low() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      const int64_t low = in_flight.empty() ? next_offset : in_flight.begin()->first;
      return std::min(low, fifo.Low(next_offset));
    }
  };
  using CursorKey = std::tuple<std::string, std::string, int32_t>;  // group, topic, queue

  Cursor* GetCursor(const std::string& group, const std::string& topic, int32_t queue);
  absl::Status LoadCursor(const std::string& group, const std::string& topic, int32_t queue,
                          Cursor* cursor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor->mu);
  // Sets *drained to false when the read stopped before the queue's end.
  absl::Status PopQueue(const std::string& group, const std::string& topic, int32_t queue,
                        const MessageFilter& filter, int max_messages, absl::Duration invisible,
                        bool ordered, Popped* out, bool* drained);
  // PopQueue's unordered part after its store read: hands out what `response`
  // holds (up to max_messages; stored records are moved out of it) and moves
  // the cursor past it.
  // `commit`: commit the cursor's low mark if it moved (else the next ack
  // or the revive scan does).
  absl::Status TakeRead(const std::string& group, const std::string& topic, int32_t queue,
                        const MessageFilter& filter, int max_messages, absl::Duration invisible,
                        store::v1::ReadResponse* response, Cursor* cursor, Popped* out,
                        bool* drained, bool commit = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor->mu);
  // One queue's offset commit of an ack batch (`acked`: the batch's indexes
  // of the acks it carries).
  struct Commit {
    const std::string* topic;
    int32_t queue;
    Cursor* cursor;
    int64_t offset;
    std::vector<size_t> acked;
  };
  // Commits `commits` (their cursors marked committing) in one store call,
  // again (a few times) for those whose Low() moved meanwhile, then clears
  // the marks.
  absl::Status CommitAll(const std::string& group, std::vector<Commit>* commits);
  // Locks the cursors of `queues` that are free, loaded (or, unless
  // `memory_only`, loadable) and unordered (into `locked`, in order) until
  // their known backlog covers `wanted` records; returns the other queues.
  std::vector<int32_t> LockFree(const std::string& group, const std::string& topic,
                                const std::vector<int32_t>& queues, int wanted, bool memory_only,
                                std::vector<std::pair<int32_t, Cursor*>>* locked);
  // Pops the free unordered queues of `queues` with one ReadQueues store
  // call (`memory_only`: none; what the tail cache cannot answer is left
  // unread); returns the queues left for PopQueue (in order).
  absl::StatusOr<std::vector<int32_t>> PopTogether(const std::string& group,
                                                   const std::string& topic,
                                                   const MessageFilter& filter, int max_messages,
                                                   absl::Duration invisible,
                                                   const std::vector<int32_t>& queues,
                                                   bool memory_only, Popped* out, Unread* unread);
  // PopScoped's topic part for Scope::memory_only (`queues`: the scope's
  // queues the topic has); adds what it leaves to `unread->queues`.
  absl::Status PopFromMemory(const std::string& group, const std::string& topic,
                             const TopicConfig& config, const MessageFilter& filter,
                             int max_messages, absl::Duration invisible,
                             const std::vector<int32_t>& queues, Popped* out, Unread* unread);
  // PopQueue for a FIFO cursor (docs/design/message-types.md §4.2).
  absl::Status PopOrdered(const std::string& topic, int32_t queue, const MessageFilter& filter,
                          int max_messages, absl::Duration invisible, Cursor* cursor, Popped* out,
                          bool* drained) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor->mu);
  // Whether the cursor's budget has room for a copy of `bytes` more.
  bool HasRoom(int64_t bytes, const Cursor& cursor) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor.mu);
  // Keeps a copy of the waiting message at `offset` (stored as `bytes`) if
  // the budget has room.
  void Keep(int64_t offset, int64_t bytes, v2::Message message, Cursor* cursor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor->mu);
  // The messages of `picks` (lowest offset first): the cursor's copies, the
  // others read from the store in ranges. A pick gone from the store is
  // done; one the store failed to return waits again.
  std::map<int64_t, v2::Message> TakePicked(const std::string& topic, int32_t queue,
                                            const std::vector<FifoState::Pick>& picks,
                                            Cursor* cursor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor->mu);
  // The store read of up to `max_messages` for `filter` from `offset`.
  static store::v1::ReadRequest QueueRead(const std::string& topic, int32_t queue, int64_t offset,
                                          int max_messages, const MessageFilter& filter);
  // Reads the store from `offset` (continuing from the queue's oldest
  // message if retention removed it).
  absl::StatusOr<store::v1::ReadResponse> ReadFrom(const std::string& topic, int32_t queue,
                                                   int64_t offset, int max_messages,
                                                   const MessageFilter& filter);
  // `request` answered by the tail cache, if it holds its first record.
  std::optional<store::v1::ReadResponse> ReadTail(const store::v1::ReadRequest& request);
  // `request` again from the queue's oldest message, after the store
  // answered OUT_OF_RANGE (retention passed its offset).
  absl::StatusOr<store::v1::ReadResponse> ReadFromOldest(store::v1::ReadRequest request);
  // Records a delivery of the message read at `offset`; returns its handle.
  std::string HandOut(const std::string& topic, int32_t queue, int64_t offset,
                      absl::Duration invisible, Cursor* cursor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor->mu);
  // HandOut for a decoded message: stamps the handle and invisible time.
  void HandOutDecoded(const std::string& topic, int32_t queue, int64_t offset,
                      absl::Duration invisible, Cursor* cursor, v2::Message* message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor->mu);
  bool IsOrdered(const std::string& group, const TopicConfig& config) const;
  void Unblocked(const std::string& topic) const;
  // Commits the lowest offset still in flight if it moved.
  absl::Status Advance(const std::string& group, const std::string& topic, int32_t queue,
                       Cursor* cursor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cursor->mu);
  // True for a retry copy whose original topic was deleted after it was
  // revived (it is skipped as consumed).
  bool RetriesDeletedTopic(const store::v1::StoredRecord& record, const v2::Message& message) const;
  // Appends the message at (topic, queue, offset) to the retry topic or DLQ.
  absl::StatusOr<bool> Revive(const std::string& group, const std::string& topic, int32_t queue,
                              int64_t offset, bool force_dlq);

  StoreClient* const store_;
  TopicManager* const topics_;
  const Clock* const clock_;
  const PopOptions options_;

  mutable absl::Mutex mu_;
  std::map<CursorKey, std::unique_ptr<Cursor>> cursors_ ABSL_GUARDED_BY(mu_);
  uint64_t next_delivery_id_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> commits_out_{0};
  std::atomic<int64_t> store_reads_{0};
};

}  // namespace apogee::broker
