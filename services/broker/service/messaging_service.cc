#include "services/broker/service/messaging_service.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"
#include "services/broker/message/validation.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"
#include "services/common/rocketmq/metadata.h"
#include "services/common/rocketmq/reactors.h"
#include "services/common/rocketmq/v2_route.h"
#include "services/common/server/bidi_stream.h"
#include "services/common/status/status_macros.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
using rocketmq::AnswerInBand;

bool Readable(const TopicConfig& c) {
  return c.permission() == nsv1::TOPIC_PERMISSION_READ ||
         c.permission() == nsv1::TOPIC_PERMISSION_READ_WRITE;
}

std::string CodeName(const absl::Status& s) { return v2::Code_Name(ToV2Code(s)); }

// Runs `work` on the executor and finishes the unary call with its status
// in-band.
template <typename Response>
void Offload(UnaryCall& call, Executor* executor, Response* response,
             std::function<absl::Status()> work) {
  executor->Submit([finish = std::move(call.finish), response, work = std::move(work)] {
    absl::Status status = work();
    ToV2Status(status, response->mutable_status());
    finish(grpc::Status::OK);
  });
}

// A topic named by a client: ILLEGAL_TOPIC for a malformed name,
// `system_code` for a system topic (names.h).
absl::Status CheckClientTopic(const std::string& topic, v2::Code system_code) {
  absl::Status valid = ValidateClientTopic("topic", topic);
  if (valid.ok()) return valid;
  return WithV2Code(valid, absl::IsPermissionDenied(valid) ? system_code : v2::ILLEGAL_TOPIC);
}

absl::Status Unsupported(const char* what) {
  return WithV2Code(absl::UnimplementedError(absl::StrCat(what, " is not supported yet")),
                    v2::UNSUPPORTED);
}

}  // namespace

struct MessagingService::ReceiveCall {
  ReceiveDone done;
  std::string group;
  std::string topic;
  MessageFilter filter;
  int batch = 0;
  absl::Duration invisible;
  absl::Time poll_deadline;
  absl::Time start;
  std::atomic<bool> finished{false};
  // Held across a pop and the decision to answer with it: two wake-ups of
  // one call must not both pop, or the loser's messages stay invisible
  // until their invisible time ends.
  absl::Mutex pop_mu;
};

struct MessagingService::PullCall {
  grpc::ServerContext* context;  // lives until the writer is closed and written
  StreamOut<v2::PullMessageResponse>* writer;
  std::string group;
  std::string topic;
  int32_t queue_id = 0;
  int64_t offset = 0;
  int batch = 0;
  MessageFilter filter;
  absl::Time poll_deadline;
  std::atomic<bool> finished{false};
};

namespace {

// The send path's options: limits, roles, and what transactional sends need.
SenderOptions SendOptionsOf(const ServiceOptions& options, const MessagingServiceDeps& deps) {
  SenderOptions out;
  out.tail = deps.tail;
  TransactionCoordinator* transactions = deps.transactions;
  out.limits = options.limits;
  out.roles = options.roles;
  out.broker_name = options.broker_name;
  if (transactions != nullptr) {
    out.first_check = [transactions](const v2::SystemProperties& sp, absl::Time now) {
      return transactions->FirstCheck(sp, now);
    };
  }
  return out;
}

}  // namespace

MessagingService::MessagingService(ServiceOptions options, const MessagingServiceDeps& deps)
    : options_(std::move(options)),
      pull_reader_(deps.store),
      topics_(deps.topics),
      groups_(deps.groups),
      pop_(deps.pop),
      arrivals_(deps.arrivals),
      clients_(deps.clients),
      telemetry_(deps.telemetry),
      routes_(deps.routes),
      probe_(deps.probe),
      executor_(deps.executor),
      clock_(deps.clock),
      auth_(deps.auth),
      transactions_(deps.transactions),
      sender_(SendOptionsOf(options_, deps), deps.store, deps.topics, deps.arrivals, deps.probe,
              deps.executor, deps.clock),
      inflight_(options_.requests.max_inflight_bytes),
      telemetry_streams_("telemetry", "max_telemetry_streams",
                         options_.streams.max_telemetry_streams, "max_telemetry_streams_per_client",
                         options_.streams.max_telemetry_streams_per_client) {
  ServeUnary("QueryRoute", this, &MessagingService::QueryRoute);
  ServeUnary("Heartbeat", this, &MessagingService::Heartbeat);
  // Sends come many at once (official clients send one message a call).
  ServeUnary("SendMessage", this, &MessagingService::SendCall, /*waiting=*/64);
  ServeUnary("QueryAssignment", this, &MessagingService::QueryAssignment);
  ServeServerStream("ReceiveMessage", this, &MessagingService::ReceiveMessage);
  ServeUnary("AckMessage", this, &MessagingService::AckMessage);
  ServeUnary("ForwardMessageToDeadLetterQueue", this,
             &MessagingService::ForwardMessageToDeadLetterQueue);
  ServeServerStream("PullMessage", this, &MessagingService::PullMessage);
  ServeUnary("UpdateOffset", this, &MessagingService::UpdateOffset);
  ServeUnary("GetOffset", this, &MessagingService::GetOffset);
  ServeUnary("QueryOffset", this, &MessagingService::QueryOffset);
  ServeUnary("EndTransaction", this, &MessagingService::EndTransaction);
  ServeUnary("NotifyClientTermination", this, &MessagingService::NotifyClientTermination);
  ServeUnary("ChangeInvisibleDuration", this, &MessagingService::ChangeInvisibleDuration);
  ServeUnary("RecallMessage", this, &MessagingService::RecallMessage);
  ServeUnary("SyncLiteSubscription", this, &MessagingService::SyncLiteSubscription);
  MarkMethodRaw(rocketmq::TelemetryMethodIndex());  // TelemetryCall
}

