// apache.rocketmq.v2.MessagingService on the NameServer, so an official
// RocketMQ 5 client can use a NameServer address as its access point: it
// answers QueryRoute with the brokers' endpoints and the calls a client makes
// at start-up and shutdown (Telemetry settings, Heartbeat,
// NotifyClientTermination). Message traffic goes to the brokers; the other
// RPCs answer in-band UNSUPPORTED saying so.
#pragma once

#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "services/common/rocketmq/client_settings.h"
#include "services/common/rocketmq/reactors.h"
#include "services/nameserver/metrics/probe.h"
#include "services/nameserver/registry/registry.h"

namespace apogee::nameserver {

namespace v2 = ::apache::rocketmq::v2;

// Thread-safe; never blocks a gRPC thread.
class MessagingService final : public v2::MessagingService::CallbackService {
 public:
  MessagingService(const Registry* registry, Probe* probe, rocketmq::SettingsPolicy policy)
      : registry_(registry), probe_(probe), policy_(policy) {
    MarkMethodRawCallback(rocketmq::TelemetryMethodIndex(),
                          rocketmq::TelemetryHandler([this](grpc::CallbackServerContext* context) {
                            return OpenTelemetry(context);
                          }));
  }

  grpc::ServerUnaryReactor* QueryRoute(grpc::CallbackServerContext* context,
                                       const v2::QueryRouteRequest* request,
                                       v2::QueryRouteResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v2::HeartbeatRequest* request,
                                      v2::HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* NotifyClientTermination(
      grpc::CallbackServerContext* context, const v2::NotifyClientTerminationRequest* request,
      v2::NotifyClientTerminationResponse* response) override;
  // Served raw (registered in the constructor): see rocketmq::TelemetryReactor.
  rocketmq::TelemetryReactor* OpenTelemetry(grpc::CallbackServerContext* context);

  // Broker-only RPCs: in-band UNSUPPORTED pointing at the broker endpoints.
  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* context,
                                        const v2::SendMessageRequest* request,
                                        v2::SendMessageResponse* response) override;
  grpc::ServerUnaryReactor* QueryAssignment(grpc::CallbackServerContext* context,
                                            const v2::QueryAssignmentRequest* request,
                                            v2::QueryAssignmentResponse* response) override;
  grpc::ServerWriteReactor<v2::ReceiveMessageResponse>* ReceiveMessage(
      grpc::CallbackServerContext* context, const v2::ReceiveMessageRequest* request) override;
  grpc::ServerUnaryReactor* AckMessage(grpc::CallbackServerContext* context,
                                       const v2::AckMessageRequest* request,
                                       v2::AckMessageResponse* response) override;
  grpc::ServerUnaryReactor* ForwardMessageToDeadLetterQueue(
      grpc::CallbackServerContext* context,
      const v2::ForwardMessageToDeadLetterQueueRequest* request,
      v2::ForwardMessageToDeadLetterQueueResponse* response) override;
  grpc::ServerWriteReactor<v2::PullMessageResponse>* PullMessage(
      grpc::CallbackServerContext* context, const v2::PullMessageRequest* request) override;
  grpc::ServerUnaryReactor* UpdateOffset(grpc::CallbackServerContext* context,
                                         const v2::UpdateOffsetRequest* request,
                                         v2::UpdateOffsetResponse* response) override;
  grpc::ServerUnaryReactor* GetOffset(grpc::CallbackServerContext* context,
                                      const v2::GetOffsetRequest* request,
                                      v2::GetOffsetResponse* response) override;
  grpc::ServerUnaryReactor* QueryOffset(grpc::CallbackServerContext* context,
                                        const v2::QueryOffsetRequest* request,
                                        v2::QueryOffsetResponse* response) override;
  grpc::ServerUnaryReactor* EndTransaction(grpc::CallbackServerContext* context,
                                           const v2::EndTransactionRequest* request,
                                           v2::EndTransactionResponse* response) override;
  grpc::ServerUnaryReactor* ChangeInvisibleDuration(
      grpc::CallbackServerContext* context, const v2::ChangeInvisibleDurationRequest* request,
      v2::ChangeInvisibleDurationResponse* response) override;
  grpc::ServerUnaryReactor* RecallMessage(grpc::CallbackServerContext* context,
                                          const v2::RecallMessageRequest* request,
                                          v2::RecallMessageResponse* response) override;
  grpc::ServerUnaryReactor* SyncLiteSubscription(
      grpc::CallbackServerContext* context, const v2::SyncLiteSubscriptionRequest* request,
      v2::SyncLiteSubscriptionResponse* response) override;

 private:
  const Registry* const registry_;
  Probe* const probe_;
  const rocketmq::SettingsPolicy policy_;
};

}  // namespace apogee::nameserver
