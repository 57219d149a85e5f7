// Delayed messages end to end (docs/design/message-types.md §2, §8): the C++
// SDK sends with a delivery time through real apogee-nameserver,
// apogee-store and apogee-broker processes; a SimpleConsumer never sees a
// message before its time, sees each within a tolerance, and pending timers
// survive SIGKILL of the store and the broker. Delays are 1-2 s.
#include <csignal>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/common/naming/names.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

class DelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.enable_metrics();
    absl::Status started = cluster_.Start({"--max_delivery_delay=1h"});
    ASSERT_TRUE(started.ok()) << started;
  }

  void CreateTopic(const std::string& topic) {
    absl::Status created = cluster_.CreateTopic(topic, 2);
    ASSERT_TRUE(created.ok()) << created;
    ASSERT_TRUE(PollUntil(
        [&] {
          ProducerOptions options;
          options.endpoints = {cluster_.nameserver_address()};
          auto probe = Producer::Create(options);
          return probe.ok() && (*probe)->Send(Probe(topic)).ok();
        },
        absl::Seconds(15)));
  }

  static Message Probe(const std::string& topic) {
    Message m;
    m.topic = topic;
    m.body = "probe";
    return m;
  }

  std::unique_ptr<Producer> NewProducer() {
    ProducerOptions options;
    options.endpoints = {cluster_.nameserver_address()};
    auto producer = Producer::Create(options);
    EXPECT_TRUE(producer.ok()) << producer.status();
    return producer.ok() ? std::move(producer).value() : nullptr;
  }

  std::unique_ptr<SimpleConsumer> NewConsumer(const std::string& topic) {
    SimpleConsumerOptions options;
    options.endpoints = {cluster_.nameserver_address()};
    options.group = "delay-group";
    options.subscriptions[topic] = "*";
    // Long polls: the store's WatchQueues wakes them when a timer fires, so
    // a delivery's lateness is well below the poll time.
    options.await_duration = absl::Seconds(5);
    auto consumer = SimpleConsumer::Create(options);
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    return consumer.ok() ? std::move(consumer).value() : nullptr;
  }

  // Receives until `want` delayed bodies came (probes are acked and
  // skipped); body -> (times received, first receive time, its delivery time).
  struct Seen {
    int count = 0;
    absl::Time at;
    absl::Time due;
  };
  static std::map<std::string, Seen> ReceiveDelayed(SimpleConsumer& consumer, size_t want,
                                                    absl::Duration timeout,
                                                    absl::Duration linger = absl::ZeroDuration()) {
    std::map<std::string, Seen> seen;
    absl::Time done_at = absl::InfiniteFuture();
    PollUntil(
        [&] {
          auto messages = consumer.Receive(32, absl::Seconds(30));
          EXPECT_TRUE(messages.ok()) << messages.status();
          const absl::Time now = absl::Now();
          if (messages.ok()) {
            for (const ReceivedMessage& m : *messages) {
              EXPECT_TRUE(consumer.Ack(m).ok());
              if (m.body == "probe") continue;
              Seen& s = seen[m.body];
              if (s.count++ == 0) s = {1, now, m.delivery_time};
            }
          }
          if (seen.size() >= want && done_at == absl::InfiniteFuture()) done_at = now + linger;
          return now >= done_at;
        },
        timeout, absl::ZeroDuration());
    return seen;
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
};