void MessagingService::SetAdvertisedAddress(const std::string& address) {
  absl::MutexLock lock(&address_mu_);
  advertised_ = address;
}

absl::StatusOr<TopicConfig> MessagingService::ResolveTopic(const grpc::ServerContextBase& context,
                                                           const v2::Resource& resource) {
  const std::string name =
      rocketmq::QualifiedName(context, resource.resource_namespace(), resource.name());
  APOGEE_RETURN_IF_ERROR(CheckClientTopic(name, v2::FORBIDDEN));
  auto config = topics_->Get(name);
  if (!config.ok()) return WithV2Code(config.status(), v2::TOPIC_NOT_FOUND);
  return config;
}

absl::StatusOr<std::string> MessagingService::ResolveGroup(const grpc::ServerContextBase& context,
                                                           const v2::Resource& resource) {
  const std::string name =
      rocketmq::QualifiedName(context, resource.resource_namespace(), resource.name());
  absl::Status valid = ValidateGroupName("group", name);
  if (!valid.ok()) return WithV2Code(valid, v2::ILLEGAL_CONSUMER_GROUP);
  return name;
}

absl::StatusOr<std::string> MessagingService::ResolveProgressKey(
    const grpc::ServerContextBase& context, const v2::Resource& resource) {
  APOGEE_ASSIGN_OR_RETURN(std::string group, ResolveGroup(context, resource));
  APOGEE_ASSIGN_OR_RETURN(std::string client_id, rocketmq::RequireClientId(context));
  return groups_->ProgressKey(group, client_id);
}

absl::Status MessagingService::CheckPoll(int batch) const {
  if (batch < 1 || batch > options_.max_batch) {
    return WithV2Code(absl::InvalidArgumentError(absl::StrCat(
                          "batch_size is ", batch, " (allowed: 1..", options_.max_batch, ")")),
                      v2::BAD_REQUEST);
  }
  if (arrivals_->Parked() >= options_.max_parked_polls) {
    return WithV2Code(absl::ResourceExhaustedError(absl::StrCat(
                          "too many parked polls (", options_.max_parked_polls, "); polling full")),
                      v2::TOO_MANY_REQUESTS);
  }
  return absl::OkStatus();
}

absl::Duration MessagingService::PollTime(const grpc::ServerContextBase& context, bool has_timeout,
                                          const google::protobuf::Duration& requested) const {
  const absl::Time now = absl::Now();
  const absl::Time deadline = absl::FromChrono(context.deadline());
  // Answer a few hundred ms before the client gives up.
  const absl::Duration remaining = deadline - now - absl::Milliseconds(500);
  absl::Duration poll =
      has_timeout ? FromProtoDuration(requested) : remaining - absl::Milliseconds(1500);
  poll = std::min(poll, options_.max_poll);
  poll = std::min(poll, remaining);
  return std::max(poll, absl::ZeroDuration());
}

void MessagingService::QueryRoute(UnaryCall call, const v2::QueryRouteRequest* request,
                                  v2::QueryRouteResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  const std::string topic = rocketmq::QualifiedName(*context, request->topic().resource_namespace(),
                                                    request->topic().name());
  return Offload(call, executor_, response, [this, request, response, topic]() {
    APOGEE_RETURN_IF_ERROR(CheckClientTopic(topic, v2::ILLEGAL_TOPIC));
    auto route = routes_->Route(topic);
    if (!route.ok()) return WithV2Code(route.status(), v2::TOPIC_NOT_FOUND);
    APOGEE_ASSIGN_OR_RETURN(std::vector<v2::MessageQueue> queues,
                            rocketmq::ToV2QueryRouteQueues(*route));
    for (v2::MessageQueue& q : queues) {
      *q.mutable_topic() = request->topic();
      *response->add_message_queues() = std::move(q);
    }
    return absl::OkStatus();
  });
}

