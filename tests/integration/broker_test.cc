// Broker integration tests: real apogee-nameserver, apogee-store and
// apogee-broker processes, driven over real gRPC with the v2 protocol.
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/broker/v1/receive.grpc.pb.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

#ifndef APOGEE_NAMESERVER_BIN
#error "APOGEE_NAMESERVER_BIN must name the apogee-nameserver binary"
#endif
#ifndef APOGEE_STORE_BIN
#error "APOGEE_STORE_BIN must name the apogee-store binary"
#endif
#ifndef APOGEE_BROKER_BIN
#error "APOGEE_BROKER_BIN must name the apogee-broker binary"
#endif
#ifndef APOGEE_SOURCE_DIR
#error "APOGEE_SOURCE_DIR must name the source tree"
#endif

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
namespace av1 = ::apogee::admin::v1;
namespace bv1 = ::apogee::broker::v1;
namespace nsv1 = ::apogee::nameserver::v1;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

constexpr char kClientId[] = "broker-test@1@0@it";

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10),
                                             const std::string& client_id = kClientId) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context->AddMetadata("x-mq-client-id", client_id);
  return context;
}

struct Received {
  v2::Code code = v2::CODE_UNSPECIFIED;
  std::string message;
  std::vector<v2::Message> messages;
};

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start().ok());
    Connect();
  }

  void StartBroker(std::vector<std::string> extra) {
    absl::Status started = cluster_.StartBroker(std::move(extra));
    ASSERT_TRUE(started.ok()) << started;
    Connect();
  }

  void Connect() {
    channel_ = grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials());
    v2_ = v2::MessagingService::NewStub(channel_);
    admin_ = av1::Admin::NewStub(channel_);
  }

  void CreateTopic(const std::string& name, int queues) {
    absl::Status created = cluster_.CreateTopic(name, queues);
    ASSERT_TRUE(created.ok()) << created;
  }

  static v2::Message Message(const std::string& topic, const std::string& id,
                             const std::string& body, const std::string& tag = "") {
    v2::Message m;
    m.mutable_topic()->set_name(topic);
    m.mutable_system_properties()->set_message_id(id);
    if (!tag.empty()) m.mutable_system_properties()->set_tag(tag);
    m.mutable_system_properties()->add_keys(absl::StrCat("key-", id));
    m.mutable_system_properties()->set_message_type(v2::NORMAL);
    (*m.mutable_user_properties())["origin"] = "broker_test";
    m.set_body(body);
    return m;
  }

  v2::SendMessageResponse Send(std::vector<v2::Message> messages) {
    v2::SendMessageRequest request;
    for (auto& m : messages) *request.add_messages() = std::move(m);
    v2::SendMessageResponse response;
    grpc::Status s = v2_->SendMessage(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  // Sends `n` messages "<prefix>-i" and checks every one was stored.
  void SendMany(const std::string& topic, const std::string& prefix, int n,
                const std::string& tag = "") {
    for (int i = 0; i < n; ++i) {
      v2::SendMessageResponse r = Send({Message(topic, absl::StrCat(prefix, "-", i),
                                                absl::StrCat("body-", prefix, "-", i), tag)});
      ASSERT_EQ(r.status().code(), v2::OK) << r.status().message();
      ASSERT_EQ(r.entries_size(), 1);
    }
  }

  Received Receive(const std::string& group, const std::string& topic, int batch,
                   absl::Duration invisible = absl::Seconds(30),
                   absl::Duration poll = absl::Seconds(1), const std::string& filter = "*",
                   const std::string& client_id = kClientId) {
    v2::ReceiveMessageRequest request;
    request.mutable_group()->set_name(group);
    request.mutable_message_queue()->mutable_topic()->set_name(topic);
    request.mutable_message_queue()->mutable_broker()->set_name("broker-a");
    request.mutable_filter_expression()->set_type(v2::TAG);
    request.mutable_filter_expression()->set_expression(filter);
    request.set_batch_size(batch);
    request.mutable_invisible_duration()->set_seconds(absl::ToInt64Seconds(invisible));
    request.mutable_long_polling_timeout()->set_seconds(absl::ToInt64Seconds(poll));
    auto context = Context(poll + absl::Seconds(5), client_id);
    auto reader = v2_->ReceiveMessage(context.get(), request);
    Received out;
    v2::ReceiveMessageResponse item;
    while (reader->Read(&item)) {
      if (item.has_status()) {
        out.code = item.status().code();
        out.message = item.status().message();
      }
      if (item.has_message()) out.messages.push_back(item.message());
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  v2::Code Ack(const std::string& group, const v2::Message& m,
               const std::string& client_id = kClientId) {
    v2::AckMessageRequest request;
    request.mutable_group()->set_name(group);
    request.mutable_topic()->set_name(m.topic().name());
    v2::AckMessageEntry* e = request.add_entries();
    e->set_message_id(m.system_properties().message_id());
    e->set_receipt_handle(m.system_properties().receipt_handle());
    v2::AckMessageResponse response;
    EXPECT_TRUE(
        v2_->AckMessage(Context(absl::Seconds(10), client_id).get(), request, &response).ok());
    return response.status().code();
  }

  // Receives until `n` messages arrived (bounded), acking each when `ack`.
  std::vector<v2::Message> ReceiveN(const std::string& group, const std::string& topic, int n,
                                    bool ack, const std::string& filter = "*") {
    std::vector<v2::Message> got;
    PollUntil(
        [&] {
          Received r = Receive(group, topic, 32, absl::Seconds(30), absl::Seconds(1), filter);
          for (v2::Message& m : r.messages) {
            if (ack) {
              EXPECT_EQ(Ack(group, m), v2::OK);
            }
            got.push_back(std::move(m));
          }
          return static_cast<int>(got.size()) >= n;
        },
        absl::Seconds(30), absl::Milliseconds(1));
    return got;
  }

  static std::set<std::string> Ids(const std::vector<v2::Message>& messages) {
    std::set<std::string> ids;
    for (const v2::Message& m : messages) ids.insert(m.system_properties().message_id());
    return ids;
  }

  static std::set<std::string> Expected(const std::string& prefix, int n) {
    std::set<std::string> ids;
    for (int i = 0; i < n; ++i) ids.insert(absl::StrCat(prefix, "-", i));
    return ids;
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v2::MessagingService::Stub> v2_;
  std::unique_ptr<av1::Admin::Stub> admin_;
};

TEST_F(BrokerTest, ProduceAndReceiveRoundTrip) {
  CreateTopic("Orders", 4);
  SendMany("Orders", "m", 20, "TagA");
  std::vector<v2::Message> got = ReceiveN("g1", "Orders", 20, /*ack=*/true);
  EXPECT_EQ(Ids(got), Expected("m", 20));
  for (const v2::Message& m : got) {
    const v2::SystemProperties& sp = m.system_properties();
    EXPECT_EQ(m.topic().name(), "Orders");
    EXPECT_EQ(m.body(), absl::StrCat("body-", sp.message_id()));
    EXPECT_EQ(sp.tag(), "TagA");
    EXPECT_EQ(sp.keys(0), absl::StrCat("key-", sp.message_id()));
    EXPECT_EQ(sp.delivery_attempt(), 1);
    EXPECT_EQ(sp.body_digest().type(), v2::MD5);
    EXPECT_EQ(sp.body_digest().checksum().size(), 32u);
    EXPECT_TRUE(sp.has_store_timestamp());
    EXPECT_FALSE(sp.receipt_handle().empty());
    EXPECT_EQ(m.user_properties().at("origin"), "broker_test");
  }
  // Everything acked: nothing more to receive.
  Received after = Receive("g1", "Orders", 32);
  EXPECT_EQ(after.code, v2::MESSAGE_NOT_FOUND);
  EXPECT_TRUE(after.messages.empty());

  auto metrics = testing::HttpGet(cluster_.broker()->metrics_address(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics, HasSubstr("apogee_messages_in_total{"));
  EXPECT_THAT(*metrics, HasSubstr("topic=\"Orders\"} 20"));
  // Each of the 20 was acked in its own AckMessage.
  auto acks = testing::ScrapeMetric(cluster_.broker()->metrics_address(), "apogee_rpc_total",
                                    {{"rpc", "ack"}, {"result", "OK"}});
  ASSERT_TRUE(acks.ok()) << acks.status();
  EXPECT_EQ(*acks, 20);
}

TEST_F(BrokerTest, LongPollReturnsAsSoonAsAMessageArrives) {
  CreateTopic("Live", 2);
  // The topic stays empty for `wait` after the receive starts: the call
  // must park through it (not answer "no message" at once, not return
  // before the send) and return soon after the message arrives.
  const absl::Duration wait = absl::Milliseconds(300);
  absl::Time sent_at;
  const absl::Time start = absl::Now();
  std::thread producer([&] {
    absl::SleepFor(wait);  // the delay under test, not a wait for a result
    sent_at = absl::Now();
    SendMany("Live", "live", 1);
  });
  Received r = Receive("g", "Live", 8, absl::Seconds(30), absl::Seconds(15));
  const absl::Time returned = absl::Now();
  producer.join();
  EXPECT_EQ(r.code, v2::OK) << r.message;
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_GE(returned - start, wait);                 // parked through the wait
  EXPECT_GE(returned, sent_at);                      // answered only once the message was sent
  EXPECT_LT(returned - sent_at, absl::Seconds(10));  // well before the 15 s poll ends
}

TEST_F(BrokerTest, TagFilterDeliversOnlyMatchingTags) {
  CreateTopic("Tagged", 2);
  SendMany("Tagged", "a", 5, "TagA");
  SendMany("Tagged", "b", 5, "TagB");
  SendMany("Tagged", "c", 5, "TagC");
  std::vector<v2::Message> got = ReceiveN("gf", "Tagged", 10, true, "TagA||TagC");
  std::set<std::string> want = Expected("a", 5);
  for (const std::string& id : Expected("c", 5)) want.insert(id);
  EXPECT_EQ(Ids(got), want);
  EXPECT_EQ(Receive("gf", "Tagged", 32, absl::Seconds(30), absl::Seconds(1), "TagA||TagC").code,
            v2::MESSAGE_NOT_FOUND);
}

TEST_F(BrokerTest, ClusteringGroupSplitsMessagesAcrossMembers) {
  CreateTopic("Work", 4);
  SendMany("Work", "w", 40);
  // Two members of one group alternate receives; each message goes to one.
  std::vector<v2::Message> member1, member2;
  PollUntil(
      [&] {
        for (auto* member : {&member1, &member2}) {
          Received r = Receive("workers", "Work", 5);
          for (v2::Message& m : r.messages) {
            EXPECT_EQ(Ack("workers", m), v2::OK);
            member->push_back(std::move(m));
          }
        }
        return member1.size() + member2.size() >= 40;
      },
      absl::Seconds(30), absl::Milliseconds(1));
  std::set<std::string> all = Ids(member1);
  for (const std::string& id : Ids(member2)) {
    EXPECT_EQ(all.count(id), 0u) << id << " delivered to both members";
    all.insert(id);
  }
  EXPECT_EQ(all, Expected("w", 40));
  EXPECT_FALSE(member1.empty());
  EXPECT_FALSE(member2.empty());
}

TEST_F(BrokerTest, EveryGroupGetsEveryMessage) {
  CreateTopic("Fanout", 2);
  SendMany("Fanout", "f", 10);
  EXPECT_EQ(Ids(ReceiveN("ga", "Fanout", 10, true)), Expected("f", 10));
  EXPECT_EQ(Ids(ReceiveN("gb", "Fanout", 10, true)), Expected("f", 10));
}

TEST_F(BrokerTest, BroadcastingGroupGivesEveryMemberEveryMessage) {
  CreateTopic("News", 2);
  av1::CreateGroupRequest create;
  create.mutable_group()->set_name("readers");
  create.mutable_group()->set_consume_mode(av1::CONSUME_MODE_BROADCASTING);
  av1::CreateGroupResponse created;
  ASSERT_TRUE(admin_->CreateGroup(Context().get(), create, &created).ok());
  EXPECT_EQ(created.group().consume_mode(), av1::CONSUME_MODE_BROADCASTING);
  SendMany("News", "n", 10);
  for (const char* member : {"host-a@1@0@x", "host-b@2@0@y", "host-c@3@0@z"}) {
    std::set<std::string> ids;
    PollUntil(
        [&] {
          Received r =
              Receive("readers", "News", 32, absl::Seconds(30), absl::Seconds(1), "*", member);
          for (const v2::Message& m : r.messages) {
            EXPECT_EQ(Ack("readers", m, member), v2::OK);
            ids.insert(m.system_properties().message_id());
          }
          return ids.size() >= 10;
        },
        absl::Seconds(30), absl::Milliseconds(1));
    EXPECT_EQ(ids, Expected("n", 10)) << member;
    // The member's progress is its own: nothing more for it.
    EXPECT_EQ(Receive("readers", "News", 32, absl::Seconds(30), absl::Seconds(1), "*", member).code,
              v2::MESSAGE_NOT_FOUND);
  }
  // The config survives a broker restart (it lives in the store).
  ASSERT_TRUE(cluster_.broker()->Restart(/*same_port=*/true).ok());
  av1::GetGroupRequest get;
  get.set_name("readers");
  av1::GetGroupResponse got;
  ASSERT_TRUE(admin_->GetGroup(Context().get(), get, &got).ok());
  EXPECT_EQ(got.group().consume_mode(), av1::CONSUME_MODE_BROADCASTING);
}

TEST_F(BrokerTest, BrokerPushesCommandsOnTheTelemetryStream) {
  const std::string client_id = "stacky@1@0@z";
  auto context = Context(absl::Seconds(60), client_id);
  auto stream = v2_->Telemetry(context.get());
  v2::TelemetryCommand hello;
  hello.mutable_settings()->set_client_type(v2::PRODUCER);
  ASSERT_TRUE(stream->Write(hello));
  v2::TelemetryCommand reply;
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.status().code(), v2::OK);

  av1::ListClientsResponse clients;
  ASSERT_TRUE(admin_->ListClients(Context().get(), av1::ListClientsRequest(), &clients).ok());
  EXPECT_THAT(clients.client_ids(), ::testing::Contains(client_id));

  // An operator asks for the client's stack trace; the broker pushes the
  // command on the client's stream and returns the client's answer.
  std::thread client([&] {
    v2::TelemetryCommand command;
    if (!stream->Read(&command)) return;
    v2::TelemetryCommand answer;
    answer.mutable_thread_stack_trace()->set_nonce(
        command.print_thread_stack_trace_command().nonce());
    answer.mutable_thread_stack_trace()->set_thread_stack_trace("main: waiting on a queue");
    stream->Write(answer);
  });
  av1::GetClientStackTraceRequest request;
  request.set_client_id(client_id);
  av1::GetClientStackTraceResponse response;
  grpc::Status status = admin_->GetClientStackTrace(Context().get(), request, &response);
  client.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.stack_trace(), "main: waiting on a queue");

  request.set_client_id("nobody@0@0@0");
  EXPECT_EQ(admin_->GetClientStackTrace(Context().get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(PollUntil(
      [&] {
        av1::ListClientsResponse now;
        return admin_->ListClients(Context().get(), av1::ListClientsRequest(), &now).ok() &&
               now.client_ids_size() == 0;
      },
      absl::Seconds(10)));
}

TEST_F(BrokerTest, PullConsumersEachReadEveryMessage) {
  CreateTopic("Broadcast", 1);
  SendMany("Broadcast", "p", 10);
  for (const char* consumer : {"pull-1", "pull-2", "pull-3"}) {
    int64_t offset = 0;
    std::set<std::string> ids;
    PollUntil(
        [&] {
          v2::PullMessageRequest request;
          request.mutable_group()->set_name(consumer);
          request.mutable_message_queue()->mutable_topic()->set_name("Broadcast");
          request.mutable_message_queue()->set_id(0);
          request.set_offset(offset);
          request.set_batch_size(4);
          request.mutable_filter_expression()->set_expression("*");
          request.mutable_long_polling_timeout()->set_seconds(1);
          auto context = Context();
          auto reader = v2_->PullMessage(context.get(), request);
          v2::PullMessageResponse item;
          while (reader->Read(&item)) {
            if (item.has_message()) ids.insert(item.message().system_properties().message_id());
            if (item.content_case() == v2::PullMessageResponse::kNextOffset) {
              offset = item.next_offset();
            }
          }
          EXPECT_TRUE(reader->Finish().ok());
          return ids.size() >= 10;
        },
        absl::Seconds(30), absl::Milliseconds(1));
    EXPECT_EQ(ids, Expected("p", 10)) << consumer;
    EXPECT_EQ(offset, 10);
    // Pull consumers keep their own offsets on the server.
    v2::UpdateOffsetRequest update;
    update.mutable_group()->set_name(consumer);
    update.mutable_message_queue()->mutable_topic()->set_name("Broadcast");
    update.set_offset(offset);
    v2::UpdateOffsetResponse updated;
    ASSERT_TRUE(v2_->UpdateOffset(Context().get(), update, &updated).ok());
    EXPECT_EQ(updated.status().code(), v2::OK) << updated.status().message();
    v2::GetOffsetRequest get;
    get.mutable_group()->set_name(consumer);
    get.mutable_message_queue()->mutable_topic()->set_name("Broadcast");
    v2::GetOffsetResponse got;
    ASSERT_TRUE(v2_->GetOffset(Context().get(), get, &got).ok());
    EXPECT_EQ(got.offset(), 10);
  }
}

TEST_F(BrokerTest, UnackedMessageComesBackWithTheNextAttempt) {
  CreateTopic("Retry", 1);
  SendMany("Retry", "r", 1);
  Received first = Receive("gr", "Retry", 1, absl::Seconds(1));
  ASSERT_EQ(first.messages.size(), 1u) << first.message;
  EXPECT_EQ(first.messages[0].system_properties().delivery_attempt(), 1);
  // Not acked: after its invisible second it is delivered again.
  std::vector<v2::Message> again = ReceiveN("gr", "Retry", 1, /*ack=*/false);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].system_properties().message_id(), "r-0");
  EXPECT_EQ(again[0].system_properties().delivery_attempt(), 2);
  EXPECT_EQ(again[0].topic().name(), "Retry");  // the original topic, not %RETRY%
  EXPECT_EQ(again[0].body(), "body-r-0");
  // The old handle is stale now.
  EXPECT_EQ(Ack("gr", first.messages[0]), v2::INVALID_RECEIPT_HANDLE);
  EXPECT_EQ(Ack("gr", again[0]), v2::OK);
}

TEST_F(BrokerTest, MessageGoesToDlqAfterMaxAttempts) {
  CreateTopic("Poison", 1);
  SendMany("Poison", "x", 1);
  // --max_delivery_attempts=3: three deliveries without ack, then the DLQ.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    std::vector<v2::Message> got;
    PollUntil(
        [&] {
          Received r = Receive("gd", "Poison", 1, absl::Seconds(1));
          got = r.messages;
          return !got.empty();
        },
        absl::Seconds(30), absl::Milliseconds(1));
    ASSERT_EQ(got.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(got[0].system_properties().delivery_attempt(), attempt);
  }
  std::vector<v2::Message> dead;
  PollUntil(
      [&] {
        Received r = Receive("dlq-reader", "%DLQ%gd", 1);
        dead = r.messages;
        return !dead.empty();
      },
      absl::Seconds(30), absl::Milliseconds(1));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].system_properties().dead_letter_queue().topic(), "Poison");
  EXPECT_EQ(dead[0].system_properties().dead_letter_queue().message_id(), "x-0");
  EXPECT_EQ(dead[0].body(), "body-x-0");
  // And the group itself never sees it again.
  EXPECT_EQ(Receive("gd", "Poison", 1, absl::Seconds(1), absl::Seconds(2)).code,
            v2::MESSAGE_NOT_FOUND);
}

TEST_F(BrokerTest, ChangeInvisibleDurationGivesANewHandle) {
  CreateTopic("Extend", 1);
  SendMany("Extend", "e", 1);
  Received r = Receive("ge", "Extend", 1, absl::Seconds(30));
  ASSERT_EQ(r.messages.size(), 1u);
  v2::ChangeInvisibleDurationRequest request;
  request.mutable_group()->set_name("ge");
  request.mutable_topic()->set_name("Extend");
  request.set_receipt_handle(r.messages[0].system_properties().receipt_handle());
  request.mutable_invisible_duration()->set_seconds(60);
  v2::ChangeInvisibleDurationResponse response;
  ASSERT_TRUE(v2_->ChangeInvisibleDuration(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status().code(), v2::OK);
  ASSERT_FALSE(response.receipt_handle().empty());
  EXPECT_NE(response.receipt_handle(), request.receipt_handle());
  EXPECT_EQ(Ack("ge", r.messages[0]), v2::INVALID_RECEIPT_HANDLE);  // old handle
  r.messages[0].mutable_system_properties()->set_receipt_handle(response.receipt_handle());
  EXPECT_EQ(Ack("ge", r.messages[0]), v2::OK);
}

// apogee.broker.v1.Receiver: the same receive as v2, its messages packed
// into as few responses as the 4 MiB frame limit allows, the status in the
// last one only.
TEST_F(BrokerTest, BatchedReceivePacksMessagesAndSplitsAtTheFrameLimit) {
  CreateTopic("Packed", 1);
  SendMany("Packed", "small", 10);
  const std::string big(3 << 20, 'b');  // two do not fit in one frame
  for (int i = 0; i < 3; ++i) {
    v2::SendMessageResponse r = Send({Message("Packed", absl::StrCat("big-", i), big)});
    ASSERT_EQ(r.status().code(), v2::OK) << r.status().message();
  }
  auto receiver = bv1::Receiver::NewStub(channel_);
  auto receive = [&](absl::Duration poll) {
    v2::ReceiveMessageRequest request;
    request.mutable_group()->set_name("gp");
    request.mutable_message_queue()->mutable_topic()->set_name("Packed");
    request.mutable_filter_expression()->set_type(v2::TAG);
    request.mutable_filter_expression()->set_expression("*");
    request.set_batch_size(32);
    request.mutable_invisible_duration()->set_seconds(30);
    request.mutable_long_polling_timeout()->set_seconds(absl::ToInt64Seconds(poll));
    auto context = Context(poll + absl::Seconds(10));
    auto reader = receiver->Receive(context.get(), request);
    std::vector<bv1::ReceiveResponse> frames;
    bv1::ReceiveResponse frame;
    while (reader->Read(&frame)) frames.push_back(frame);
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return frames;
  };

  std::vector<bv1::ReceiveResponse> frames = receive(absl::Seconds(1));
  // 10 small + 3 × 3 MiB: the small ones and the first big one, then each
  // other big one alone.
  ASSERT_EQ(frames.size(), 3u);
  std::vector<int> per_frame;
  std::set<std::string> ids;
  for (size_t i = 0; i < frames.size(); ++i) {
    per_frame.push_back(frames[i].messages_size());
    EXPECT_EQ(frames[i].has_status(), i + 1 == frames.size()) << "frame " << i;
    for (const bv1::PushedMessage& m : frames[i].messages()) {
      const std::string& id = m.message().message_id();
      ids.insert(id);
      EXPECT_EQ(m.message().body(), absl::StartsWith(id, "big-") ? big : absl::StrCat("body-", id));
      EXPECT_EQ(m.delivery_attempt(), 1);
      // Acked with v2 AckMessage like any received message.
      v2::Message acked = Message("Packed", id, "");
      acked.mutable_system_properties()->set_receipt_handle(m.receipt_handle());
      EXPECT_EQ(Ack("gp", acked), v2::OK) << id;
    }
  }
  EXPECT_THAT(per_frame, ::testing::ElementsAre(11, 1, 1));
  EXPECT_EQ(frames.back().status().code(), v2::OK);
  std::set<std::string> expected = Expected("small", 10);
  for (int i = 0; i < 3; ++i) expected.insert(absl::StrCat("big-", i));
  EXPECT_EQ(ids, expected);

  // All acked: the long poll ends with MESSAGE_NOT_FOUND in a lone frame.
  frames = receive(absl::Seconds(1));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].messages_size(), 0);
  EXPECT_EQ(frames[0].status().code(), v2::MESSAGE_NOT_FOUND);
}