TEST_F(DelayTest, DeliversDelayedOnTimeNeverEarly) {
  CreateTopic("DelayTopic");
  auto producer = NewProducer();
  auto consumer = NewConsumer("DelayTopic");
  ASSERT_NE(producer, nullptr);
  ASSERT_NE(consumer, nullptr);
  const absl::Time start = absl::Now();
  for (int i = 0; i < 10; ++i) {
    Message m = Probe("DelayTopic");
    m.body = absl::StrCat("d", i);
    m.delivery_time = start + absl::Milliseconds(1000 + 100 * i);
    auto receipt = producer->Send(m);
    ASSERT_TRUE(receipt.ok()) << receipt.status();
  }
  Message level = Probe("DelayTopic");
  level.body = "level1";
  level.delay_level = 1;  // 1 s
  ASSERT_TRUE(producer->Send(level).ok());
  Message past = Probe("DelayTopic");
  past.body = "past";
  past.delivery_time = start - absl::Seconds(5);  // due already: delivered at once
  ASSERT_TRUE(producer->Send(past).ok());

  std::map<std::string, Seen> seen = ReceiveDelayed(*consumer, 12, absl::Seconds(20));
  ASSERT_EQ(seen.size(), 12u);
  for (const auto& [body, s] : seen) {
    EXPECT_EQ(s.count, 1) << body;
    EXPECT_GE(s.at, s.due) << body << " arrived early";
    // Loose on a loaded CI (the store fires to the ms and wakes the poll);
    // a poll that missed the wake-up would take its full 5 s.
    if (body != "past") {
      EXPECT_LT(s.at - s.due, absl::Milliseconds(1500)) << body;
    }
  }
  EXPECT_LT(seen["past"].at - start, absl::Seconds(1));

  // The store's timer metrics: 11 fired (the past one was no timer), none
  // pending (the gauge follows within a pass), 11 lateness samples.
  auto metric = [&](const std::string& name) {
    return testing::ScrapeMetric(cluster_.store()->metrics_address(), name).value_or(-1);
  };
  EXPECT_EQ(metric("apogee_store_timers_fired_total"), 11);
  EXPECT_EQ(metric("apogee_store_timer_lateness_seconds_count"), 11);
  EXPECT_TRUE(
      PollUntil([&] { return metric("apogee_store_timers_pending") == 0; }, absl::Seconds(5)));

  Message far = Probe("DelayTopic");
  far.delivery_time = absl::Now() + absl::Hours(2);
  auto refused = producer->Send(far);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("--max_delivery_delay=1h"));
}