void MessagingService::Heartbeat(UnaryCall call, const v2::HeartbeatRequest* request,
                                 v2::HeartbeatResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  auto client_id = rocketmq::RequireClientId(*context);
  absl::Status status = client_id.status();
  if (status.ok()) status = ValidateClientType("client_type", request->client_type());
  if (status.ok()) {
    clients_->OnHeartbeat(*client_id, request->client_type(), request->group().name());
  }
  return AnswerInBand(call, status, response);
}

void MessagingService::SendCall(UnaryCall call, const WithBytes<v2::SendMessageRequest>* request,
                                v2::SendMessageResponse* response) {
  SendMessage(call.context, &request->message, response, std::move(call.finish), request->bytes);
}

void MessagingService::SendMessage(grpc::ServerContextBase* context,
                                   const v2::SendMessageRequest* request,
                                   v2::SendMessageResponse* response,
                                   std::function<void(const grpc::Status&)> answer,
                                   absl::string_view request_bytes) {
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    ToV2Status(a, response->mutable_status());
    answer(grpc::Status::OK);
    return;
  }
  const absl::Time start = absl::Now();
  // Held until the last copy of `finish` goes, after the store answered.
  absl::StatusOr<InflightBytes::Lease> lease = inflight_.TryAcquire(
      static_cast<int64_t>(request_bytes.empty() ? request->ByteSizeLong() : request_bytes.size()));
  auto finish = [this, answer, response, start,
                 lease = lease.value_or(nullptr)](const absl::Status& top) {
    ToV2Status(top, response->mutable_status());
    probe_->OnRpc("send", v2::Code_Name(response->status().code()), absl::Now() - start);
    answer(grpc::Status::OK);
  };
  if (!lease.ok()) {
    finish(lease.status());
    return;
  }
  if (options_.roles != nullptr && options_.forwarder != nullptr &&
      !options_.roles->AcceptsWrites() && !ha::SendForwarder::WasForwarded(*context)) {
    // Not the writer: relay to it (held through a failover), or store here
    // once this broker is promoted (ha/send_forwarder.h).
    absl::Status writable = options_.roles->CheckWritable();
    options_.forwarder->Forward(
        context, request, response,
        [this, context, request, response, answer, start, finish, writable,
         request_bytes](absl::StatusOr<ha::SendForwarder::Outcome> relayed) {
          if (!relayed.ok()) {
            finish(WithV2Code(absl::UnavailableError(absl::StrCat(writable.message(), "; ",
                                                                  relayed.status().message())),
                              v2::HA_NOT_AVAILABLE));
          } else if (*relayed == ha::SendForwarder::Outcome::kBecameWriter) {
            SendHere(context, request, response, finish, request_bytes);
          } else {
            probe_->OnRpc("send_relayed", v2::Code_Name(response->status().code()),
                          absl::Now() - start);
            answer(grpc::Status::OK);
          }
        });
    return;
  }
  SendHere(context, request, response, std::move(finish), request_bytes);
}

void MessagingService::SendHere(grpc::ServerContextBase* context,
                                const v2::SendMessageRequest* request,
                                v2::SendMessageResponse* response,
                                std::function<void(const absl::Status&)> finish,
                                absl::string_view request_bytes) {
  SendOrigin origin;
  if (!request_bytes.empty()) {
    origin.encoded = EncodedMessages(request_bytes, request->messages_size());
  }
  if (request->messages_size() > 0) {
    const v2::Resource& resource = request->messages(0).topic();
    origin.topic =
        rocketmq::QualifiedName(*context, resource.resource_namespace(), resource.name());
  }
  origin.peer_host = context->peer();  // "ipv4:1.2.3.4:5678"
  if (auto colon = origin.peer_host.find(':'); colon != std::string::npos) {
    origin.peer_host = origin.peer_host.substr(colon + 1);
  }
  {
    absl::MutexLock lock(&address_mu_);
    origin.store_host = advertised_;
  }
  sender_.Send(*request, std::move(origin), response, std::move(finish));
}

void MessagingService::QueryAssignment(UnaryCall call, const v2::QueryAssignmentRequest* request,
                                       v2::QueryAssignmentResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  const std::string topic = rocketmq::QualifiedName(*context, request->topic().resource_namespace(),
                                                    request->topic().name());
  const bool fifo =
      groups_
          ->Get(rocketmq::QualifiedName(*context, request->group().resource_namespace(),
                                        request->group().name()))
          .fifo();
  return Offload(call, executor_, response, [this, request, response, topic, fifo]() {
    APOGEE_RETURN_IF_ERROR(CheckClientTopic(topic, v2::FORBIDDEN));
    auto route = routes_->Route(topic);
    if (!route.ok()) return WithV2Code(route.status(), v2::TOPIC_NOT_FOUND);
    APOGEE_ASSIGN_OR_RETURN(std::vector<v2::MessageQueue> queues,
                            rocketmq::ToV2MessageQueues(*route));
    // One assignment per readable broker: a receive serves the whole broker.
    // A FIFO group gets every readable queue (as the proxy answers): the
    // broker keeps the order whichever queue a receive names.
    std::set<std::string> brokers;
    for (v2::MessageQueue& q : queues) {
      const bool readable = q.permission() == v2::READ || q.permission() == v2::READ_WRITE;
      if (!readable || (!brokers.insert(q.broker().name()).second && !fifo)) continue;
      if (!fifo) q.set_id(-1);
      *q.mutable_topic() = request->topic();
      *response->add_assignments()->mutable_message_queue() = std::move(q);
    }
    if (brokers.empty()) {
      return WithV2Code(
          absl::PermissionDeniedError(absl::StrCat("topic \"", topic, "\" has no readable queue")),
          v2::FORBIDDEN);
    }
    return absl::OkStatus();
  });
}

