// Where consumer groups stand: per-queue committed offset, lag, last commit
// time and in-flight count (admin GetGroupProgress and the consumer-lag
// metrics), and offset resets (admin ResetOffset). Committed offsets come from
// the PopEngine's cursors when it has them (fresher) and from the store
// otherwise; commit times come from the store.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apogee/admin/v1/admin.pb.h"
#include "services/broker/client/client_manager.h"
#include "services/broker/consume/pop_engine.h"
#include "services/broker/group/group_manager.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/common/clock/clock.h"

namespace apogee::broker {

// Lag of one (progress key, topic), summed over its queues.
struct TopicLag {
  int64_t messages = 0;
  // Age of the oldest message not yet consumed on any of its queues.
  absl::Duration oldest_unconsumed = absl::ZeroDuration();
};

// Thread-safe (holds no state of its own). Every method calls the store:
// run it on worker threads, never on gRPC callback threads.
class ConsumerProgress {
 public:
  // `from_earliest`: where a group with no committed offset starts (the
  // broker's --new_group_from_earliest), so its lag counts what it will read.
  ConsumerProgress(StoreClient* store, TopicManager* topics, GroupManager* groups,
                   ClientManager* clients, PopEngine* pop, const Clock* clock, bool from_earliest)
      : store_(store),
        topics_(topics),
        groups_(groups),
        clients_(clients),
        pop_(pop),
        clock_(clock),
        from_earliest_(from_earliest) {}

  // Lag of every (progress key, topic) this broker delivers from; queues the
  // store cannot answer for are skipped. For the consumer-lag metrics.
  std::map<std::pair<std::string, std::string>, TopicLag> LagByGroupTopic();

  // Per-queue progress of `group` on `topic` (every queue of it), or on
  // every topic it has progress on when `topic` is empty. Broadcasting
  // groups answer per member. INVALID_ARGUMENT for a bad group name,
  // NOT_FOUND for an unknown topic.
  absl::StatusOr<admin::v1::GetGroupProgressResponse> Get(const std::string& group,
                                                          const std::string& topic);

  // Moves the group's offsets on the selected queues of `request.topic` to
  // `to_time` or `to_offset` (clamped to each queue's [min, max]); delivery
  // resumes there at once. Broadcasting groups: every member's progress.
  absl::StatusOr<admin::v1::ResetOffsetResponse> Reset(
      const admin::v1::ResetOffsetRequest& request);

 private:
  struct Position {
    int64_t committed = -1;  // -1: no committed offset
    int64_t in_flight = 0;
    int64_t busy_message_groups = 0;  // FIFO cursors
    int64_t waiting = 0;
    int64_t commit_time_ms = 0;
  };
  using QueueKey = std::pair<std::string, int32_t>;  // topic, queue
  // Progress keys of `group` → member client id ("" when clustering or
  // when the member is not connected).
  absl::StatusOr<std::map<std::string, std::string>> Members(const std::string& group);
  // What the store and the PopEngine know of `key`'s queues.
  absl::StatusOr<std::map<QueueKey, Position>> Positions(const std::string& key);
  // Where a queue with no committed offset starts for a group.
  int64_t StartOffset(const std::string& topic, const sv1::GetQueueOffsetsResponse& offsets) const;

  StoreClient* const store_;
  TopicManager* const topics_;
  GroupManager* const groups_;
  ClientManager* const clients_;
  PopEngine* const pop_;
  const Clock* const clock_;
  const bool from_earliest_;
};

}  // namespace apogee::broker