TEST_F(BrokerTest, RestartLosesNoAckedMessageNorCommittedOffset) {
  CreateTopic("Durable", 2);
  SendMany("Durable", "d", 10);
  std::vector<v2::Message> first = ReceiveN("gk", "Durable", 4, /*ack=*/true);
  ASSERT_GE(first.size(), 4u);
  // Kill the broker hard; the store keeps messages, topics and offsets.
  ASSERT_TRUE(cluster_.broker()->Restart(/*same_port=*/true).ok()) << cluster_.broker()->LogTail();
  std::vector<v2::Message> rest = ReceiveN("gk", "Durable", 10 - static_cast<int>(first.size()),
                                           /*ack=*/true);
  std::set<std::string> all = Ids(first);
  for (const std::string& id : Ids(rest)) {
    EXPECT_EQ(all.count(id), 0u) << id << " was acked before the restart but came back";
    all.insert(id);
  }
  EXPECT_EQ(all, Expected("d", 10));
  // A restart of the store as well loses nothing acknowledged.
  SendMany("Durable", "after", 3);
  ASSERT_TRUE(cluster_.store()->Restart(/*same_port=*/false).ok()) << cluster_.store()->LogTail();
  EXPECT_EQ(Ids(ReceiveN("gk", "Durable", 3, true)), Expected("after", 3));
}