void MessagingService::ReceiveMessage(grpc::ServerContext* context,
                                      const v2::ReceiveMessageRequest* request,
                                      StreamOut<v2::ReceiveMessageResponse>* out) {
  Receive(context, request,
          [this, out](const absl::Status& status, std::vector<v2::Message> messages) {
            // The proxy's shape: one status, the messages, the delivery time, end.
            v2::ReceiveMessageResponse head;
            ToV2Status(status, head.mutable_status());
            out->Write(std::move(head));
            for (v2::Message& m : messages) {
              v2::ReceiveMessageResponse item;
              SetBodyDigest(&m);
              *item.mutable_message() = std::move(m);
              out->Write(std::move(item));
            }
            v2::ReceiveMessageResponse when;
            *when.mutable_delivery_timestamp() = ToProtoTimestamp(clock_->Now());
            out->Write(std::move(when));
            out->Close();
          });
}

void MessagingService::Receive(grpc::ServerContext* context,
                               const v2::ReceiveMessageRequest* request, ReceiveDone done) {
  auto call = std::make_shared<ReceiveCall>();
  call->done = std::move(done);
  call->start = absl::Now();
  auto fail = [this, call](const absl::Status& status) { FinishReceive(*call, status, {}); };
  if (absl::Status a = Allowed(*context, *request); !a.ok()) return fail(a);
  auto group = ResolveProgressKey(*context, request->group());
  if (!group.ok()) return fail(group.status());
  call->group = *group;
  auto topic = ResolveTopic(*context, request->message_queue().topic());
  if (!topic.ok()) return fail(topic.status());
  if (!Readable(*topic)) {
    return fail(WithV2Code(absl::PermissionDeniedError(absl::StrCat(
                               "topic \"", topic->name(), "\" is not readable on this broker")),
                           v2::FORBIDDEN));
  }
  call->topic = topic->name();
  auto filter = MessageFilter::Parse(request->filter_expression(), &sql_filters_);
  if (!filter.ok()) return fail(filter.status());
  call->filter = *filter;
  call->batch = request->batch_size();
  if (absl::Status ok = CheckPoll(call->batch); !ok.ok()) return fail(ok);
  if (request->auto_renew() || !request->has_invisible_duration()) {
    call->invisible = options_.auto_renew_invisible;
  } else {
    call->invisible = FromProtoDuration(request->invisible_duration());
    if (call->invisible < options_.min_invisible || call->invisible > options_.max_invisible) {
      return fail(WithV2Code(absl::InvalidArgumentError(absl::StrCat(
                                 "invisible_duration is ", absl::FormatDuration(call->invisible),
                                 " (allowed: ", absl::FormatDuration(options_.min_invisible), "..",
                                 absl::FormatDuration(options_.max_invisible), ")")),
                             v2::ILLEGAL_INVISIBLE_TIME));
    }
  }
  call->poll_deadline = clock_->Now() + PollTime(*context, request->has_long_polling_timeout(),
                                                 request->long_polling_timeout());
  executor_->Submit([this, call] { DoReceive(call); });
}

void MessagingService::DoReceive(std::shared_ptr<ReceiveCall> call) {
  absl::MutexLock pop_lock(&call->pop_mu);
  if (call->finished) return;
  // Watch before popping, so an arrival between an empty pop and the watch
  // is not missed.
  const uint64_t watch = arrivals_->Watch(
      {call->topic, RetryTopic(call->group)}, call->poll_deadline, [this, call](bool arrived) {
        executor_->Submit([this, call, arrived] {
          if (arrived) {
            DoReceive(call);
            return;
          }
          absl::MutexLock pop_lock(&call->pop_mu);
          if (call->finished.exchange(true)) return;
          FinishReceive(
              *call, WithV2Code(absl::NotFoundError("no new message"), v2::MESSAGE_NOT_FOUND), {});
        });
      });
  bool drained = false;
  auto messages = pop_->Pop(call->group, call->topic, call->filter, call->batch, call->invisible,
                            nullptr, &drained);
  if (messages.ok() && messages->empty()) {
    if (drained) return;  // parked until arrival or deadline
    // A tag filter used up its scan limit before a queue's end: scan on at
    // once (every read makes progress) rather than wait for the deadline.
    arrivals_->Unwatch(watch);
    executor_->Submit([this, call] { DoReceive(call); });
    return;
  }
  // Done now: the watch may still fire, but `finished` makes it a no-op.
  arrivals_->Unwatch(watch);
  if (call->finished.exchange(true)) return;
  if (!messages.ok()) return FinishReceive(*call, messages.status(), {});
  FinishReceive(*call, absl::OkStatus(), std::move(messages).value());
}

