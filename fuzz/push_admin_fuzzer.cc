// The push stream (apogee.broker.v1.PushConsumer) and admin
// (apogee.admin.v1) requests through the broker's real modules. Input: byte
// 0 picks the request, the rest is its proto. The modules run over a store
// client whose store is unreachable (a unix socket that does not exist), so
// everything a handler checks before the store runs for real, and a request
// that passes every check ends in the store client's UNAVAILABLE: no topic
// or group can exist here, which bounds how deep a request gets (README.md).
// Push deliveries are decoded too: a stored record (as the store would
// return it) through FromStoreRecord, ToPushedMessage and StoredMessageView.
#include <string>

#include "absl/strings/str_cat.h"
#include "apogee/admin/v1/admin.pb.h"
#include "apogee/broker/v1/push.pb.h"
#include "fuzz/fuzz_util.h"
#include "sdk/cpp/src/convert.h"
#include "sdk/cpp/src/testing/stored_reference.h"
#include "services/broker/client/client_manager.h"
#include "services/broker/consume/pop_engine.h"
#include "services/broker/consume/receipt_handle.h"
#include "services/broker/delivery/push_session.h"
#include "services/broker/group/group_manager.h"
#include "services/broker/message/codec.h"
#include "services/broker/offset/consumer_progress.h"
#include "services/broker/query/message_query.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/common/clock/clock.h"
#include "services/common/clock/proto_time.h"

namespace apogee::broker {
namespace {

namespace av1 = ::apogee::admin::v1;
using fuzz::Answer;
using fuzz::Fail;
using fuzz::ParseRequest;

// The broker's modules, wired as BrokerApp wires them, over no store.
struct Broker {
  StoreClient store{"unix:/nonexistent/apogee-fuzz-store.sock", absl::Seconds(1)};
  TopicManager topics{&store, TopicOptions{}};
  GroupManager groups{&store};
  ClientManager clients{RealClock::Default(), absl::Seconds(120)};
  PopEngine pop{&store, &topics, RealClock::Default(), PopOptions{}};
  ConsumerProgress progress{&store, &topics, &groups, &clients, &pop, RealClock::Default(), false};
  MessageQuery query{&store, &topics};
  PushDeps push;

