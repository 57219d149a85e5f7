// Where a consumer should read a queue from next (RocketMQ's
// suggestWhichBrokerId). A read far behind the commit-log head hits data
// that no longer sits in the page cache: the master then points the reader
// at an in-sync slave that holds the data, sparing its own disk and cache
// for producers and hot readers. A slave points a reader that came close to
// the head back to its master. See services/broker/ha/README.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/store/v1/store.pb.h"
#include "services/broker/ha/role_manager.h"
#include "services/common/clock/clock.h"

namespace apogee::broker::ha {

// The suggestion's carrier on v2 PullMessage: trailing metadata whose value
// is the route broker id (decimal) to read the queue from next.
inline constexpr char kReadFromBrokerIdKey[] = "x-apogee-read-from-broker-id";

struct ReadAdvice {
  int64_t broker_id = 0;  // route id: 0 is the group's writer
  Role target = Role::kMaster;
};

// The decision, from the local store's replication status. `position` is the
// commit-log offset of the last record the reader got; `self_id` this
// broker's configured --broker_id (a follower whose configured id is 0, a
// former master, is listed in routes under the writer's configured id).
//  - master: when log_end - position > lag_bytes, the in-sync follower that
//    holds the most (acked beyond `position`); none such: no advice.
//  - slave, following a connected master: when log_end - position <=
//    lag_bytes / 2 (hysteresis, so a reader at the boundary does not bounce),
//    the writer (id 0).
//  - otherwise, or lag_bytes <= 0: no advice (keep reading where you are).
std::optional<ReadAdvice> AdviseRead(const store::v1::GetReplicationStatusResponse& status,
                                     int64_t self_id, int64_t position, int64_t lag_bytes);

// 40% of this machine's RAM, RocketMQ's accessMessageInMemoryMaxRatio: data
// further behind the head than that has likely left the page cache.
int64_t DefaultSlaveReadLagBytes();

// Thread-safe. Caches the store's replication status for `refresh` so that
// reads do not each cost a store call.
class ReadAdvisor {
 public:
  using StatusSource = std::function<absl::StatusOr<store::v1::GetReplicationStatusResponse>()>;

  ReadAdvisor(int64_t lag_bytes, int64_t self_id, StatusSource source, const Clock* clock,
              absl::Duration refresh = absl::Milliseconds(200));

  // After a read whose last record lies at commit-log offset `position`.
  // Never advises when lag_bytes <= 0 or the status is unavailable.
  std::optional<ReadAdvice> AfterRead(int64_t position);

  // Whether this broker is a master with an in-sync follower, so that
  // AfterRead may suggest a slave (push checks this before reading a record
  // to find out).
  bool MaySuggestSlave();

  int64_t lag_bytes() const { return lag_bytes_; }

 private:
  void Refresh() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t lag_bytes_;
  const int64_t self_id_;
  const StatusSource source_;
  const Clock* const clock_;
  const absl::Duration refresh_;

  absl::Mutex mu_;
  std::optional<store::v1::GetReplicationStatusResponse> status_ ABSL_GUARDED_BY(mu_);
  absl::Time fetched_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace apogee::broker::ha