void MessagingService::FinishReceive(ReceiveCall& call, const absl::Status& status,
                                     std::vector<v2::Message> messages) {
  if (!messages.empty()) {
    int64_t bytes = 0;
    for (const v2::Message& m : messages) bytes += static_cast<int64_t>(m.body().size());
    probe_->OnMessagesOut(call.topic, call.group, static_cast<int64_t>(messages.size()), bytes);
  }
  call.done(status, std::move(messages));
  probe_->OnRpc("receive", CodeName(status), absl::Now() - call.start);
}

void MessagingService::AckMessage(UnaryCall call, const v2::AckMessageRequest* request,
                                  v2::AckMessageResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  auto group = ResolveProgressKey(*context, request->group());
  if (!group.ok()) return AnswerInBand(call, group.status(), response);
  return Offload(call, executor_, response, [this, request, response, group = *group, start]() {
    std::vector<std::string> handles;
    for (const v2::AckMessageEntry& e : request->entries()) handles.push_back(e.receipt_handle());
    std::vector<absl::Status> statuses = pop_->AckBatch(group, handles);
    absl::Status top = absl::OkStatus();
    for (int i = 0; i < request->entries_size(); ++i) {
      const v2::AckMessageEntry& e = request->entries(i);
      v2::AckMessageResultEntry* out = response->add_entries();
      out->set_message_id(e.message_id());
      out->set_receipt_handle(e.receipt_handle());
      ToV2Status(statuses[i], out->mutable_status());
      if (i == 0) {
        top = statuses[i];
      } else if (ToV2Code(statuses[i]) != ToV2Code(top)) {
        top = WithV2Code(absl::InvalidArgumentError("entries have different results"),
                         v2::MULTIPLE_RESULTS);
      }
    }
    probe_->OnRpc("ack", CodeName(top), absl::Now() - start);
    return top;
  });
}

void MessagingService::ChangeInvisibleDuration(UnaryCall call,
                                               const v2::ChangeInvisibleDurationRequest* request,
                                               v2::ChangeInvisibleDurationResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  auto group = ResolveProgressKey(*context, request->group());
  if (!group.ok()) return AnswerInBand(call, group.status(), response);
  const absl::Duration invisible = FromProtoDuration(request->invisible_duration());
  if (invisible < absl::ZeroDuration() || invisible > options_.max_invisible) {
    return AnswerInBand(
        call,
        WithV2Code(absl::InvalidArgumentError(absl::StrCat(
                       "invisible_duration is ", absl::FormatDuration(invisible), " (allowed: 0..",
                       absl::FormatDuration(options_.max_invisible), ")")),
                   v2::ILLEGAL_INVISIBLE_TIME),
        response);
  }
  return Offload(call, executor_, response, [this, request, response, invisible, group = *group]() {
    APOGEE_ASSIGN_OR_RETURN(std::string handle,
                            pop_->ChangeInvisible(group, request->receipt_handle(), invisible));
    response->set_receipt_handle(handle);
    return absl::OkStatus();
  });
}

void MessagingService::ForwardMessageToDeadLetterQueue(
    UnaryCall call, const v2::ForwardMessageToDeadLetterQueueRequest* request,
    v2::ForwardMessageToDeadLetterQueueResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  auto group = ResolveProgressKey(*context, request->group());
  if (!group.ok()) return AnswerInBand(call, group.status(), response);
  if (options_.roles != nullptr) {  // the DLQ is written on the master only
    if (absl::Status writable = options_.roles->CheckWritable(); !writable.ok()) {
      return AnswerInBand(call, writable, response);
    }
  }
  return Offload(call, executor_, response, [this, request, group = *group]() {
    APOGEE_RETURN_IF_ERROR(pop_->ForwardToDlq(group, request->receipt_handle()));
    probe_->OnDeadLettered(group, 1);
    return absl::OkStatus();
  });
}

