// Pull consumption (v2 PullMessage and the offsets pull consumers keep):
// reading a queue from the consumer's own offset — no cursor, nothing in
// flight, no receipt handles — and committing and looking up offsets. What
// MessagingService's PullMessage, UpdateOffset, GetOffset and QueryOffset
// ask of the store; results carry v2 codes where the protocol names one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "apogee/store/v1/store.pb.h"
#include "services/broker/message/message_filter.h"
#include "services/broker/store_client/store_client.h"

namespace apogee::broker {

namespace v2 = ::apache::rocketmq::v2;

// What one pull read yields.
struct Pulled {
  std::vector<v2::Message> messages;  // those matching, at most the batch
  int64_t next_offset = 0;            // where the next pull starts
  // Commit-log offset of the last record looked at (for the read advisor);
  // -1 when the read returned none.
  int64_t last_commit_log_offset = -1;
  // Nothing stored at the offset yet: the caller parks until an arrival.
  bool at_end = false;
};

// The store-free part of a pull: what `response` (a read from `offset`)
// yields for a pull of `batch` messages matching `filter`. Records past the
// batch-th match were read ahead (SQL filters read more than they deliver):
// the next pull starts at the first of them. Undecodable and unmatched
// records are skipped (the offset moves past them).
Pulled SelectPulled(const store::v1::ReadResponse& response, int64_t offset, int batch,
                    const MessageFilter& filter);

// Thread-safe. Every method calls the store: worker threads only.
class PullReader {
 public:
  explicit PullReader(StoreClient* store) : store_(store) {}

  // Up to `batch` messages of (topic, queue) from `offset` that match
  // `filter`. ILLEGAL_OFFSET when the offset is outside the queue.
  absl::StatusOr<Pulled> Read(const std::string& topic, int32_t queue, int64_t offset, int batch,
                              const MessageFilter& filter);

  absl::Status Commit(const std::string& group, const std::string& topic, int32_t queue,
                      int64_t offset);
  // OFFSET_NOT_FOUND when the group never committed on that queue.
  absl::StatusOr<int64_t> Committed(const std::string& group, const std::string& topic,
                                    int32_t queue);
  // The offset of the first message stored at or after `time`.
  absl::StatusOr<int64_t> OffsetAt(const std::string& topic, int32_t queue, absl::Time time);
  // The queue's first offset, or with `end` the next one to be written.
  absl::StatusOr<int64_t> Bound(const std::string& topic, int32_t queue, bool end);

 private:
  StoreClient* const store_;
};

}  // namespace apogee::broker