TEST_F(BrokerTest, BadInputGetsPreciseCodes) {
  CreateTopic("Strict", 1);
  v2::SendMessageResponse r = Send({Message("bad topic!", "i-1", "x")});
  EXPECT_EQ(r.status().code(), v2::ILLEGAL_TOPIC);
  EXPECT_THAT(r.status().message(), HasSubstr("\"bad topic!\""));

  r = Send({Message("Strict", "i-2", std::string(4 * 1024 * 1024 + 1, 'x'))});
  EXPECT_EQ(r.status().code(), v2::MESSAGE_BODY_TOO_LARGE);
  ASSERT_EQ(r.entries_size(), 1);
  EXPECT_EQ(r.entries(0).status().code(), v2::MESSAGE_BODY_TOO_LARGE);
  EXPECT_THAT(r.status().message(), HasSubstr("max 4194304"));

  v2::Message reserved = Message("Strict", "i-3", "x");
  (*reserved.mutable_user_properties())["UNIQ_KEY"] = "y";
  EXPECT_EQ(Send({reserved}).status().code(), v2::ILLEGAL_MESSAGE_PROPERTY_KEY);

  v2::Message no_id = Message("Strict", "", "x");
  EXPECT_EQ(Send({no_id}).status().code(), v2::ILLEGAL_MESSAGE_ID);

  Received bad_group = Receive("bad group", "Strict", 1);
  EXPECT_EQ(bad_group.code, v2::ILLEGAL_CONSUMER_GROUP);
  Received missing = Receive("g", "NoSuchTopic", 1);
  EXPECT_EQ(missing.code, v2::TOPIC_NOT_FOUND);
  Received short_invisible = Receive("g", "Strict", 1, absl::Seconds(0));
  EXPECT_EQ(short_invisible.code, v2::ILLEGAL_INVISIBLE_TIME);

  v2::Message bogus;
  bogus.mutable_topic()->set_name("Strict");
  bogus.mutable_system_properties()->set_receipt_handle("not-a-handle");
  EXPECT_EQ(Ack("g", bogus), v2::INVALID_RECEIPT_HANDLE);

  // Nothing invalid was stored.
  EXPECT_EQ(Receive("g", "Strict", 32).code, v2::MESSAGE_NOT_FOUND);
}

