#include "services/nameserver/service/messaging_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "services/common/naming/names.h"
#include "services/common/rocketmq/metadata.h"
#include "services/common/rocketmq/reactors.h"
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

}  // namespace

grpc::ServerUnaryReactor* MessagingService::QueryRoute(grpc::CallbackServerContext* context,
                                                       const v2::QueryRouteRequest* request,
                                                       v2::QueryRouteResponse* response) {
  const std::string topic = rocketmq::QualifiedName(*context, request->topic().resource_namespace(),
                                                    request->topic().name());
  absl::Status status = ValidateClientTopic("topic", topic);
  if (!status.ok()) {
    probe_->OnRouteQuery("v2", "invalid");
    return rocketmq::AnswerInBand(context, WithV2Code(status, v2::ILLEGAL_TOPIC), response);
  }
  // Official clients know only routes: a new topic goes to the brokers that
  // create it on first use (RocketMQ 4's default topic).
  auto route = registry_->GetRoute(topic, /*or_auto_create=*/true);
  if (!route.ok()) {
    probe_->OnRouteQuery(
        "v2", route.status().code() == absl::StatusCode::kNotFound ? "not_found" : "invalid");
    return rocketmq::AnswerInBand(context, WithV2Code(route.status(), v2::TOPIC_NOT_FOUND),
                                  response);
  }
  auto queues = rocketmq::ToV2QueryRouteQueues(*route);
  if (!queues.ok()) {
    probe_->OnRouteQuery("v2", "invalid");
    return rocketmq::AnswerInBand(context, queues.status(), response);
  }
  for (v2::MessageQueue& queue : *queues) {
    // Echo the resource as the client named it (namespace included).
    *queue.mutable_topic() = request->topic();
    *response->add_message_queues() = std::move(queue);
  }
  probe_->OnRouteQuery("v2", "ok");
  return rocketmq::AnswerInBand(context, absl::OkStatus(), response);
}

grpc::ServerUnaryReactor* MessagingService::Heartbeat(grpc::CallbackServerContext* context,
                                                      const v2::HeartbeatRequest* request,
                                                      v2::HeartbeatResponse* response) {
  return rocketmq::AnswerInBand(context, rocketmq::RequireClientId(*context).status(), response);
}

grpc::ServerUnaryReactor* MessagingService::NotifyClientTermination(
    grpc::CallbackServerContext* context, const v2::NotifyClientTerminationRequest* request,
    v2::NotifyClientTerminationResponse* response) {
  // Always OK: a failing call here makes the Node client's shutdown throw.
  return rocketmq::AnswerInBand(context, absl::OkStatus(), response);
}

rocketmq::TelemetryReactor* MessagingService::OpenTelemetry(grpc::CallbackServerContext* context) {
  auto* stream = new rocketmq::TelemetryReactor();
  stream->Open(
      rocketmq::RequireClientId(*context),
      [this](const std::string& client_id, const v2::Settings& settings) {
        return rocketmq::ReplySettings(settings, policy_, /*group_fifo=*/false);
      },
      /*on_command=*/nullptr, /*on_close=*/nullptr);
  stream->Begin();
  return stream;
}

grpc::ServerUnaryReactor* MessagingService::SendMessage(grpc::CallbackServerContext* context,
                                                        const v2::SendMessageRequest* request,
                                                        v2::SendMessageResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("SendMessage"), response);
}

grpc::ServerUnaryReactor* MessagingService::QueryAssignment(
    grpc::CallbackServerContext* context, const v2::QueryAssignmentRequest* request,
    v2::QueryAssignmentResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("QueryAssignment"), response);
}

grpc::ServerWriteReactor<v2::ReceiveMessageResponse>* MessagingService::ReceiveMessage(
    grpc::CallbackServerContext* context, const v2::ReceiveMessageRequest* request) {
  return rocketmq::StatusOnlyStream<v2::ReceiveMessageResponse>(BrokerOnly("ReceiveMessage"));
}

grpc::ServerUnaryReactor* MessagingService::AckMessage(grpc::CallbackServerContext* context,
                                                       const v2::AckMessageRequest* request,
                                                       v2::AckMessageResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("AckMessage"), response);
}

grpc::ServerUnaryReactor* MessagingService::ForwardMessageToDeadLetterQueue(
    grpc::CallbackServerContext* context, const v2::ForwardMessageToDeadLetterQueueRequest* request,
    v2::ForwardMessageToDeadLetterQueueResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("ForwardMessageToDeadLetterQueue"), response);
}

grpc::ServerWriteReactor<v2::PullMessageResponse>* MessagingService::PullMessage(
    grpc::CallbackServerContext* context, const v2::PullMessageRequest* request) {
  return rocketmq::StatusOnlyStream<v2::PullMessageResponse>(BrokerOnly("PullMessage"));
}

grpc::ServerUnaryReactor* MessagingService::UpdateOffset(grpc::CallbackServerContext* context,
                                                         const v2::UpdateOffsetRequest* request,
                                                         v2::UpdateOffsetResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("UpdateOffset"), response);
}

grpc::ServerUnaryReactor* MessagingService::GetOffset(grpc::CallbackServerContext* context,
                                                      const v2::GetOffsetRequest* request,
                                                      v2::GetOffsetResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("GetOffset"), response);
}

grpc::ServerUnaryReactor* MessagingService::QueryOffset(grpc::CallbackServerContext* context,
                                                        const v2::QueryOffsetRequest* request,
                                                        v2::QueryOffsetResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("QueryOffset"), response);
}

grpc::ServerUnaryReactor* MessagingService::EndTransaction(grpc::CallbackServerContext* context,
                                                           const v2::EndTransactionRequest* request,
                                                           v2::EndTransactionResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("EndTransaction"), response);
}

grpc::ServerUnaryReactor* MessagingService::ChangeInvisibleDuration(
    grpc::CallbackServerContext* context, const v2::ChangeInvisibleDurationRequest* request,
    v2::ChangeInvisibleDurationResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("ChangeInvisibleDuration"), response);
}

grpc::ServerUnaryReactor* MessagingService::RecallMessage(grpc::CallbackServerContext* context,
                                                          const v2::RecallMessageRequest* request,
                                                          v2::RecallMessageResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("RecallMessage"), response);
}

grpc::ServerUnaryReactor* MessagingService::SyncLiteSubscription(
    grpc::CallbackServerContext* context, const v2::SyncLiteSubscriptionRequest* request,
    v2::SyncLiteSubscriptionResponse* response) {
  return rocketmq::AnswerInBand(context, BrokerOnly("SyncLiteSubscription"), response);
}

}  // namespace apogee::nameserver
