// PushConsumer: the broker pushes messages over a stream
// (apogee.broker.v1.PushConsumer/Consume) and a callback consumes them.
// Returning kSuccess acks the message; kRetry (or a throwing callback) nacks
// it for redelivery after the broker's backoff.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apogee/client_options.h"
#include "apogee/filter_expression.h"
#include "apogee/message.h"

namespace apogee {

enum class ConsumeResult { kSuccess, kRetry };
enum class ConsumeMode {
  kClustering,    // each message to one member of the group
  kBroadcasting,  // each message to every member
};

struct PushConsumerOptions : ClientOptions {
  std::string group;
  std::string topic;
  // A tag expression ("*" or "TagA||TagB") or FilterExpression::Sql(...).
  FilterExpression filter;
  ConsumeMode mode = ConsumeMode::kClustering;
  // Callbacks running at once.
  int concurrency = 4;
  // Messages each broker stream may have delivered and not yet settled (its
  // credits): those beyond `concurrency` wait in a local queue, so a busy
  // listener always has the next message at hand. 0 means
  // max(concurrency, 1024). At least `concurrency`, at most 10000 (the
  // broker's limit). Queued messages count against `ack_timeout`.
  int prefetch = 0;
  // Unsettled this long, a message is redelivered.
  absl::Duration ack_timeout = absl::Seconds(60);
  // A settlement waits up to this long for others to leave in the same
  // frame (with their credits), unless 128 (or a quarter of the credits)
  // are pending: at moderate rates the broker is woken once per several
  // messages instead of once each. Not for a FIFO group (its next message
  // waits for the ack). 0 sends each at once. At most 100ms.
  absl::Duration settle_linger = absl::Milliseconds(5);
  // Reconnect backoff: doubles from initial up to max.
  absl::Duration reconnect_initial = absl::Milliseconds(100);
  absl::Duration reconnect_max = absl::Seconds(5);
};

using MessageListener = std::function<ConsumeResult(const ReceivedMessage&)>;

// Thread-safe. The listener runs on the consumer's threads, up to
// `concurrency` at a time. For a FIFO group (`apogee-admin group create
// --fifo=true`) on a FIFO topic it runs orderly: one message at a time per
// message group, in send order; a kRetry redelivers that message before
// any later one of its group (never skipped, until the dead-letter queue). Shutdown() (also run by
// the destructor) stops taking deliveries, waits for running callbacks, settles them, then closes
// the streams.
class PushConsumer {
 public:
  // Starts one stream per broker hosting the topic and waits (up to
  // request_timeout) for the brokers' first answer. Fails on bad options,
  // when the topic has no route, or when every broker rejects the
  // subscription (the broker's error, e.g. a malformed tag or SQL expression).
  // Brokers that cannot be reached are retried in the background.
  static absl::StatusOr<std::unique_ptr<PushConsumer>> Create(PushConsumerOptions options,
                                                              MessageListener listener);
  ~PushConsumer();

  // Streams currently subscribed (for tests and health checks).
  int ConnectedStreams() const;

  void Shutdown();

  class Impl;

 private:
  explicit PushConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace apogee