void MessagingService::PullMessage(grpc::ServerContext* context,
                                   const v2::PullMessageRequest* request,
                                   StreamOut<v2::PullMessageResponse>* out) {
  auto call = std::make_shared<PullCall>();
  call->context = context;
  call->writer = out;
  auto fail = [call](const absl::Status& status) {
    v2::PullMessageResponse item;
    ToV2Status(status, item.mutable_status());
    call->writer->Write(std::move(item));
    call->writer->Close();
  };
  if (absl::Status a = Allowed(*context, *request); !a.ok()) return fail(a);
  auto group = ResolveGroup(*context, request->group());
  if (!group.ok()) return fail(group.status());
  call->group = *group;
  auto topic = ResolveTopic(*context, request->message_queue().topic());
  if (!topic.ok()) return fail(topic.status());
  call->topic = topic->name();
  call->queue_id = request->message_queue().id();
  if (call->queue_id < 0 || call->queue_id >= topic->read_queues()) {
    return fail(WithV2Code(
        absl::InvalidArgumentError(absl::StrCat("queue ", call->queue_id, " of topic \"",
                                                call->topic, "\" does not exist (read queues: 0..",
                                                topic->read_queues() - 1, ")")),
        v2::BAD_REQUEST));
  }
  call->offset = request->offset();
  if (call->offset < 0) {
    return fail(WithV2Code(
        absl::InvalidArgumentError(absl::StrCat("offset is ", call->offset, " (must be >= 0)")),
        v2::ILLEGAL_OFFSET));
  }
  call->batch = request->batch_size();
  if (absl::Status ok = CheckPoll(call->batch); !ok.ok()) return fail(ok);
  auto filter = MessageFilter::Parse(request->filter_expression(), &sql_filters_);
  if (!filter.ok()) return fail(filter.status());
  call->filter = *filter;
  call->poll_deadline = clock_->Now() + PollTime(*context, request->has_long_polling_timeout(),
                                                 request->long_polling_timeout());
  executor_->Submit([this, call] { DoPull(call); });
}

void MessagingService::DoPull(std::shared_ptr<PullCall> call) {
  if (call->finished) return;
  auto finish = [this, call](const absl::Status& status, std::vector<v2::Message> messages,
                             int64_t next_offset,
                             std::optional<ha::ReadAdvice> advice = std::nullopt) {
    if (call->finished.exchange(true)) return;
    if (advice.has_value()) {
      // Before the first write: nothing can finish the call before it.
      call->context->AddTrailingMetadata(ha::kReadFromBrokerIdKey, absl::StrCat(advice->broker_id));
      probe_->OnReadSuggestion(ha::RoleName(advice->target));
    }
    v2::PullMessageResponse head;
    ToV2Status(status, head.mutable_status());
    call->writer->Write(std::move(head));
    int64_t bytes = 0;
    for (v2::Message& m : messages) {
      bytes += static_cast<int64_t>(m.body().size());
      v2::PullMessageResponse item;
      SetBodyDigest(&m);
      *item.mutable_message() = std::move(m);
      call->writer->Write(std::move(item));
    }
    if (status.ok() || ToV2Code(status) == v2::MESSAGE_NOT_FOUND) {
      v2::PullMessageResponse next;
      next.set_next_offset(next_offset);
      call->writer->Write(std::move(next));
    }
    call->writer->Close();
    if (!messages.empty()) {
      probe_->OnMessagesOut(call->topic, call->group, static_cast<int64_t>(messages.size()), bytes);
    }
  };
  const uint64_t watch =
      arrivals_->Watch({call->topic}, call->poll_deadline, [this, call, finish](bool arrived) {
        executor_->Submit([this, call, arrived, finish] {
          if (arrived) {
            DoPull(call);
          } else {
            finish(WithV2Code(absl::NotFoundError("no new message"), v2::MESSAGE_NOT_FOUND), {},
                   call->offset);
          }
        });
      });
  auto pulled =
      pull_reader_.Read(call->topic, call->queue_id, call->offset, call->batch, call->filter);
  if (pulled.ok() && pulled->at_end) return;  // parked until arrival or deadline
  arrivals_->Unwatch(watch);
  if (!pulled.ok()) return finish(pulled.status(), {}, call->offset);
  std::optional<ha::ReadAdvice> advice;
  if (options_.read_advisor != nullptr && pulled->last_commit_log_offset >= 0) {
    advice = options_.read_advisor->AfterRead(pulled->last_commit_log_offset);
  }
  if (pulled->messages.empty()) {
    // Everything in range was filtered out: report progress.
    return finish(WithV2Code(absl::NotFoundError("no matching message"), v2::MESSAGE_NOT_FOUND), {},
                  pulled->next_offset, advice);
  }
  finish(absl::OkStatus(), std::move(pulled->messages), pulled->next_offset, advice);
}

void MessagingService::UpdateOffset(UnaryCall call, const v2::UpdateOffsetRequest* request,
                                    v2::UpdateOffsetResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  auto group = ResolveGroup(*context, request->group());
  if (!group.ok()) return AnswerInBand(call, group.status(), response);
  auto topic = ResolveTopic(*context, request->message_queue().topic());
  if (!topic.ok()) return AnswerInBand(call, topic.status(), response);
  if (request->offset() < 0) {
    return AnswerInBand(call,
                        WithV2Code(absl::InvalidArgumentError(absl::StrCat(
                                       "offset is ", request->offset(), " (must be >= 0)")),
                                   v2::ILLEGAL_OFFSET),
                        response);
  }
  return Offload(
      call, executor_, response, [this, request, group = *group, topic = topic->name()]() {
        return pull_reader_.Commit(group, topic, request->message_queue().id(), request->offset());
      });
}