TEST_F(BrokerTest, AutoCreateCanBeTurnedOff) {
  // On by default: the first send creates the topic with 8 queues.
  EXPECT_EQ(Send({Message("Fresh", "f-1", "x")}).status().code(), v2::OK);
  av1::GetTopicRequest get;
  get.set_name("Fresh");
  av1::GetTopicResponse fresh;
  ASSERT_TRUE(admin_->GetTopic(Context().get(), get, &fresh).ok());
  EXPECT_EQ(fresh.topic().write_queues(), 8);
  EXPECT_EQ(fresh.topic().read_queues(), 8);

  ASSERT_TRUE(cluster_.broker()->Stop(SIGTERM).ok());
  StartBroker({"--auto_create_topic=false"});
  v2::SendMessageResponse r = Send({Message("Unknown", "u-1", "x")});
  EXPECT_EQ(r.status().code(), v2::TOPIC_NOT_FOUND);
  v2::QueryRouteRequest request;
  request.mutable_topic()->set_name("Unknown");
  v2::QueryRouteResponse route;
  ASSERT_TRUE(v2_->QueryRoute(Context().get(), request, &route).ok());
  EXPECT_EQ(route.status().code(), v2::TOPIC_NOT_FOUND);
}

// An official client knows only the NameServer: its QueryRoute for a topic
// nobody created names the broker that auto-creates (8 queues, the default),
// and the send there creates the topic. Without auto-create: TOPIC_NOT_FOUND.
TEST_F(BrokerTest, NameServerRoutesANewTopicToTheAutoCreatingBroker) {
  auto ns = v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.nameserver()->address(), grpc::InsecureChannelCredentials()));
  auto query = [&](const std::string& topic, v2::QueryRouteResponse* route) {
    v2::QueryRouteRequest request;
    request.mutable_topic()->set_name(topic);
    route->Clear();
    return ns->QueryRoute(Context().get(), request, route).ok();
  };
  v2::QueryRouteResponse route;
  ASSERT_TRUE(
      PollUntil([&] { return query("FirstSeen", &route) && route.status().code() == v2::OK; },
                absl::Seconds(10)))
      << route.status().ShortDebugString();
  ASSERT_EQ(route.message_queues_size(), 8);
  const v2::Address& address = route.message_queues(0).broker().endpoints().addresses(0);
  EXPECT_EQ(absl::StrCat(address.host(), ":", address.port()), cluster_.broker()->address());
  EXPECT_EQ(Send({Message("FirstSeen", "n-1", "x")}).status().code(), v2::OK);

  ASSERT_TRUE(cluster_.broker()->Stop(SIGTERM).ok());
  StartBroker({"--auto_create_topic=false"});
  EXPECT_TRUE(PollUntil(
      [&] { return query("SecondSeen", &route) && route.status().code() == v2::TOPIC_NOT_FOUND; },
      absl::Seconds(10)))
      << route.status().ShortDebugString();
  // The topic the first send created is served for real now.
  ASSERT_TRUE(
      PollUntil([&] { return query("FirstSeen", &route) && route.status().code() == v2::OK; },
                absl::Seconds(10)));
}

