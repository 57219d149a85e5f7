#include "services/broker/produce/sender.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "services/broker/consume/fifo_state.h"
#include "services/broker/limits/request_limits.h"
#include "services/broker/message/validation.h"
#include "services/broker/transaction/txn_id.h"
#include "services/common/naming/names.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;

bool Writable(const TopicConfig& c) {
  return c.permission() == nsv1::TOPIC_PERMISSION_WRITE ||
         c.permission() == nsv1::TOPIC_PERMISSION_READ_WRITE;
}

// The queue of one message of a send. Messages without a message group
// share one queue per send, the round robin's next (as RocketMQ stores a
// batch in one queue): a consumer then reads them end to end in the log.
int32_t PickQueue(const v2::Message& m, const TopicConfig& topic,
                  std::atomic<uint32_t>& round_robin, std::optional<int32_t>& send_queue) {
  const auto queues = static_cast<uint32_t>(topic.write_queues());
  if (m.system_properties().has_message_group()) {
    // Same group, same queue: FIFO producers of any SDK agree.
    return static_cast<int32_t>(MessageGroupHash(m.system_properties().message_group()) % queues);
  }
  if (!send_queue.has_value()) send_queue = static_cast<int32_t>(round_robin++ % queues);
  return *send_queue;
}

}  // namespace

absl::Status CheckSendRequest(const v2::SendMessageRequest& request) {
  if (request.messages_size() == 0) {
    return WithV2Code(absl::InvalidArgumentError("SendMessage carries no messages"),
                      v2::MESSAGE_CORRUPTED);
  }
  const std::string& topic = request.messages(0).topic().name();
  for (const v2::Message& m : request.messages()) {
    if (request.messages_size() > 1 && m.system_properties().message_type() == v2::TRANSACTION) {
      return WithV2Code(
          absl::InvalidArgumentError(absl::StrCat("a transactional send carries 1 message (got ",
                                                  request.messages_size(), ")")),
          v2::BAD_REQUEST);
    }
    if (m.topic().name() != topic) {
      return WithV2Code(absl::InvalidArgumentError(
                            absl::StrCat("messages of one SendMessage must share a topic; got \"",
                                         topic, "\" and \"", m.topic().name(), "\"")),
                        v2::MESSAGE_CORRUPTED);
    }
  }
  return absl::OkStatus();
}

std::vector<absl::string_view> EncodedMessages(absl::string_view request, int count) {
  using google::protobuf::internal::WireFormatLite;
  std::vector<absl::string_view> out;
  out.reserve(static_cast<size_t>(count));
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(request.data()),
                                            static_cast<int>(request.size()));
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) != v2::SendMessageRequest::kMessagesFieldNumber ||
        WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) return {};
      continue;
    }
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) return {};
    const int at = in.CurrentPosition();
    if (!in.Skip(static_cast<int>(length))) return {};
    out.push_back(request.substr(static_cast<size_t>(at), length));
  }
  if (!in.ConsumedEntireMessage() || out.size() != static_cast<size_t>(count)) return {};
  return out;
}

