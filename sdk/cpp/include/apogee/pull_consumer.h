// PullConsumer: the application owns the positions. It assigns queues (or
// subscribes to all of a topic's), polls, commits offsets to the broker, and
// may seek to an offset or a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apogee/client_options.h"
#include "apogee/filter_expression.h"
#include "apogee/message.h"

namespace apogee {

// One queue of a topic on one broker.
struct QueueId {
  std::string topic;
  std::string broker;
  int32_t queue_id = 0;
  bool operator==(const QueueId& o) const {
    return topic == o.topic && broker == o.broker && queue_id == o.queue_id;
  }
};

struct PullConsumerOptions : ClientOptions {
  std::string group;
  // Where a queue without a committed offset starts.
  bool start_from_earliest = true;
  int max_batch = 32;  // per queue per pull, 1..32
  // Applied by the broker to every pulled queue: a tag expression or
  // FilterExpression::Sql(...). Positions move past what it skips.
  FilterExpression filter;
};

// Not thread-safe: one thread drives a PullConsumer (like Kafka's consumer).
// Shutdown() commits the positions of messages already returned by Poll.
class PullConsumer {
 public:
  static absl::StatusOr<std::unique_ptr<PullConsumer>> Create(PullConsumerOptions options);
  ~PullConsumer();

  // Every readable queue of `topic` (from its route).
  absl::StatusOr<std::vector<QueueId>> QueuesOf(const std::string& topic);
  // Consumes exactly these queues (replaces the previous assignment).
  // Positions start at the group's committed offsets.
  absl::Status Assign(std::vector<QueueId> queues);
  // Assign(QueuesOf(topic)).
  absl::Status Subscribe(const std::string& topic);

  // Messages from the assigned queues, waiting up to `timeout` for the first.
  // A queue whose pull fails (its broker is down) is skipped for a while
  // (1 s, doubling per further failure up to 5 s) while the others go on.
  // Poll fails only when every queue fails; when every queue is still
  // skipped after earlier failures it first waits for the first to be due
  // (failing after `timeout` if none is), so a loop calling Poll never
  // spins on errors.
  absl::StatusOr<std::vector<ReceivedMessage>> Poll(absl::Duration timeout);

  // Stores the current positions (next offset to read) as the group's
  // committed offsets; tries every queue and returns the first failure.
  absl::Status Commit();
  // The group's committed offset of `queue` (NOT_FOUND when none).
  absl::StatusOr<int64_t> Committed(const QueueId& queue);

  // The next Poll reads `queue` from `offset`.
  absl::Status Seek(const QueueId& queue, int64_t offset);
  // Every assigned queue: the first message stored at or after `time`.
  absl::Status SeekToTime(absl::Time time);
  absl::Status SeekToBeginning();
  absl::Status SeekToEnd();
  absl::StatusOr<int64_t> Position(const QueueId& queue) const;

  // Commits and stops; later calls fail. Idempotent.
  absl::Status Shutdown();

  class Impl;

 private:
  explicit PullConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace apogee
