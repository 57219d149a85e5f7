// Every apache.rocketmq.v2 request through the broker's checks and
// conversions. Input: byte 0 picks the RPC, byte 1 shapes the topic a send
// lands in, the rest is the request proto as gRPC would hand it to
// MessagingService. Each RPC runs the functions its handler runs before the
// store (services/broker/service/messaging_service.cc): names with their
// namespace, message validation, the send plan and its store records (read
// back as a consumer would see them), TAG and SQL92 filters, receipt handles,
// durations and the telemetry settings handshake.
#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "fuzz/fuzz_util.h"
#include "grpcpp/server_context.h"
#include "services/broker/consume/receipt_handle.h"
#include "services/broker/limits/request_limits.h"
#include "services/broker/message/codec.h"
#include "services/broker/message/message_filter.h"
#include "services/broker/message/validation.h"
#include "services/broker/produce/sender.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"
#include "services/common/rocketmq/client_settings.h"
#include "services/common/rocketmq/metadata.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
using fuzz::Answer;
using fuzz::Fail;

// A server context outside any call: no client metadata, like a client
// that sends no x-mq-namespace header.
const grpc::ServerContext& Context() {
  static const auto* context = new grpc::ServerContext();
  return *context;
}

absl::Status CheckTopic(const v2::Resource& resource) {
  const std::string name =
      rocketmq::QualifiedName(Context(), resource.resource_namespace(), resource.name());
  return WithV2Code(ValidateTopicName("topic", name), v2::ILLEGAL_TOPIC);
}

absl::Status CheckGroup(const v2::Resource& resource) {
  const std::string name =
      rocketmq::QualifiedName(Context(), resource.resource_namespace(), resource.name());
  return WithV2Code(ValidateGroupName("group", name), v2::ILLEGAL_CONSUMER_GROUP);
}

void CheckFilter(const v2::FilterExpression& expression) {
  Answer(ValidateFilterType(expression));
  // TAG and SQL92 expressions (the SQL parser and evaluator run here too).
  auto filter = MessageFilter::Parse(expression);
  Answer(filter.status());
  if (!filter.ok()) return;
  v2::Message message;
  message.mutable_system_properties()->set_tag(expression.expression());
  (*message.mutable_user_properties())["a"] = "5";
  (*message.mutable_user_properties())["b"] = expression.expression();
  filter->Matches(message);  // any answer; it must not crash
  if (expression.type() != v2::TAG) return;
  for (absl::string_view part : absl::StrSplit(expression.expression(), "||")) {
    const std::string tag(absl::StripAsciiWhitespace(part));
    message.mutable_system_properties()->set_tag(tag);
    if (!filter->Matches(message)) {
      Fail(absl::StrCat("tag filter does not match its own tag ", tag));
    }
  }
}

void CheckHandle(const std::string& text) {
  auto handle = ReceiptHandle::Decode(text);
  Answer(handle.status());
  if (!handle.ok()) return;
  auto again = ReceiptHandle::Decode(handle->Encode());
  if (!again.ok() || again->topic != handle->topic || again->queue_id != handle->queue_id ||
      again->offset != handle->offset || again->delivery_id != handle->delivery_id) {
    Fail("receipt handle does not survive Encode/Decode");
  }
}

void CheckDuration(const google::protobuf::Duration& d) {
  const absl::Duration duration = FromProtoDuration(d);
  google::protobuf::Duration out;
  ToProtoDuration(duration, &out);
  (void)absl::FormatDuration(duration);
}

// The topic a send lands in, shaped by one input byte (its message type and
// queue count), so every type check and queue choice is reached.
TopicConfig SendTopic(uint8_t shape, const std::string& name) {
  TopicConfig topic;
  topic.set_name(name);
  topic.set_read_queues(1 + (shape >> 4));
  topic.set_write_queues(1 + (shape >> 4));
  topic.set_permission(nsv1::TOPIC_PERMISSION_READ_WRITE);
  topic.set_message_type(static_cast<nsv1::TopicMessageType>(shape % 6));
  return topic;
}

// SendMessage: request checks, the plan, and every planned record read back
// as a consumer sees it (the body must come back unchanged).
void Send(const v2::SendMessageRequest& request, uint8_t shape) {
  Answer(CheckSendRequest(request));
  if (request.messages_size() == 0) return;
  const v2::Resource& resource = request.messages(0).topic();
  if (!CheckTopic(resource).ok()) return;
  SendOrigin origin;
  origin.topic = rocketmq::QualifiedName(Context(), resource.resource_namespace(), resource.name());
  origin.peer_host = "127.0.0.1:40000";
  origin.store_host = "127.0.0.1:8081";
  std::atomic<uint32_t> round_robin{0};
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  SendPlan plan =
      PlanSend(request, SendTopic(shape, origin.topic), origin, MessageLimits(), now, round_robin);
  if (plan.statuses.size() != static_cast<size_t>(request.messages_size()) ||
      plan.records.size() != plan.record_index.size()) {
    Fail("send plan sizes disagree with the request");
  }
  Answer(CheckAppendSize(plan.records));
  std::vector<store::v1::AppendResult> appended;
  for (size_t r = 0; r < plan.records.size(); ++r) {
    const store::v1::AppendRecord& record = plan.records[r];
    store::v1::StoredRecord stored;
    stored.set_topic(record.topic());
    stored.set_queue_id(record.queue_id());
    stored.set_queue_offset(static_cast<int64_t>(r));
    stored.set_commit_log_offset(static_cast<int64_t>(r) * 100);
    stored.set_message_id(record.message_id());
    *stored.mutable_keys() = record.keys();
    stored.set_tag(record.tag());
    *stored.mutable_born_time() = record.born_time();
    *stored.mutable_store_time() = ToProtoTimestamp(now);
    stored.set_flags(record.flags());
    stored.set_body(record.body());
    auto message = FromStoreRecord(stored);
    if (!message.ok()) {
      Fail(absl::StrCat("a planned record does not decode: ", message.status().ToString()));
    }
    if (message->body() != request.messages(plan.record_index[r]).body()) {
      Fail("a planned record's body changed on its way through the store record");
    }
    (void)ToMessageView(*std::move(message));
    store::v1::AppendResult result;
    result.set_queue_offset(stored.queue_offset());
    appended.push_back(result);
  }
  v2::SendMessageResponse response;
  Answer(AnswerSend(request, plan, appended, "", &response));
  v2::SendMessageResponse refused;
  Answer(AnswerSend(request, std::move(plan),
                    absl::InvalidArgumentError("batch[0].keys: too many keys"), "min 1", &refused));
}