  Broker() {
    push.pop = &pop;
    push.topics = &topics;
    push.groups = &groups;
    push.clock = RealClock::Default();
    push.broker_name = "broker-fuzz";
    // arrivals, members, executor and probe serve a started session; none
    // starts here (no topic exists without a store).
  }
};

Broker& TheBroker() {
  static auto* broker = new Broker();
  return *broker;
}

void Subscribe(const pushv1::Subscribe& subscribe) {
  auto session = PushSession::Create(TheBroker().push, PushLimits(), subscribe,
                                     [](Encoded<pushv1::ConsumeResponse>) {});
  Answer(session.status());
  if (session.ok()) Fail("a subscription was accepted although no topic exists");
}

void Settle(const pushv1::Settle& settle) {
  for (const std::string& ack : settle.acks()) Answer(ReceiptHandle::Decode(ack).status());
  for (const pushv1::Nack& nack : settle.nacks()) {
    Answer(ReceiptHandle::Decode(nack.receipt_handle()).status());
    (void)FromProtoDuration(nack.retry_delay());
  }
}

// A record as the store returns it, delivered by push and shown by admin.
void Deliver(const store::v1::StoredRecord& record) {
  auto message = FromStoreRecord(record);
  Answer(message.status());
  auto view = StoredMessageView(record);
  if (view.ok() != message.ok()) Fail("StoredMessageView and FromStoreRecord disagree");
  PopEngine::Popped popped;
  popped.stored.push_back(StoredDelivery{record, "handle"});
  if (message.ok()) popped.messages.push_back(*std::move(message));
  // What a consumer makes of the stored form: the SDK's own reader must
  // read whatever the generated parser reads, and alike.
  auto frames = EncodeDeliveries(std::move(popped), 1 << 20);
  pushv1::ConsumeResponse frame;
  const grpc::Slice& bytes = frames.back().bytes;  // the stored one comes last
  if (!frame.ParseFromArray(bytes.begin(), static_cast<int>(bytes.size()))) {
    Fail("an encoded Deliveries frame does not parse");
  }
  const pushv1::PushedMessage& stored =
      frame.deliveries().messages(frame.deliveries().messages_size() - 1);
  auto read = sdk::FromPushed(stored, "broker-fuzz", "127.0.0.1:1");
  auto reference = sdk::testing::ParsedThenConverted(stored, "broker-fuzz", "127.0.0.1:1");
  if (reference.ok() && !read.ok()) Fail("FromPushed refused a message the generated parser reads");
  if (reference.ok() && !sdk::testing::Difference(*read, *reference).empty()) {
    Fail("FromPushed and the generated parser disagree on " +
         sdk::testing::Difference(*read, *reference));
  }
}

template <typename Request, typename Check>
void Handle(const uint8_t* data, size_t size, Check check) {
  Request request;
  if (ParseRequest(data, size, &request)) check(request);
}

void Run(uint8_t kind, const uint8_t* data, size_t size) {
  Broker& b = TheBroker();
  switch (kind % 14) {
    case 0:
      return Handle<pushv1::ConsumeRequest>(data, size, [](const pushv1::ConsumeRequest& r) {
        if (r.has_subscribe()) Subscribe(r.subscribe());
        if (r.has_settle()) Settle(r.settle());
      });
    case 1:
      return Handle<store::v1::StoredRecord>(data, size, Deliver);
    case 2:
      return Handle<av1::CreateTopicRequest>(data, size, [&](const av1::CreateTopicRequest& r) {
        Answer(ValidateTopicConfig(r.topic()));
        Answer(b.topics.Get(r.topic().name()).status());
      });
    case 3:
      return Handle<av1::UpdateTopicRequest>(data, size, [&](const av1::UpdateTopicRequest& r) {
        Answer(ValidateTopicConfig(r.topic()));
        Answer(b.topics.Get(r.topic().name()).status());
      });
    case 4:
      return Handle<av1::DeleteTopicRequest>(
          data, size, [&](const av1::DeleteTopicRequest& r) { Answer(b.topics.Delete(r.name())); });
    case 5:
      return Handle<av1::CreateGroupRequest>(
          data, size, [&](const av1::CreateGroupRequest& r) { Answer(b.groups.Put(r.group())); });
    case 6:
      return Handle<av1::GetGroupRequest>(data, size, [&](const av1::GetGroupRequest& r) {
        Answer(b.groups.Find(r.name()).status());
      });
    case 7:
      return Handle<av1::DeleteGroupRequest>(
          data, size, [&](const av1::DeleteGroupRequest& r) { Answer(b.groups.Delete(r.name())); });
    case 8:
      return Handle<av1::ResetOffsetRequest>(data, size, [&](const av1::ResetOffsetRequest& r) {
        Answer(b.progress.Reset(r).status());
        (void)FromProtoTimestamp(r.to_time());
      });
    case 9:
      return Handle<av1::GetMessageRequest>(
          data, size, [&](const av1::GetMessageRequest& r) { Answer(b.query.Get(r).status()); });
    case 10:
      return Handle<av1::FindMessagesRequest>(data, size, [&](const av1::FindMessagesRequest& r) {
        Answer(b.query.Find(r, absl::FromUnixSeconds(1'800'000'000)).status());
      });
    case 11:
      return Handle<av1::GetTopicStatsRequest>(data, size, [&](const av1::GetTopicStatsRequest& r) {
        Answer(b.topics.Get(r.name()).status());
      });
    case 12:
      return Handle<av1::GetTopicRequest>(data, size, [&](const av1::GetTopicRequest& r) {
        Answer(b.topics.Get(r.name()).status());
      });
    default:
      return Handle<av1::GetGroupProgressRequest>(
          data, size, [&](const av1::GetGroupProgressRequest& r) {
            Answer(b.progress.Get(r.group(), r.topic()).status());
          });
  }
}

}  // namespace
}  // namespace apogee::broker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  apogee::broker::Run(data[0], data + 1, size - 1);
  return 0;
}