void MessagingService::GetOffset(UnaryCall call, const v2::GetOffsetRequest* request,
                                 v2::GetOffsetResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  auto group = ResolveGroup(*context, request->group());
  if (!group.ok()) return AnswerInBand(call, group.status(), response);
  auto topic = ResolveTopic(*context, request->message_queue().topic());
  if (!topic.ok()) return AnswerInBand(call, topic.status(), response);
  return Offload(call, executor_, response,
                 [this, request, response, group = *group, topic = topic->name()]() {
                   auto offset =
                       pull_reader_.Committed(group, topic, request->message_queue().id());
                   if (!offset.ok()) return offset.status();
                   response->set_offset(*offset);
                   return absl::OkStatus();
                 });
}

void MessagingService::QueryOffset(UnaryCall call, const v2::QueryOffsetRequest* request,
                                   v2::QueryOffsetResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  auto topic = ResolveTopic(*context, request->message_queue().topic());
  if (!topic.ok()) return AnswerInBand(call, topic.status(), response);
  absl::Status policy = ValidateQueryOffsetPolicy(request->query_offset_policy());
  if (!policy.ok()) return AnswerInBand(call, policy, response);
  return Offload(call, executor_, response,
                 [this, request, response, topic = topic->name()]() -> absl::Status {
                   const int32_t queue = request->message_queue().id();
                   if (request->query_offset_policy() == v2::TIMESTAMP) {
                     const absl::Time t = FromProtoTimestamp(request->timestamp());
                     APOGEE_ASSIGN_OR_RETURN(int64_t offset,
                                             pull_reader_.OffsetAt(topic, queue, t));
                     response->set_offset(offset);
                     return absl::OkStatus();
                   }
                   APOGEE_ASSIGN_OR_RETURN(
                       int64_t offset,
                       pull_reader_.Bound(topic, queue, request->query_offset_policy() == v2::END));
                   response->set_offset(offset);
                   return absl::OkStatus();
                 });
}

void MessagingService::EndTransaction(UnaryCall call, const v2::EndTransactionRequest* request,
                                      v2::EndTransactionResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  if (transactions_ == nullptr) {
    return AnswerInBand(call, Unsupported("EndTransaction (transactional messages)"), response);
  }
  // Only the writer's store resolves: a slave relays the call to it, like
  // a send (clients end a transaction where they sent it).
  if (options_.roles != nullptr && !options_.roles->AcceptsWrites()) {
    absl::Status writable = options_.roles->CheckWritable();
    if (options_.forwarder == nullptr || ha::SendForwarder::WasForwarded(*context)) {
      return AnswerInBand(call, writable, response);
    }
    auto finish =
        std::make_shared<std::function<void(const grpc::Status&)>>(std::move(call.finish));
    options_.forwarder->Forward(
        context, request, response,
        [this, context, request, response, finish,
         writable](absl::StatusOr<ha::SendForwarder::Outcome> relayed) {
          if (!relayed.ok()) {
            ToV2Status(WithV2Code(absl::UnavailableError(absl::StrCat(writable.message(), "; ",
                                                                      relayed.status().message())),
                                  v2::HA_NOT_AVAILABLE),
                       response->mutable_status());
          } else if (*relayed == ha::SendForwarder::Outcome::kBecameWriter) {
            const std::string topic = rocketmq::QualifiedName(
                *context, request->topic().resource_namespace(), request->topic().name());
            executor_->Submit([this, request, response, finish, topic] {
              ToV2Status(transactions_->End(topic, *request), response->mutable_status());
              (*finish)(grpc::Status::OK);
            });
            return;
          }
          (*finish)(grpc::Status::OK);
        });
    return;
  }
  const std::string topic = rocketmq::QualifiedName(*context, request->topic().resource_namespace(),
                                                    request->topic().name());
  return Offload(call, executor_, response,
                 [this, request, topic]() { return transactions_->End(topic, *request); });
}

// One Telemetry call on the queue: waits for a client, then posts the next
// and opens (OpenTelemetry). Deletes itself once over (TelemetryStream).
class MessagingService::TelemetryCall final
    : public rocketmq::TelemetryStream<
          QueueBidiStream<v2::TelemetryCommand, v2::TelemetryCommand>> {
 public:
  TelemetryCall(MessagingService* service, grpc::ServerCompletionQueue* queue)
      : TelemetryStream(
            queue,
            [service](grpc::ServerContext* context, RawStream* stream,
                      grpc::ServerCompletionQueue* call_queue, void* tag) {
              service->RequestAsyncBidiStreaming(rocketmq::TelemetryMethodIndex(), context, stream,
                                                 call_queue, call_queue, tag);
            },
            &service->telemetry_calls_),
        service_(service) {}

  grpc::ServerContext* server_context() { return &context(); }

 private:
  void OnStart() override {
    service_->AcceptTelemetry(queue());
    service_->OpenTelemetry(this);
  }

  MessagingService* const service_;
};