void Telemetry(const v2::TelemetryCommand& command) {
  if (!command.has_settings()) return;
  auto reply = rocketmq::ReplySettings(command.settings(), rocketmq::SettingsPolicy(), false);
  Answer(reply.status());
  auto fifo = rocketmq::ReplySettings(command.settings(), rocketmq::SettingsPolicy(), true);
  if (fifo.ok() != reply.ok()) Fail("ReplySettings: group_fifo changed the verdict");
}

template <typename Request>
bool Parse(const uint8_t* data, size_t size, Request* request) {
  return fuzz::ParseRequest(data, size, request);
}

void Run(uint8_t rpc, uint8_t shape, const uint8_t* data, size_t size) {
  switch (rpc % 17) {
    case 0: {
      v2::QueryRouteRequest r;
      if (Parse(data, size, &r)) Answer(CheckTopic(r.topic()));
      break;
    }
    case 1: {
      v2::HeartbeatRequest r;
      if (Parse(data, size, &r)) Answer(ValidateClientType("client_type", r.client_type()));
      break;
    }
    case 2: {
      v2::SendMessageRequest r;
      if (Parse(data, size, &r)) Send(r, shape);
      break;
    }
    case 3: {
      v2::QueryAssignmentRequest r;
      if (Parse(data, size, &r)) Answer(CheckTopic(r.topic()));
      break;
    }
    case 4: {
      v2::ReceiveMessageRequest r;
      if (!Parse(data, size, &r)) break;
      Answer(CheckGroup(r.group()));
      Answer(CheckTopic(r.message_queue().topic()));
      CheckFilter(r.filter_expression());
      CheckDuration(r.invisible_duration());
      CheckDuration(r.long_polling_timeout());
      break;
    }
    case 5: {
      v2::AckMessageRequest r;
      if (!Parse(data, size, &r)) break;
      Answer(CheckGroup(r.group()));
      for (const v2::AckMessageEntry& e : r.entries()) CheckHandle(e.receipt_handle());
      break;
    }
    case 6: {
      v2::ForwardMessageToDeadLetterQueueRequest r;
      if (!Parse(data, size, &r)) break;
      Answer(CheckGroup(r.group()));
      CheckHandle(r.receipt_handle());
      break;
    }
    case 7: {
      v2::PullMessageRequest r;
      if (!Parse(data, size, &r)) break;
      Answer(CheckGroup(r.group()));
      Answer(CheckTopic(r.message_queue().topic()));
      CheckFilter(r.filter_expression());
      CheckDuration(r.long_polling_timeout());
      break;
    }
    case 8: {
      v2::UpdateOffsetRequest r;
      if (!Parse(data, size, &r)) break;
      Answer(CheckGroup(r.group()));
      Answer(CheckTopic(r.message_queue().topic()));
      break;
    }
    case 9: {
      v2::GetOffsetRequest r;
      if (!Parse(data, size, &r)) break;
      Answer(CheckGroup(r.group()));
      Answer(CheckTopic(r.message_queue().topic()));
      break;
    }
    case 10: {
      v2::QueryOffsetRequest r;
      if (!Parse(data, size, &r)) break;
      Answer(CheckTopic(r.message_queue().topic()));
      Answer(ValidateQueryOffsetPolicy(r.query_offset_policy()));
      (void)FromProtoTimestamp(r.timestamp());
      break;
    }
    case 11: {
      v2::EndTransactionRequest r;
      (void)Parse(data, size, &r);  // answered UNSUPPORTED without a look
      break;
    }
    case 12: {
      v2::TelemetryCommand r;
      if (Parse(data, size, &r)) Telemetry(r);
      break;
    }
    case 13: {
      v2::NotifyClientTerminationRequest r;
      if (Parse(data, size, &r)) Answer(CheckGroup(r.group()));
      break;
    }
    case 14: {
      v2::ChangeInvisibleDurationRequest r;
      if (!Parse(data, size, &r)) break;
      Answer(CheckGroup(r.group()));
      CheckHandle(r.receipt_handle());
      CheckDuration(r.invisible_duration());
      break;
    }
    case 15: {
      v2::RecallMessageRequest r;
      if (Parse(data, size, &r)) Answer(CheckTopic(r.topic()));
      break;
    }
    default: {
      v2::SyncLiteSubscriptionRequest r;
      (void)Parse(data, size, &r);  // answered UNSUPPORTED without a look
      break;
    }
  }
}

}  // namespace
}  // namespace apogee::broker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  apogee::broker::Run(data[0], data[1], data + 2, size - 2);
  return 0;
}
