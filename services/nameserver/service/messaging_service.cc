#include "services/nameserver/service/messaging_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "services/common/naming/names.h"
#include "services/common/rocketmq/metadata.h"
#include "services/common/rocketmq/v2_route.h"
#include "services/common/status/v2_status.h"

namespace apogee::nameserver {
namespace {

absl::Status BrokerOnly(const char* rpc) {
  return WithV2Code(
      absl::FailedPreconditionError(
          absl::StrCat(rpc,
                       " is served by brokers, not by the NameServer; send it to a broker endpoint "
                       "from QueryRoute")),
      v2::UNSUPPORTED);
}

template <typename Response>
grpc::ServerUnaryReactor* AnswerInBand(grpc::CallbackServerContext* context,
                                       const absl::Status& status, Response* response) {
  ToV2Status(status, response->mutable_status());
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

// Server-streaming calls the NameServer does not serve: one status item, then
// the end of the stream (the shape official clients expect).
template <typename Response>
class StatusOnlyWriter final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit StatusOnlyWriter(const absl::Status& status) {
    ToV2Status(status, response_.mutable_status());
    this->StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }
  void OnDone() override { delete this; }

 private:
  Response response_;
};

}  // namespace

// One client's Telemetry stream: every Settings gets the merged Settings
// back on the same stream. Reads and writes alternate, so callbacks never
// overlap; the stream stays open until the client half-closes it.
class MessagingService::TelemetryReactor final
    : public grpc::ServerBidiReactor<v2::TelemetryCommand, v2::TelemetryCommand> {
 public:
  TelemetryReactor(const MessagingService* service, absl::StatusOr<std::string> client_id)
      : service_(service), client_id_(std::move(client_id)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (request_.command_case() != v2::TelemetryCommand::kSettings) {
      StartRead(&request_);  // stack traces, verify results: nothing to answer
      return;
    }
    response_.Clear();
    absl::Status status = client_id_.status();
    if (status.ok()) {
      auto settings = rocketmq::ReplySettings(request_.settings(), service_->policy_, false);
      status = settings.status();
      if (settings.ok()) *response_.mutable_settings() = std::move(settings).value();
    }
    // Errors go in-band: a stream error makes the Node client reconnect in a loop.
    ToV2Status(status, response_.mutable_status());
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "telemetry write failed"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  const MessagingService* const service_;
  const absl::StatusOr<std::string> client_id_;
  v2::TelemetryCommand request_;
  v2::TelemetryCommand response_;
};

grpc::ServerUnaryReactor* MessagingService::QueryRoute(grpc::CallbackServerContext* context,
                                                       const v2::QueryRouteRequest* request,
                                                       v2::QueryRouteResponse* response) {
  const std::string topic = rocketmq::QualifiedName(*context, request->topic().resource_namespace(),
                                                    request->topic().name());
  absl::Status status = ValidateTopicName("topic", topic);
  if (!status.ok()) {
    probe_->OnRouteQuery("v2", "invalid");
    return AnswerInBand(context, WithV2Code(status, v2::ILLEGAL_TOPIC), response);
  }
  auto route = registry_->GetRoute(topic);
  if (!route.ok()) {
    probe_->OnRouteQuery(
        "v2", route.status().code() == absl::StatusCode::kNotFound ? "not_found" : "invalid");
    return AnswerInBand(context, WithV2Code(route.status(), v2::TOPIC_NOT_FOUND), response);
  }
  auto queues = rocketmq::ToV2MessageQueues(*route);
  if (!queues.ok()) {
    probe_->OnRouteQuery("v2", "invalid");
    return AnswerInBand(context, queues.status(), response);
  }
  for (v2::MessageQueue& queue : *queues) {
    // Echo the resource as the client named it (namespace included).
    *queue.mutable_topic() = request->topic();
    *response->add_message_queues() = std::move(queue);
  }
  probe_->OnRouteQuery("v2", "ok");
  return AnswerInBand(context, absl::OkStatus(), response);
}

grpc::ServerUnaryReactor* MessagingService::Heartbeat(grpc::CallbackServerContext* context,
                                                      const v2::HeartbeatRequest* request,
                                                      v2::HeartbeatResponse* response) {
  return AnswerInBand(context, rocketmq::RequireClientId(*context).status(), response);
}

grpc::ServerUnaryReactor* MessagingService::NotifyClientTermination(
    grpc::CallbackServerContext* context, const v2::NotifyClientTerminationRequest* request,
    v2::NotifyClientTerminationResponse* response) {
  // Always OK: a failing call here makes the Node client's shutdown throw.
  return AnswerInBand(context, absl::OkStatus(), response);
}

grpc::ServerBidiReactor<v2::TelemetryCommand, v2::TelemetryCommand>* MessagingService::Telemetry(
    grpc::CallbackServerContext* context) {
  return new TelemetryReactor(this, rocketmq::RequireClientId(*context));
}

grpc::ServerUnaryReactor* MessagingService::SendMessage(grpc::CallbackServerContext* context,
                                                        const v2::SendMessageRequest* request,
                                                        v2::SendMessageResponse* response) {
  return AnswerInBand(context, BrokerOnly("SendMessage"), response);
}

grpc::ServerUnaryReactor* MessagingService::QueryAssignment(
    grpc::CallbackServerContext* context, const v2::QueryAssignmentRequest* request,
    v2::QueryAssignmentResponse* response) {
  return AnswerInBand(context, BrokerOnly("QueryAssignment"), response);
}

grpc::ServerWriteReactor<v2::ReceiveMessageResponse>* MessagingService::ReceiveMessage(
    grpc::CallbackServerContext* context, const v2::ReceiveMessageRequest* request) {
  return new StatusOnlyWriter<v2::ReceiveMessageResponse>(BrokerOnly("ReceiveMessage"));
}

grpc::ServerUnaryReactor* MessagingService::AckMessage(grpc::CallbackServerContext* context,
                                                       const v2::AckMessageRequest* request,
                                                       v2::AckMessageResponse* response) {
  return AnswerInBand(context, BrokerOnly("AckMessage"), response);
}

grpc::ServerUnaryReactor* MessagingService::ForwardMessageToDeadLetterQueue(
    grpc::CallbackServerContext* context, const v2::ForwardMessageToDeadLetterQueueRequest* request,
    v2::ForwardMessageToDeadLetterQueueResponse* response) {
  return AnswerInBand(context, BrokerOnly("ForwardMessageToDeadLetterQueue"), response);
}

grpc::ServerWriteReactor<v2::PullMessageResponse>* MessagingService::PullMessage(
    grpc::CallbackServerContext* context, const v2::PullMessageRequest* request) {
  return new StatusOnlyWriter<v2::PullMessageResponse>(BrokerOnly("PullMessage"));
}

grpc::ServerUnaryReactor* MessagingService::UpdateOffset(grpc::CallbackServerContext* context,
                                                         const v2::UpdateOffsetRequest* request,
                                                         v2::UpdateOffsetResponse* response) {
  return AnswerInBand(context, BrokerOnly("UpdateOffset"), response);
}

grpc::ServerUnaryReactor* MessagingService::GetOffset(grpc::CallbackServerContext* context,
                                                      const v2::GetOffsetRequest* request,
                                                      v2::GetOffsetResponse* response) {
  return AnswerInBand(context, BrokerOnly("GetOffset"), response);
}

grpc::ServerUnaryReactor* MessagingService::QueryOffset(grpc::CallbackServerContext* context,
                                                        const v2::QueryOffsetRequest* request,
                                                        v2::QueryOffsetResponse* response) {
  return AnswerInBand(context, BrokerOnly("QueryOffset"), response);
}

grpc::ServerUnaryReactor* MessagingService::EndTransaction(grpc::CallbackServerContext* context,
                                                           const v2::EndTransactionRequest* request,
                                                           v2::EndTransactionResponse* response) {
  return AnswerInBand(context, BrokerOnly("EndTransaction"), response);
}

grpc::ServerUnaryReactor* MessagingService::ChangeInvisibleDuration(
    grpc::CallbackServerContext* context, const v2::ChangeInvisibleDurationRequest* request,
    v2::ChangeInvisibleDurationResponse* response) {
  return AnswerInBand(context, BrokerOnly("ChangeInvisibleDuration"), response);
}

grpc::ServerUnaryReactor* MessagingService::RecallMessage(grpc::CallbackServerContext* context,
                                                          const v2::RecallMessageRequest* request,
                                                          v2::RecallMessageResponse* response) {
  return AnswerInBand(context, BrokerOnly("RecallMessage"), response);
}

grpc::ServerUnaryReactor* MessagingService::SyncLiteSubscription(
    grpc::CallbackServerContext* context, const v2::SyncLiteSubscriptionRequest* request,
    v2::SyncLiteSubscriptionResponse* response) {
  return AnswerInBand(context, BrokerOnly("SyncLiteSubscription"), response);
}

}  // namespace apogee::nameserver