TEST_F(DelayTest, DelayedFifoIsRefused) {
  CreateTopic("DelayFifo");
  auto stub = v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  v2::SendMessageRequest request;
  v2::Message* m = request.add_messages();
  m->mutable_topic()->set_name("DelayFifo");
  m->set_body("x");
  m->mutable_system_properties()->set_message_id("01DELAYEDFIFO");
  m->mutable_system_properties()->set_message_group("g1");
  m->mutable_system_properties()->mutable_delivery_timestamp()->set_seconds(
      absl::ToUnixSeconds(absl::Now()) + 5);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  context.AddMetadata("x-mq-client-id", "delay-test@1@0@it");
  v2::SendMessageResponse response;
  ASSERT_TRUE(stub->SendMessage(&context, request, &response).ok());
  EXPECT_EQ(response.status().code(), v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  EXPECT_THAT(response.status().message(), HasSubstr("message_group and delivery_timestamp"));
}

TEST_F(DelayTest, PendingTimersSurviveSigkill) {
  CreateTopic("DelayKill");
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  const absl::Time due = absl::Now() + absl::Seconds(2);
  for (int i = 0; i < 10; ++i) {
    Message m = Probe("DelayKill");
    m.body = absl::StrCat("k", i);
    m.delivery_time = due;
    ASSERT_TRUE(producer->Send(m).ok());
  }
  producer.reset();
  ASSERT_TRUE(cluster_.broker()->Stop(SIGKILL).ok());
  ASSERT_TRUE(cluster_.store()->Stop(SIGKILL).ok());
  ASSERT_TRUE(cluster_.RestartStore().ok());
  ASSERT_TRUE(cluster_.RestartBroker().ok());
  // The restarted broker registers the topic with its first heartbeat; until
  // then the NameServer knows no live broker for it and a receive fails.
  producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(PollUntil([&] { return producer->Send(Probe("DelayKill")).ok(); }, absl::Seconds(20),
                        absl::Milliseconds(100)));
  auto consumer = NewConsumer("DelayKill");
  ASSERT_NE(consumer, nullptr);
  // Linger a second after the last to catch a second copy of any.
  std::map<std::string, Seen> seen =
      ReceiveDelayed(*consumer, 10, absl::Seconds(25), absl::Seconds(1));
  ASSERT_EQ(seen.size(), 10u) << cluster_.store()->LogTail();
  for (const auto& [body, s] : seen) {
    EXPECT_EQ(s.count, 1) << body << " delivered more than once";
    EXPECT_GE(s.at, due) << body << " arrived early";
  }
}

// Clients can neither send to nor read from a system topic, even one that
// holds records (the pending timer below): v2 sends and routes say
// ILLEGAL_TOPIC, receives FORBIDDEN, the SDK refuses before calling, all
// naming the topic; nothing auto-creates it.
TEST_F(DelayTest, SystemTopicsAreNeitherSentToNorRead) {
  CreateTopic("DelaySys");
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  Message pending = Probe("DelaySys");
  pending.delivery_time = absl::Now() + absl::Minutes(30);
  ASSERT_TRUE(producer->Send(pending).ok());

  const std::string quoted = absl::StrCat("\"", kTimerTopic, "\" is a system topic");
  auto context = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    c->AddMetadata("x-mq-client-id", "delay-test@1@0@sys");
    return c;
  };
  auto broker = v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  for (const char* topic : {kTimerTopic, "RMQ_SYS_TRANS_HALF_TOPIC"}) {
    v2::SendMessageRequest send;
    v2::Message* m = send.add_messages();
    m->mutable_topic()->set_name(topic);
    m->set_body("x");
    m->mutable_system_properties()->set_message_id("01SYSTOPIC");
    v2::SendMessageResponse sent;
    ASSERT_TRUE(broker->SendMessage(context().get(), send, &sent).ok());
    EXPECT_EQ(sent.status().code(), v2::ILLEGAL_TOPIC) << topic;
    EXPECT_THAT(sent.status().message(), HasSubstr(absl::StrCat("\"", topic, "\" is a system")));
  }
  v2::QueryRouteRequest route;
  route.mutable_topic()->set_name(kTimerTopic);
  for (const std::string& address : {cluster_.broker_address(), cluster_.nameserver_address()}) {
    auto stub = v2::MessagingService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    v2::QueryRouteResponse routed;
    ASSERT_TRUE(stub->QueryRoute(context().get(), route, &routed).ok());
    EXPECT_EQ(routed.status().code(), v2::ILLEGAL_TOPIC) << address;
    EXPECT_THAT(routed.status().message(), HasSubstr(quoted)) << address;
  }
  v2::QueryAssignmentRequest assignment;
  assignment.mutable_topic()->set_name(kTimerTopic);
  assignment.mutable_group()->set_name("sys-group");
  v2::QueryAssignmentResponse assigned;
  ASSERT_TRUE(broker->QueryAssignment(context().get(), assignment, &assigned).ok());
  EXPECT_EQ(assigned.status().code(), v2::FORBIDDEN);
  EXPECT_THAT(assigned.status().message(), HasSubstr(quoted));

  v2::ReceiveMessageRequest receive;
  receive.mutable_group()->set_name("sys-group");
  receive.mutable_message_queue()->mutable_topic()->set_name(kTimerTopic);
  receive.mutable_message_queue()->set_id(-1);
  receive.mutable_filter_expression()->set_expression("*");
  receive.set_batch_size(1);
  receive.mutable_invisible_duration()->set_seconds(10);
  receive.mutable_long_polling_timeout()->set_seconds(1);
  auto receive_context = context();
  auto stream = broker->ReceiveMessage(receive_context.get(), receive);
  v2::ReceiveMessageResponse item;
  bool got_status = false;
  while (stream->Read(&item)) {
    EXPECT_FALSE(item.has_message()) << "a client read the system topic";
    if (!item.has_status()) continue;
    got_status = true;
    EXPECT_EQ(item.status().code(), v2::FORBIDDEN);
    EXPECT_THAT(item.status().message(), HasSubstr(quoted));
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(got_status);

  // Our SDK refuses before it calls.
  Message direct = Probe(kTimerTopic);
  auto refused = producer->Send(direct);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr(quoted));
  SimpleConsumerOptions options;
  options.endpoints = {cluster_.nameserver_address()};
  options.group = "sys-group";
  options.subscriptions[kTimerTopic] = "*";
  auto consumer = SimpleConsumer::Create(options);
  ASSERT_FALSE(consumer.ok());
  EXPECT_THAT(consumer.status().message(), HasSubstr(quoted));

  // Nothing created a config for it.
  auto admin = admin::v1::Admin::NewStub(
      grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  admin::v1::ListTopicsResponse topics;
  ASSERT_TRUE(admin->ListTopics(context().get(), admin::v1::ListTopicsRequest(), &topics).ok());
  for (const auto& t : topics.topics()) EXPECT_FALSE(IsSystemTopic(t.name())) << t.name();
}

TEST_F(DelayTest, OfficialNodeClientDelays) {
  CreateTopic("DelayNode");
  auto [code, output] = testing::RunNodeInterop(
      APOGEE_SOURCE_DIR, "delay.js",
      absl::StrCat(cluster_.broker_address(), " DelayNode node-delay 5 1500"),
      absl::StrCat(cluster_.dir(), "/delay.js.log"));
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("sent 6"));
  EXPECT_THAT(output, HasSubstr("fifo refused"));
  EXPECT_THAT(output, HasSubstr("received 6"));
  EXPECT_THAT(output, HasSubstr("never early"));
}

}  // namespace
}  // namespace apogee
