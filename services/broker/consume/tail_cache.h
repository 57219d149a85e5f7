// Copies of the records this broker appended last, so a consumer that keeps
// up (a push session, a parked poll) reads them from memory: no store round
// trip, and no wait for the store's index. A record goes in only once the
// store acknowledged it (after its flush and replication policy), under the
// queue offset the store gave it, so a read from here returns what the store
// would. Bounded by bytes: the oldest copies leave first.
//
// Records the broker did not append through the send path (fired timers,
// committed transactions, revived retries) are gaps: a read stops before a
// gap and the next read goes to the store from there. Whatever may make the
// copies differ from the store drops them: a role change (another writer
// may have replaced the tail), the store's watch stream going down (the
// store may have restarted without an unflushed tail), a deleted topic.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "apogee/store/v1/store.pb.h"

namespace apogee::broker {

// Thread-safe.
class TailCache {
 public:
  // `max_bytes` of copies (bodies plus a per-record overhead), > 0.
  explicit TailCache(int64_t max_bytes);

  // Only topics some consumer group reads are kept.
  void Want(const std::string& topic);
  bool Wants(const std::string& topic) const;

  // Moves on at every Clear, DropTopic and SetLive: an append that started
  // before one of them must not put its records in after it.
  uint64_t Epoch() const;
  // Keeps copies of the NORMAL records of `records` that `results` (the
  // store's answer, one per record) placed, unless the epoch moved past
  // `epoch` since the append started.
  void Insert(uint64_t epoch, const std::vector<store::v1::AppendRecord>& records,
              const std::vector<store::v1::AppendResult>& results);

  // Answers `request` from memory when the record at request.offset() is
  // here: the consecutive records from there, within the request's limits
  // and tags as the store applies them. max_offset is the queue's end as
  // far as this broker appended it, so a run that stops at a gap is not
  // read to its end. nullopt: read the store.
  std::optional<store::v1::ReadResponse> Read(const store::v1::ReadRequest& request);

  // Whether the store's watch stream is up; copies are served only then,
  // and going down drops them.
  void SetLive(bool live);
  void Clear();
  void DropTopic(const std::string& topic);

  int64_t bytes() const;
  int64_t hits() const;  // reads answered from memory

  // What a copy counts against max_bytes beyond its body and strings.
  static constexpr int64_t kRecordOverhead = 128;

 private:
  struct Queue {
    std::map<int64_t, store::v1::StoredRecord> records;
    int64_t end = 0;  // past the highest offset appended since the last drop
  };
  using QueueKey = std::pair<std::string, int32_t>;

  // Drops `queue`'s copies (their bytes too) and its end.
  void EmptyLocked(Queue* queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static int64_t SizeOf(const store::v1::StoredRecord& record);

  const int64_t max_bytes_;
  mutable absl::Mutex mu_;
  bool live_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<std::string> wanted_ ABSL_GUARDED_BY(mu_);
  // Queues are never erased (their pointers sit in order_); drops empty them.
  std::map<QueueKey, std::unique_ptr<Queue>> queues_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<Queue*, int64_t>> order_ ABSL_GUARDED_BY(mu_);  // oldest first
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace apogee::broker