TEST_F(BrokerTest, TopicsReachTheNameServer) {
  CreateTopic("Announced", 3);
  auto ns = v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.nameserver()->address(), grpc::InsecureChannelCredentials()));
  v2::QueryRouteResponse route;
  ASSERT_TRUE(PollUntil(
      [&] {
        v2::QueryRouteRequest request;
        request.mutable_topic()->set_name("Announced");
        route.Clear();
        return ns->QueryRoute(Context().get(), request, &route).ok() &&
               route.status().code() == v2::OK;
      },
      absl::Seconds(10)));
  ASSERT_EQ(route.message_queues_size(), 3);
  const v2::Address& address = route.message_queues(0).broker().endpoints().addresses(0);
  EXPECT_EQ(absl::StrCat(address.host(), ":", address.port()), cluster_.broker()->address());

  // A broker that stops is gone from the NameServer at once (session closed).
  ASSERT_TRUE(cluster_.broker()->Stop(SIGTERM).ok());
  EXPECT_TRUE(PollUntil(
      [&] {
        v2::QueryRouteRequest request;
        request.mutable_topic()->set_name("Announced");
        v2::QueryRouteResponse r;
        return ns->QueryRoute(Context().get(), request, &r).ok() &&
               r.status().code() == v2::TOPIC_NOT_FOUND;
      },
      absl::Seconds(10)));
}