SendPlan PlanSend(const v2::SendMessageRequest& request, const TopicConfig& topic,
                  const SendOrigin& origin, const MessageLimits& limits, absl::Time now,
                  std::atomic<uint32_t>& round_robin, const FirstCheckFn& first_check) {
  const int n = request.messages_size();
  SendPlan plan;
  plan.statuses.resize(static_cast<size_t>(n));
  plan.records.reserve(static_cast<size_t>(n));
  plan.record_index.reserve(static_cast<size_t>(n));
  std::optional<int32_t> send_queue;
  for (int i = 0; i < n; ++i) {
    const v2::Message& m = request.messages(i);
    absl::Status& status = plan.statuses[static_cast<size_t>(i)];
    status = ValidateMessage(m, i, limits, now);
    if (status.ok()) status = CheckMessageType(m, topic);
    if (!status.ok()) continue;
    store::v1::AppendRecord record = ToStoreRecord(
        m, origin.topic, PickQueue(m, topic, round_robin, send_queue), origin.store_host,
        origin.peer_host,
        origin.encoded.empty() ? absl::string_view() : origin.encoded[static_cast<size_t>(i)]);
    if (m.system_properties().has_delivery_timestamp()) {
      const google::protobuf::Timestamp& at = m.system_properties().delivery_timestamp();
      // Due already: appended as a plain message, no timer.
      if (absl::FromUnixSeconds(at.seconds()) + absl::Nanoseconds(at.nanos()) > now) {
        record.set_kind(store::v1::RECORD_TIMER);
        *record.mutable_deliver_time() = at;
      }
    }
    if (m.system_properties().message_type() == v2::TRANSACTION) {
      // Kept invisible by the store until EndTransaction or a check resolves it.
      record.set_kind(store::v1::RECORD_HALF);
      const absl::Time check =
          first_check != nullptr ? first_check(m.system_properties(), now) : now + absl::Seconds(6);
      const int64_t check_ms = absl::ToUnixMillis(check);
      record.mutable_check_time()->set_seconds(check_ms / 1000);
      record.mutable_check_time()->set_nanos(static_cast<int32_t>(check_ms % 1000) * 1'000'000);
    }
    const auto body = static_cast<int64_t>(m.body().size());
    status = CheckRecordHeadroom(record, body, i);
    if (!status.ok()) continue;
    plan.records.push_back(std::move(record));
    plan.record_index.push_back(i);
    plan.body_bytes += body;
  }
  return plan;
}

absl::Status AnswerSend(const v2::SendMessageRequest& request, SendPlan plan,
                        const absl::StatusOr<std::vector<store::v1::AppendResult>>& appended,
                        absl::string_view sync_policy, v2::SendMessageResponse* response) {
  if (!appended.ok()) {
    // One store error stands for the whole append: map it once.
    const absl::Status failed =
        FromStoreAppendError(appended.status(), plan.record_index, sync_policy);
    for (int i : plan.record_index) plan.statuses[static_cast<size_t>(i)] = failed;
  }
  absl::Status top = absl::OkStatus();
  v2::Code common = v2::OK;
  for (int i = 0; i < request.messages_size(); ++i) {
    v2::SendResultEntry* entry = response->add_entries();
    ToV2Status(plan.statuses[static_cast<size_t>(i)], entry->mutable_status());
    entry->set_message_id(request.messages(i).system_properties().message_id());
    if (i == 0) {
      common = entry->status().code();
      top = plan.statuses[0];
    } else if (entry->status().code() != common) {
      top = WithV2Code(absl::InvalidArgumentError("entries have different results"),
                       v2::MULTIPLE_RESULTS);
    }
  }
  if (appended.ok()) {
    for (size_t r = 0; r < plan.record_index.size() && r < appended->size(); ++r) {
      response->mutable_entries(plan.record_index[r])->set_offset((*appended)[r].queue_offset());
    }
  }
  return top;
}

Sender::Sender(SenderOptions options, StoreClient* store, TopicManager* topics, Arrivals* arrivals,
               Probe* probe, Executor* executor, const Clock* clock)
    : options_(std::move(options)),
      store_(store),
      topics_(topics),
      arrivals_(arrivals),
      probe_(probe),
      executor_(executor),
      clock_(clock) {}

