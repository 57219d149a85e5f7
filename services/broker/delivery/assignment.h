// Who consumes which queue in push delivery. Members are the live push
// streams of a consumer group on one topic of this broker. Clustering
// members split the topic's read queues: sorted by client id, each gets a
// contiguous, near-equal range (RocketMQ's "allocate averagely" rule, so
// the spread matches what RocketMQ users expect). Broadcasting members get
// every queue. Every join or leave recomputes the split and tells every
// member of the group its new queues.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace apogee::broker {

// The queues of member `index` (0-based, in sorted order) out of `members`
// sharing `queue_count` queues: the first `queue_count % members` members
// get one queue more; members beyond the queue count get none.
std::vector<int32_t> AllocateAveragely(int queue_count, int members, int index);

// Thread-safe. Listeners run under the registry's lock, so every member
// sees its assignments in the order they were computed; a listener must
// only record the assignment and hand work off (it must not call back into
// Membership).
class Membership {
 public:
  // queues: the member's queues now; members: live members of the group on
  // the topic (clustering and broadcasting alike).
  using Listener = std::function<void(const std::vector<int32_t>& queues, int members)>;

  // Adds a member of `group` on `topic` (which has `queue_count` read
  // queues) and reassigns; every member's listener runs, the new one's
  // included. Returns the member's id for Leave.
  uint64_t Join(const std::string& group, const std::string& topic, const std::string& client_id,
                int queue_count, bool broadcasting, Listener listener);
  // Removes the member and gives its queues to the others (their listeners
  // run). Unknown ids are ignored, so Leave may be called twice.
  void Leave(uint64_t member);

  // The member's current queues (empty for unknown ids); for tests.
  std::vector<int32_t> QueuesOf(uint64_t member) const;
  // Live members of `group` on `topic`.
  int Members(const std::string& group, const std::string& topic) const;

 private:
  struct Member {
    std::string client_id;
    bool broadcasting = false;
    Listener listener;
    std::vector<int32_t> queues;
  };
  struct Group {
    int queue_count = 0;
    // Ordered by (client id, member id): the sort the split is made on; the
    // id breaks ties between streams of one client.
    std::map<std::pair<std::string, uint64_t>, Member> members;
  };
  using GroupKey = std::pair<std::string, std::string>;  // group, topic

  void Rebalance(Group& group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<GroupKey, Group> groups_ ABSL_GUARDED_BY(mu_);
  // member id -> (its group, its key in that group)
  std::map<uint64_t, std::pair<GroupKey, std::pair<std::string, uint64_t>>> index_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::broker
