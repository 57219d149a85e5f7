// apache.rocketmq.v2.MessagingService on the broker: the adapter between the
// official clients and the broker's modules. Handlers decode and validate on
// the gRPC thread, then hand anything that touches the store to the worker
// executor; gRPC threads never block.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "services/broker/auth/v2_access.h"
#include "services/broker/client/client_manager.h"
#include "services/broker/client/telemetry_hub.h"
#include "services/broker/consume/arrivals.h"
#include "services/broker/consume/pop_engine.h"
#include "services/broker/consume/pull_reader.h"
#include "services/broker/consume/tail_cache.h"
#include "services/broker/filter/sql_filter_cache.h"
#include "services/broker/group/group_manager.h"
#include "services/broker/ha/read_advisor.h"
#include "services/broker/ha/role_manager.h"
#include "services/broker/ha/send_forwarder.h"
#include "services/broker/limits/request_limits.h"
#include "services/broker/limits/stream_limits.h"
#include "services/broker/message/codec.h"
#include "services/broker/metrics/probe.h"
#include "services/broker/produce/sender.h"
#include "services/broker/route/route_source.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/broker/transaction/coordinator.h"
#include "services/common/auth/authenticator.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/executor.h"
#include "services/common/rocketmq/client_settings.h"
#include "services/common/rocketmq/reactors.h"
#include "services/common/server/queue_service.h"
#include "services/common/server/with_bytes.h"

namespace apogee::broker {

struct ServiceOptions {
  std::string broker_name;
  MessageLimits limits;
  rocketmq::SettingsPolicy settings;
  absl::Duration min_invisible = absl::Seconds(10);
  absl::Duration max_invisible = absl::Hours(12);
  absl::Duration auto_renew_invisible = absl::Seconds(60);
  absl::Duration max_poll = absl::Seconds(20);
  int max_batch = 1024;
  size_t max_parked_polls = 10000;
  RequestLimits requests;
  StreamLimits streams;  // Telemetry streams in total and per client id
  // The replication role (services/broker/ha): when set, sends and DLQ
  // forwards are refused unless this broker is its group's writer, and a
  // sync-replication timeout names this policy. Null: always the writer.
  const ha::RoleManager* roles = nullptr;
  // When set, a send refused by `roles` is relayed to the group's writer
  // instead (--forward_sends): official clients keep writing through a
  // failover to the endpoints they cached.
  ha::SendForwarder* forwarder = nullptr;
  // Tells a PullMessage reader which broker of the group to read the queue
  // from next (trailing metadata ha::kReadFromBrokerIdKey). Null: never.
  ha::ReadAdvisor* read_advisor = nullptr;
};

// What the service calls (all required; owned by the app, services/broker/app).
struct MessagingServiceDeps {
  StoreClient* store = nullptr;
  TopicManager* topics = nullptr;
  GroupManager* groups = nullptr;
  PopEngine* pop = nullptr;
  Arrivals* arrivals = nullptr;
  ClientManager* clients = nullptr;
  TelemetryHub* telemetry = nullptr;
  RouteSource* routes = nullptr;
  Probe* probe = nullptr;
  Executor* executor = nullptr;
  const Clock* clock = nullptr;
  // --auth: every call is authenticated and authorized (auth/v2_access.h).
  // Null: no checks.
  const auth::Authenticator* auth = nullptr;
  // EndTransaction and the transaction ids of sends. Null: EndTransaction
  // is UNSUPPORTED.
  TransactionCoordinator* transactions = nullptr;
  // Sends put copies of what they stored here (null: no tail cache).
  TailCache* tail = nullptr;
};

// Thread-safe.
// Every v2 method served from the server's completion queue (queue_service.h):
// no gRPC callback or sync-API threads polling beside it.
class MessagingService final : public QueueService<v2::MessagingService> {
 public:
  MessagingService(ServiceOptions options, const MessagingServiceDeps& deps);

  // The address clients use for this broker, known once the server bound
  // its port (before the address is published, no client can call).
  void SetAdvertisedAddress(const std::string& address);

  // Bytes of SendMessage requests being handled (--max_inflight_bytes).
  InflightBytes& inflight() { return inflight_; }

