#include "apogee/simple_consumer.h"

#include <atomic>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "apogee/broker/v1/receive.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "sdk/cpp/src/backoff.h"
#include "sdk/cpp/src/channels.h"
#include "sdk/cpp/src/client_common.h"
#include "sdk/cpp/src/convert.h"
#include "sdk/cpp/src/route.h"
#include "services/common/clock/proto_time.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/naming/names.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/v2_status.h"

namespace apogee {

namespace v2 = ::apache::rocketmq::v2;

namespace {

// After a failed Receive the next one first waits this long, doubling per
// further failure up to the cap, so that a caller looping on Receive never
// spins on an error (a broker restarting, say). RocketMQ's push consumers
// wait 3 s after a failed pull.
constexpr absl::Duration kReceiveBackoffInitial = absl::Milliseconds(100);
constexpr absl::Duration kReceiveBackoffMax = absl::Seconds(3);

}  // namespace

// Thread-safe; see SimpleConsumer. The receive target rotates over the
// (topic, broker) pairs of the subscriptions.
class SimpleConsumer::Impl {
 public:
  explicit Impl(SimpleConsumerOptions options) : options_(std::move(options)), core_(options_) {}

  absl::Status Start() {
    for (const auto& [topic, expression] : options_.subscriptions) {
      auto route = core_.routes.Get(topic);
      if (!route.ok()) return route.status();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<ReceivedMessage>> Receive(int max_messages, absl::Duration invisible) {
    if (stopped_) return absl::FailedPreconditionError("consumer is shut down");
    // The broker's ReceiveMessage batch limit (its max_batch, 1024).
    if (max_messages < 1 || max_messages > 1024) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_messages is ", max_messages, " (allowed: 1..1024)"));
    }
    {
      absl::MutexLock lock(&backoff_mu_);
      backoff_mu_.AwaitWithTimeout(absl::Condition(&shut_down_), retry_at_ - absl::Now());
      if (shut_down_) return absl::FailedPreconditionError("consumer is shut down");
    }
    auto received = ReceiveOnce(max_messages, invisible);
    absl::MutexLock lock(&backoff_mu_);
    if (received.ok()) {
      backoff_.Success();
      retry_at_ = absl::InfinitePast();
    } else {
      retry_at_ = absl::Now() + backoff_.Failure();
    }
    return received;
  }

  absl::StatusOr<std::vector<ReceivedMessage>> ReceiveOnce(int max_messages,
                                                           absl::Duration invisible) {
    // The (topic, broker) pairs to receive from, in a stable order.
    std::vector<sdk::QueueRef> targets;
    for (const auto& [topic, expression] : options_.subscriptions) {
      auto route = core_.routes.Get(topic);
      if (!route.ok()) return route.status();
      for (const sdk::QueueRef& q : (*route)->readable) {
        if (targets.empty() || targets.back().broker != q.broker || targets.back().topic != topic) {
          targets.push_back(q);
        }
      }
    }
    if (targets.empty()) return absl::UnavailableError("no subscribed topic has a readable queue");
    const sdk::QueueRef target = targets[next_++ % targets.size()];

    v2::ReceiveMessageRequest request;
    request.mutable_group()->set_name(options_.group);
    v2::MessageQueue* mq = request.mutable_message_queue();
    mq->mutable_topic()->set_name(target.topic);
    mq->set_id(-1);
    mq->mutable_broker()->set_name(target.broker);
    *request.mutable_filter_expression() = sdk::ToV2Filter(options_.subscriptions.at(target.topic));
    request.set_batch_size(max_messages);
    ToProtoDuration(invisible, request.mutable_invisible_duration());
    ToProtoDuration(options_.await_duration, request.mutable_long_polling_timeout());

    // apogee.broker.v1.Receiver: v2's ReceiveMessage, many messages per
    // response (v2 sends each in its own).
    auto stub = broker::v1::Receiver::NewStub(core_.channels.Get(target.endpoint));
    grpc::ClientContext context;
    core_.channels.Prepare(&context, options_.await_duration + options_.request_timeout);
    auto reader = stub->Receive(&context, request);
    broker::v1::ReceiveResponse frame;
    absl::Status in_band;
    std::vector<ReceivedMessage> messages;
    while (reader->Read(&frame)) {
      if (frame.has_status()) in_band = FromV2Status(frame.status());
      for (const broker::v1::PushedMessage& m : frame.messages()) {
        auto message = sdk::FromPushed(m, target.broker, target.endpoint);
        if (!message.ok()) return message.status();
        messages.push_back(*std::move(message));
      }
    }
    absl::Status status = FromGrpcStatus(reader->Finish());
    if (!status.ok()) {
      core_.routes.Invalidate(target.topic);
      return status;
    }
    if (!in_band.ok() && ToV2Code(in_band) != v2::MESSAGE_NOT_FOUND) return in_band;
    return messages;
  }

  // One AckMessage call per (broker endpoint, topic) among `messages`.
  absl::Status Ack(const std::vector<ReceivedMessage>& messages) {
    if (stopped_) return absl::FailedPreconditionError("consumer is shut down");
    std::map<std::pair<std::string, std::string>, v2::AckMessageRequest> requests;
    for (const ReceivedMessage& m : messages) {
      v2::AckMessageRequest& request = requests[{m.endpoint, m.topic}];
      request.mutable_group()->set_name(options_.group);
      request.mutable_topic()->set_name(m.topic);
      v2::AckMessageEntry* e = request.add_entries();
      e->set_message_id(m.message_id);
      e->set_receipt_handle(m.receipt_handle);
    }
    absl::Status first_error;
    for (const auto& [where, request] : requests) {
      absl::Status s = sdk::CallV2(core_.channels, where.first, options_.request_timeout,
                                   &v2::MessagingService::Stub::AckMessage, request)
                           .status();
      if (first_error.ok()) first_error = s;
    }
    return first_error;
  }

  absl::Status ChangeInvisibleDuration(ReceivedMessage* m, absl::Duration invisible) {
    if (stopped_) return absl::FailedPreconditionError("consumer is shut down");
    v2::ChangeInvisibleDurationRequest request;
    request.mutable_group()->set_name(options_.group);
    request.mutable_topic()->set_name(m->topic);
    request.set_receipt_handle(m->receipt_handle);
    request.set_message_id(m->message_id);
    ToProtoDuration(invisible, request.mutable_invisible_duration());
    auto response = sdk::CallV2(core_.channels, m->endpoint, options_.request_timeout,
                                &v2::MessagingService::Stub::ChangeInvisibleDuration, request);
    if (!response.ok()) return response.status();
    m->receipt_handle = response->receipt_handle();
    return absl::OkStatus();
  }

  void Shutdown() {
    stopped_ = true;
    {
      absl::MutexLock lock(&backoff_mu_);
      shut_down_ = true;  // ends waits in Receive
    }
    core_.refresher.Stop();
  }

 private:
  const SimpleConsumerOptions options_;
  sdk::ClientCore core_;
  std::atomic<uint64_t> next_{0};
  std::atomic<bool> stopped_{false};
  absl::Mutex backoff_mu_;
  sdk::Backoff backoff_ ABSL_GUARDED_BY(backoff_mu_){kReceiveBackoffInitial, kReceiveBackoffMax};
  absl::Time retry_at_ ABSL_GUARDED_BY(backoff_mu_) = absl::InfinitePast();
  bool shut_down_ ABSL_GUARDED_BY(backoff_mu_) = false;
};

absl::StatusOr<std::unique_ptr<SimpleConsumer>> SimpleConsumer::Create(
    SimpleConsumerOptions options) {
  if (absl::Status s = sdk::ValidateClientOptions(options); !s.ok()) return s;
  if (absl::Status s = ValidateGroupName("group", options.group); !s.ok()) return s;
  if (options.subscriptions.empty()) {
    return absl::InvalidArgumentError("subscriptions is empty (need at least one topic)");
  }
  for (const auto& [topic, expression] : options.subscriptions) {
    if (absl::Status s = ValidateClientTopic("subscriptions topic", topic); !s.ok()) return s;
  }
  if (options.await_duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "await_duration is ", absl::FormatDuration(options.await_duration), " (must be > 0)"));
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<SimpleConsumer>(new SimpleConsumer(std::move(impl)));
}

SimpleConsumer::SimpleConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimpleConsumer::~SimpleConsumer() { impl_->Shutdown(); }

absl::StatusOr<std::vector<ReceivedMessage>> SimpleConsumer::Receive(int max_messages,
                                                                     absl::Duration invisible) {
  return impl_->Receive(max_messages, invisible);
}
absl::Status SimpleConsumer::Ack(const ReceivedMessage& message) { return impl_->Ack({message}); }
absl::Status SimpleConsumer::Ack(const std::vector<ReceivedMessage>& messages) {
  return impl_->Ack(messages);
}
absl::Status SimpleConsumer::ChangeInvisibleDuration(ReceivedMessage* message,
                                                     absl::Duration invisible) {
  return impl_->ChangeInvisibleDuration(message, invisible);
}
void SimpleConsumer::Shutdown() { impl_->Shutdown(); }

}  // namespace apogee