void Sender::Send(const v2::SendMessageRequest& request, SendOrigin origin,
                  v2::SendMessageResponse* response, Done done) {
  if (options_.roles != nullptr) {
    if (absl::Status writable = options_.roles->CheckWritable(); !writable.ok()) {
      return done(writable);
    }
  }
  if (absl::Status ok = CheckSendRequest(request); !ok.ok()) return done(ok);
  // A known topic is sent from the caller's thread (the store append never
  // blocks); only an unknown one goes to a worker, since auto-creating it
  // waits for the store.
  if (ValidateClientTopic("topic", origin.topic).ok()) {
    auto cached = topics_->Get(origin.topic);
    if (cached.ok()) return SendTo(request, *cached, origin, response, std::move(done));
  }
  executor_->Submit(
      [this, &request, origin = std::move(origin), response, done = std::move(done)]() mutable {
        absl::Status valid = ValidateClientTopic("topic", origin.topic);
        if (!valid.ok()) return done(WithV2Code(valid, v2::ILLEGAL_TOPIC));
        auto topic = topics_->GetOrAutoCreate(
            origin.topic, TopicTypeFor(MessageTypeOf(request.messages(0).system_properties())));
        if (!topic.ok()) return done(WithV2Code(topic.status(), v2::TOPIC_NOT_FOUND));
        SendTo(request, *topic, origin, response, std::move(done));
      });
}

void Sender::SendTo(const v2::SendMessageRequest& request, const TopicConfig& topic,
                    const SendOrigin& origin, v2::SendMessageResponse* response, Done done) {
  if (!Writable(topic)) {
    return done(WithV2Code(absl::PermissionDeniedError(absl::StrCat(
                               "topic \"", origin.topic, "\" is not writable on this broker")),
                           v2::FORBIDDEN));
  }
  SendPlan plan = PlanSend(request, topic, origin, options_.limits, clock_->Now(), round_robin_,
                           options_.first_check);
  std::vector<store::v1::AppendRecord> records = std::move(plan.records);
  plan.records.clear();
  // half[r]: records[r] is a HALF (its answer carries a transaction id).
  // queues: where the records land, so push sessions read only those.
  std::vector<bool> half;
  std::vector<int32_t> queues;
  for (const store::v1::AppendRecord& r : records) {
    half.push_back(r.kind() == store::v1::RECORD_HALF);
    if (r.topic() == origin.topic &&
        std::find(queues.begin(), queues.end(), r.queue_id()) == queues.end()) {
      queues.push_back(r.queue_id());
    }
  }
  if (queues.empty()) queues.push_back(Arrivals::kAnyQueue);
  // A consumer that keeps up reads these from memory (the append moves them).
  std::vector<store::v1::AppendRecord> copies;
  uint64_t tail_epoch = 0;
  if (options_.tail != nullptr && options_.tail->Wants(origin.topic)) {
    tail_epoch = options_.tail->Epoch();
    copies = records;
  }
  auto answer = [this, &request, response, done = std::move(done), plan = std::move(plan),
                 topic = origin.topic, half = std::move(half), queues = std::move(queues),
                 copies = std::move(copies), tail_epoch](
                    absl::StatusOr<std::vector<store::v1::AppendResult>> appended) mutable {
    std::vector<int> record_index = plan.record_index;
    const int64_t stored =
        appended.ok() ? static_cast<int64_t>(std::min(appended->size(), plan.record_index.size()))
                      : 0;
    const int64_t bytes = plan.body_bytes;
    const absl::Status top =
        AnswerSend(request, std::move(plan), appended,
                   options_.roles != nullptr ? ha::DescribeSyncPolicy(options_.roles->options())
                                             : std::string(),
                   response);
    for (size_t r = 0; appended.ok() && r < appended->size() && r < half.size(); ++r) {
      if (!half[r]) continue;
      response->mutable_entries(record_index[r])
          ->set_transaction_id(
              FormatTransactionId(options_.broker_name, (*appended)[r].commit_log_offset()));
    }
    if (stored > 0) {
      if (!copies.empty()) options_.tail->Insert(tail_epoch, copies, *appended);
      probe_->OnMessagesIn(topic, stored, bytes);
      for (int32_t q : queues) arrivals_->Notify(topic, q);
    }
    done(top);
  };
  if (records.empty()) return answer(std::vector<store::v1::AppendResult>());
  if (absl::Status fits = CheckAppendSize(records); !fits.ok()) return answer(fits);
  store_->Append(std::move(records), std::move(answer));
}

}  // namespace apogee::broker
