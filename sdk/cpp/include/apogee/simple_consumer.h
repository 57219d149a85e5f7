// SimpleConsumer: the application receives batches, then acks each message
// (or changes how long it stays invisible). Unacked messages come back after
// their invisible duration (delivery_attempt + 1), and go to the group's DLQ
// after the broker's maximum attempts.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apogee/client_options.h"
#include "apogee/filter_expression.h"
#include "apogee/message.h"

namespace apogee {

struct SimpleConsumerOptions : ClientOptions {
  std::string group;
  // topic -> filter: a tag expression ("*" or "TagA||TagB") or
  // FilterExpression::Sql("a > 5 AND TAGS = 'TagA'").
  std::map<std::string, FilterExpression> subscriptions;
  // How long Receive waits for a message when none is ready (long polling).
  absl::Duration await_duration = absl::Seconds(5);
};

// Thread-safe: Receive, Ack and ChangeInvisibleDuration may run concurrently.
class SimpleConsumer {
 public:
  // Fails on bad options (group or topic name, endpoints) or when a
  // subscribed topic has no route.
  static absl::StatusOr<std::unique_ptr<SimpleConsumer>> Create(SimpleConsumerOptions options);
  ~SimpleConsumer();

  // Up to `max_messages` (1..1024, the broker's batch limit) messages in one
  // call, invisible to other consumers of the group for `invisible_duration`. Empty (OK) when
  // nothing arrived within await_duration. After a failed Receive the next one first waits out a
  // backoff (100 ms, doubling per failure up to 3 s; reset by a success), so a loop calling Receive
  // never spins on errors.
  absl::StatusOr<std::vector<ReceivedMessage>> Receive(int max_messages,
                                                       absl::Duration invisible_duration);

  absl::Status Ack(const ReceivedMessage& message);
  // Acks many in one call per broker; the first error, if any (the other
  // messages are still acked).
  absl::Status Ack(const std::vector<ReceivedMessage>& messages);

  // Makes `message` visible again after `invisible_duration` from now (0:
  // at once). Updates message->receipt_handle for a later Ack.
  absl::Status ChangeInvisibleDuration(ReceivedMessage* message, absl::Duration invisible_duration);

  // Stops background work; calls after it fail. Idempotent.
  void Shutdown();

  class Impl;

 private:
  explicit SimpleConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace apogee