// Runs a Node script from tests/interop/node with the official client.
std::pair<int, std::string> RunNode(const std::string& dir, const std::string& script,
                                    const std::string& args) {
  return testing::RunNodeInterop(APOGEE_SOURCE_DIR, script, args,
                                 absl::StrCat(dir, "/", script, ".log"));
}

TEST_F(BrokerTest, OfficialNodeClientProducesAndConsumesDirectly) {
  CreateTopic("NodeDirect", 4);
  auto [code, output] =
      RunNode(cluster_.dir(), "broker_roundtrip.js",
              absl::StrCat(cluster_.broker()->address(), " NodeDirect node-g1 20"));
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("sent 20"));
  EXPECT_THAT(output, HasSubstr("received 20"));
  EXPECT_THAT(output, HasSubstr("acked 20"));
}

TEST_F(BrokerTest, OfficialNodeClientWorksThroughTheNameServer) {
  CreateTopic("NodeViaNs", 4);
  // Wait until the NameServer routes the topic to the broker.
  auto ns = v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.nameserver()->address(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(PollUntil(
      [&] {
        v2::QueryRouteRequest request;
        request.mutable_topic()->set_name("NodeViaNs");
        v2::QueryRouteResponse route;
        return ns->QueryRoute(Context().get(), request, &route).ok() &&
               route.status().code() == v2::OK;
      },
      absl::Seconds(10)));
  auto [code, output] =
      RunNode(cluster_.dir(), "broker_roundtrip.js",
              absl::StrCat(cluster_.nameserver()->address(), " NodeViaNs node-g2 20"));
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("received 20"));
}

}  // namespace
}  // namespace apogee