void MessagingService::AttachStreams(grpc::ServerCompletionQueue* queue) { AcceptTelemetry(queue); }

void MessagingService::AcceptTelemetry(grpc::ServerCompletionQueue* queue) {
  (new TelemetryCall(this, queue))->Start();
}

void MessagingService::OpenTelemetry(TelemetryCall* stream) {
  grpc::ServerContext* const context = stream->server_context();
  auto client_id = rocketmq::RequireClientId(*context);
  // --auth: authenticated once, at open (the signed date-time is the open
  // time); each Settings is then authorized for its topics and group.
  const bool checked = auth_ != nullptr && auth_->enabled();
  absl::StatusOr<auth::User> user =
      checked ? auth_->Authenticate(*context) : absl::StatusOr<auth::User>(auth::User{});
  if (!user.ok() && client_id.ok()) client_id = user.status();
  // The close callback needs the stream it belongs to; it runs only after
  // Begin(), by which time `self` is set.
  // Every stream holds a place among all of them and its client's; the
  // place goes with the reactor (it owns the callbacks that hold it).
  absl::StatusOr<StreamCounter::Lease> place =
      client_id.ok() ? telemetry_streams_.Open(*client_id) : telemetry_streams_.OpenAny();
  if (!place.ok()) {
    stream->Open(place.status(), nullptr, nullptr, nullptr);
    stream->Refuse(place.status());
    return;
  }
  auto self = std::make_shared<rocketmq::TelemetrySender*>(nullptr);
  const std::string ns_header = rocketmq::Header(*context, "x-mq-namespace");
  stream->Open(
      client_id,
      [this, ns_header, checked, user, context, peer = context->peer()](
          const std::string& id, const v2::Settings& settings) -> absl::StatusOr<v2::Settings> {
        if (checked) {
          APOGEE_RETURN_IF_ERROR(auth_->Authorize(*user, peer, AccessesOf(*context, settings)));
        }
        // Clients learn from Settings whether their group consumes orderly.
        const v2::Resource& group = settings.subscription().group();
        const std::string ns = ns_header.empty() ? group.resource_namespace() : ns_header;
        const bool fifo =
            settings.has_subscription() &&
            groups_->Get(ns.empty() ? group.name() : absl::StrCat(ns, "%", group.name())).fifo();
        auto reply = rocketmq::ReplySettings(settings, options_.settings, fifo);
        if (reply.ok()) {  // never keep a refused client type
          clients_->OnSettings(id, settings);
          // Transaction checks go to a live producer of the message's topic.
          std::vector<std::string> publishing;
          for (const v2::Resource& t : settings.publishing().topics()) {
            publishing.push_back(
                rocketmq::QualifiedName(*context, t.resource_namespace(), t.name()));
          }
          clients_->SetPublishing(id, std::move(publishing));
        }
        return reply;
      },
      [this, place = *std::move(place)](const std::string& id,
                                        const v2::TelemetryCommand& command) {
        telemetry_->OnClientCommand(id, command);
      },
      [this, self](const std::string& id) {
        telemetry_->Unregister(id, *self);
        clients_->Remove(id);
      });
  *self = stream;
  if (client_id.ok()) telemetry_->Register(*client_id, stream);
  stream->Begin();
}

void MessagingService::NotifyClientTermination(UnaryCall call,
                                               const v2::NotifyClientTerminationRequest* request,
                                               v2::NotifyClientTerminationResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  auto client_id = rocketmq::RequireClientId(*context);
  if (client_id.ok()) clients_->Remove(*client_id);
  // Always OK: a failure here makes the Node client's shutdown throw.
  return AnswerInBand(call, absl::OkStatus(), response);
}

void MessagingService::RecallMessage(UnaryCall call, const v2::RecallMessageRequest* request,
                                     v2::RecallMessageResponse* response) {
  grpc::ServerContext* const context = call.context;
  if (absl::Status a = Allowed(*context, *request); !a.ok()) {
    return AnswerInBand(call, a, response);
  }
  return AnswerInBand(call, Unsupported("RecallMessage (delayed messages)"), response);
}

void MessagingService::SyncLiteSubscription(UnaryCall call,
                                            const v2::SyncLiteSubscriptionRequest* request,
                                            v2::SyncLiteSubscriptionResponse* response) {
  return AnswerInBand(call, Unsupported("SyncLiteSubscription (lite topics)"), response);
}

}  // namespace apogee::broker