  void QueryRoute(UnaryCall call, const v2::QueryRouteRequest* request,
                  v2::QueryRouteResponse* response);
  void Heartbeat(UnaryCall call, const v2::HeartbeatRequest* request,
                 v2::HeartbeatResponse* response);
  // SendMessage: answers through
  // `finish`, on the poller thread for refusals, else where the store's
  // answer arrives. `request_bytes` (empty: unknown) is what `request` was
  // parsed from: each message is stored as encoded there.
  void SendMessage(grpc::ServerContextBase* context, const v2::SendMessageRequest* request,
                   v2::SendMessageResponse* response,
                   std::function<void(const grpc::Status&)> finish,
                   absl::string_view request_bytes = {});
  void QueryAssignment(UnaryCall call, const v2::QueryAssignmentRequest* request,
                       v2::QueryAssignmentResponse* response);
  void ReceiveMessage(grpc::ServerContext* context, const v2::ReceiveMessageRequest* request,
                      StreamOut<v2::ReceiveMessageResponse>* out);
  // The answer of a receive: its status and the messages popped (empty
  // unless OK). Called once, on a worker or the poller thread.
  using ReceiveDone = std::function<void(const absl::Status&, std::vector<v2::Message>)>;
  // ReceiveMessage without its wire shape (apogee.broker.v1.Receiver packs
  // the same answer many messages to a response): checks the request, pops,
  // long-polls, and answers through `done`. `context` and `request` live
  // until then.
  void Receive(grpc::ServerContext* context, const v2::ReceiveMessageRequest* request,
               ReceiveDone done);
  void AckMessage(UnaryCall call, const v2::AckMessageRequest* request,
                  v2::AckMessageResponse* response);
  void ForwardMessageToDeadLetterQueue(UnaryCall call,
                                       const v2::ForwardMessageToDeadLetterQueueRequest* request,
                                       v2::ForwardMessageToDeadLetterQueueResponse* response);
  void PullMessage(grpc::ServerContext* context, const v2::PullMessageRequest* request,
                   StreamOut<v2::PullMessageResponse>* out);
  void UpdateOffset(UnaryCall call, const v2::UpdateOffsetRequest* request,
                    v2::UpdateOffsetResponse* response);
  void GetOffset(UnaryCall call, const v2::GetOffsetRequest* request,
                 v2::GetOffsetResponse* response);
  void QueryOffset(UnaryCall call, const v2::QueryOffsetRequest* request,
                   v2::QueryOffsetResponse* response);
  void EndTransaction(UnaryCall call, const v2::EndTransactionRequest* request,
                      v2::EndTransactionResponse* response);
  void NotifyClientTermination(UnaryCall call, const v2::NotifyClientTerminationRequest* request,
                               v2::NotifyClientTerminationResponse* response);
  void ChangeInvisibleDuration(UnaryCall call, const v2::ChangeInvisibleDurationRequest* request,
                               v2::ChangeInvisibleDurationResponse* response);
  void RecallMessage(UnaryCall call, const v2::RecallMessageRequest* request,
                     v2::RecallMessageResponse* response);
  void SyncLiteSubscription(UnaryCall call, const v2::SyncLiteSubscriptionRequest* request,
                            v2::SyncLiteSubscriptionResponse* response);

 private:
  class TelemetryCall;
  struct ReceiveCall;
  void SendCall(UnaryCall call, const WithBytes<v2::SendMessageRequest>* request,
                v2::SendMessageResponse* response);
  // Telemetry streams: one waits for a client on the queue; a client's call
  // posts the next and opens (OpenTelemetry: who, the stream limits, the
  // settings and commands).
  void AttachStreams(grpc::ServerCompletionQueue* queue) override;
  void DetachStreams() override { telemetry_calls_.AwaitNone(); }
  void AcceptTelemetry(grpc::ServerCompletionQueue* queue);
  void OpenTelemetry(TelemetryCall* stream);
  struct PullCall;
  void DoReceive(std::shared_ptr<ReceiveCall> call);
  // Records a receive's metrics and hands its answer to the call's `done`.
  void FinishReceive(ReceiveCall& call, const absl::Status& status,
                     std::vector<v2::Message> messages);
  void DoPull(std::shared_ptr<PullCall> call);
  // The part of SendMessage on the writer: hands the call to sender_.
  // `finish` answers the call with a top-level status.
  void SendHere(grpc::ServerContextBase* context, const v2::SendMessageRequest* request,
                v2::SendMessageResponse* response, std::function<void(const absl::Status&)> finish,
                absl::string_view request_bytes);
  // Topic name of `resource` with the request's namespace, validated
  // (ILLEGAL_TOPIC), and the topic's config (TOPIC_NOT_FOUND).
  absl::StatusOr<TopicConfig> ResolveTopic(const grpc::ServerContextBase& context,
                                           const v2::Resource& resource);
  absl::StatusOr<std::string> ResolveGroup(const grpc::ServerContextBase& context,
                                           const v2::Resource& resource);
  // The name a POP consumer's progress is kept under: the group, or the
  // member's own name in a broadcasting group (needs x-mq-client-id).
  absl::StatusOr<std::string> ResolveProgressKey(const grpc::ServerContextBase& context,
                                                 const v2::Resource& resource);
  // OK without --auth; else UNAUTHORIZED / FORBIDDEN for the call.
  template <typename Request>
  absl::Status Allowed(const grpc::ServerContextBase& context, const Request& request) const {
    if (auth_ == nullptr || !auth_->enabled()) return absl::OkStatus();
    return auth_->Check(context, AccessesOf(context, request));
  }
  // The batch size is in range and there is room to park one more poll.
  absl::Status CheckPoll(int batch) const;
  // How long a receive/pull may park, from the request and the call deadline.
  absl::Duration PollTime(const grpc::ServerContextBase& context, bool has_timeout,
                          const google::protobuf::Duration& requested) const;

  const ServiceOptions options_;
  PullReader pull_reader_;  // PullMessage and the offset methods
  TopicManager* const topics_;
  GroupManager* const groups_;
  PopEngine* const pop_;
  Arrivals* const arrivals_;
  ClientManager* const clients_;
  TelemetryHub* const telemetry_;
  RouteSource* const routes_;
  Probe* const probe_;
  Executor* const executor_;
  const Clock* const clock_;
  const auth::Authenticator* const auth_;
  TransactionCoordinator* const transactions_;
  Sender sender_;           // the send path
  InflightBytes inflight_;  // SendMessage requests being handled
  LiveCalls telemetry_calls_;
  StreamCounter telemetry_streams_;
  // SQL filters of ReceiveMessage/PullMessage, which carry the expression on
  // every call: compiled once per distinct expression.
  filter::SqlFilterCache sql_filters_{1024};
  mutable absl::Mutex address_mu_;
  std::string advertised_ ABSL_GUARDED_BY(address_mu_);
};

}  // namespace apogee::broker
