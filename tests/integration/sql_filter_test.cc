// SQL92 filters (FilterExpression{type: SQL}) end to end: messages with user
// properties and tags sent with the C++ SDK, consumed through the SDK's
// simple, push and pull consumers and the official Node client against real
// apogee-nameserver, apogee-store and apogee-broker processes. Each consumer
// gets exactly the matching messages, and its group moves past the others.
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

namespace av1 = ::apogee::admin::v1;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

constexpr int kMessages = 20;

class SqlFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started;
    admin_ = av1::Admin::NewStub(
        grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  }

  // Creates `topic` with one queue and sends "m0".."m19": property a = i;
  // b = "x<i>" on even i only; tag TagA when i % 3 == 0, TagB when
  // i % 3 == 1, none otherwise.
  void CreateAndSend(const std::string& topic) {
    absl::Status created = cluster_.CreateTopic(topic, 1);
    ASSERT_TRUE(created.ok()) << created;
    ProducerOptions options;
    options.endpoints = {cluster_.nameserver_address()};
    auto producer = Producer::Create(options);
    ASSERT_TRUE(producer.ok()) << producer.status();
    std::vector<Message> batch;
    for (int i = 0; i < kMessages; ++i) {
      Message m;
      m.topic = topic;
      m.body = absl::StrCat("m", i);
      m.properties["a"] = absl::StrCat(i);
      if (i % 2 == 0) m.properties["b"] = absl::StrCat("x", i);
      if (i % 3 < 2) m.tag = i % 3 == 0 ? "TagA" : "TagB";
      batch.push_back(std::move(m));
    }
    auto sent = (*producer)->SendBatch(batch);
    ASSERT_TRUE(sent.ok()) << sent.status();
  }

  // The bodies of the messages CreateAndSend sent whose index passes `keep`.
  static std::set<std::string> Bodies(const std::function<bool(int)>& keep) {
    std::set<std::string> out;
    for (int i = 0; i < kMessages; ++i) {
      if (keep(i)) out.insert(absl::StrCat("m", i));
    }
    return out;
  }

  // Options pointing at the cluster's NameServer.
  template <typename Options>
  Options At(Options options) {
    options.endpoints = {cluster_.nameserver_address()};
    return options;
  }

  // A simple consumer of `topic`, created once the NameServer routes it.
  std::unique_ptr<SimpleConsumer> Simple(const std::string& group, const std::string& topic,
                                         FilterExpression filter) {
    SimpleConsumerOptions options = At(SimpleConsumerOptions{});
    options.group = group;
    options.subscriptions[topic] = std::move(filter);
    options.await_duration = absl::Seconds(1);
    absl::StatusOr<std::unique_ptr<SimpleConsumer>> consumer;
    PollUntil(
        [&] {
          consumer = SimpleConsumer::Create(options);
          return consumer.ok();
        },
        absl::Seconds(15), absl::Milliseconds(100));
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    return consumer.ok() ? *std::move(consumer) : nullptr;
  }

  // The group's lag on `topic` (-1 when the broker does not answer).
  int64_t Lag(const std::string& group, const std::string& topic) {
    av1::GetGroupProgressRequest request;
    request.set_group(group);
    request.set_topic(topic);
    av1::GetGroupProgressResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    if (!admin_->GetGroupProgress(&context, request, &response).ok()) return -1;
    return response.queues_size() == 0 ? -1 : response.lag();
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::unique_ptr<av1::Admin::Stub> admin_;
};

TEST_F(SqlFilterTest, SimpleConsumerReceivesExactlyTheMatchingMessages) {
  ASSERT_NO_FATAL_FAILURE(CreateAndSend("SqlSimple"));
  const std::set<std::string> want = Bodies([](int i) { return i > 5 && i % 3 == 0; });
  auto consumer =
      Simple("SqlSimpleGroup", "SqlSimple", FilterExpression::Sql("a > 5 AND TAGS = 'TagA'"));
  ASSERT_NE(consumer, nullptr);
  std::set<std::string> got;
  PollUntil(
      [&] {
        auto messages = consumer->Receive(32, absl::Seconds(30));
        EXPECT_TRUE(messages.ok()) << messages.status();
        if (!messages.ok()) return true;
        for (const ReceivedMessage& m : *messages) {
          EXPECT_TRUE(got.insert(m.body).second) << m.body << " delivered twice";
          EXPECT_TRUE(consumer->Ack(m).ok());
        }
        return got.size() >= want.size();
      },
      absl::Seconds(20), absl::ZeroDuration());
  EXPECT_EQ(got, want);
  // Nothing else comes, and the group moved past the messages it skipped.
  auto more = consumer->Receive(32, absl::Seconds(30));
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_TRUE(more->empty());
  EXPECT_TRUE(PollUntil([&] { return Lag("SqlSimpleGroup", "SqlSimple") == 0; }, absl::Seconds(5)));

  // A property the message lacks is NULL: only the other branch can match.
  auto nulls = Simple("SqlNullGroup", "SqlSimple", FilterExpression::Sql("b = 'x4' OR a = 3"));
  ASSERT_NE(nulls, nullptr);
  std::set<std::string> null_got;
  PollUntil(
      [&] {
        auto messages = nulls->Receive(32, absl::Seconds(30));
        if (!messages.ok()) return true;
        for (const ReceivedMessage& m : *messages) null_got.insert(m.body);
        return null_got.size() >= 2;
      },
      absl::Seconds(20), absl::ZeroDuration());
  EXPECT_EQ(null_got, (std::set<std::string>{"m3", "m4"}));
}

TEST_F(SqlFilterTest, PushConsumerGetsExactlyTheMatchingMessages) {
  ASSERT_NO_FATAL_FAILURE(CreateAndSend("SqlPush"));
  ASSERT_NE(Simple("SqlRouteProbe", "SqlPush", "*"), nullptr);  // the topic is routed
  const std::set<std::string> want = Bodies([](int i) { return i % 2 == 0 && i >= 4 && i <= 10; });
  absl::Mutex mu;
  std::set<std::string> seen;
  PushConsumerOptions options = At(PushConsumerOptions{});
  options.group = "SqlPushGroup";
  options.topic = "SqlPush";
  options.filter = FilterExpression::Sql("b IS NOT NULL AND a BETWEEN 4 AND 10");
  auto consumer = PushConsumer::Create(options, [&](const ReceivedMessage& m) {
    absl::MutexLock lock(&mu);
    seen.insert(m.body);
    return ConsumeResult::kSuccess;
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  // Lag 0: every message was delivered and acked, or skipped.
  EXPECT_TRUE(PollUntil(
      [&] {
        absl::MutexLock lock(&mu);
        return seen.size() >= want.size() && Lag("SqlPushGroup", "SqlPush") == 0;
      },
      absl::Seconds(20)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen, want);
}

TEST_F(SqlFilterTest, PullConsumerMovesPastWhatTheFilterSkips) {
  ASSERT_NO_FATAL_FAILURE(CreateAndSend("SqlPull"));
  ASSERT_NE(Simple("SqlRouteProbe", "SqlPull", "*"), nullptr);  // the topic is routed
  const std::set<std::string> want = Bodies([](int i) { return (i % 3 == 1 || i < 2) && i != 7; });
  PullConsumerOptions options = At(PullConsumerOptions{});
  options.group = "SqlPullGroup";
  options.filter = FilterExpression::Sql("(TAGS IN ('TagB') OR a < 2) AND NOT (a = 7)");
  auto consumer = PullConsumer::Create(options);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  ASSERT_TRUE((*consumer)->Subscribe("SqlPull").ok());
  auto queues = (*consumer)->QueuesOf("SqlPull");
  ASSERT_TRUE(queues.ok() && queues->size() == 1u) << queues.status();
  std::set<std::string> got;
  EXPECT_TRUE(PollUntil(
      [&] {
        auto messages = (*consumer)->Poll(absl::Milliseconds(500));
        EXPECT_TRUE(messages.ok()) << messages.status();
        if (messages.ok()) {
          for (const ReceivedMessage& m : *messages) got.insert(m.body);
        }
        auto position = (*consumer)->Position(queues->front());
        return position.ok() && *position == kMessages;
      },
      absl::Seconds(20), absl::ZeroDuration()));
  EXPECT_EQ(got, want);
}

TEST_F(SqlFilterTest, MalformedExpressionsAreIllegalFilterExpressionNamingThePosition) {
  ASSERT_NO_FATAL_FAILURE(CreateAndSend("SqlBad"));
  auto simple = Simple("SqlBadGroup", "SqlBad", FilterExpression::Sql("a > 'x'"));
  ASSERT_NE(simple, nullptr);
  auto received = simple->Receive(8, absl::Seconds(30));
  ASSERT_FALSE(received.ok());
  EXPECT_EQ(received.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(received.status().message(), HasSubstr("ILLEGAL_FILTER_EXPRESSION"));
  EXPECT_THAT(received.status().message(),
              HasSubstr("SQL filter \"a > 'x'\" at position 5: expected a number"));

  PushConsumerOptions push = At(PushConsumerOptions{});
  push.group = "SqlBadPushGroup";
  push.topic = "SqlBad";
  push.filter = FilterExpression::Sql("a BETWEEN 5 AND");
  auto pushed =
      PushConsumer::Create(push, [](const ReceivedMessage&) { return ConsumeResult::kSuccess; });
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pushed.status().message(),
              HasSubstr("subscribe.sql_expression: SQL filter \"a BETWEEN 5 AND\" at position 16"));

  PullConsumerOptions pull = At(PullConsumerOptions{});
  pull.group = "SqlBadPullGroup";
  pull.filter = FilterExpression::Sql("");
  auto puller = PullConsumer::Create(pull);
  ASSERT_TRUE(puller.ok()) << puller.status();
  ASSERT_TRUE((*puller)->Subscribe("SqlBad").ok());
  auto polled = (*puller)->Poll(absl::Seconds(2));
  ASSERT_FALSE(polled.ok());
  EXPECT_THAT(polled.status().message(), HasSubstr("ILLEGAL_FILTER_EXPRESSION"));
  EXPECT_THAT(polled.status().message(), HasSubstr("SQL filter \"\" at position 1"));
}

// The official Node client's SimpleConsumer with
// `new FilterExpression('a > 5', FilterType.SQL)`, and a malformed one.
TEST_F(SqlFilterTest, OfficialNodeClientFiltersWithSql) {
  absl::Status created = cluster_.CreateTopic("SqlNode", 1);
  ASSERT_TRUE(created.ok()) << created;
  auto [code, output] =
      testing::RunNodeInterop(APOGEE_SOURCE_DIR, "sql_filter.js",
                              absl::StrCat(cluster_.broker_address(), " SqlNode sql-node-group"),
                              absl::StrCat(cluster_.dir(), "/sql_filter.js.log"));
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("sent 10"));
  EXPECT_THAT(output, HasSubstr("received m6,m7,m8,m9"));
  EXPECT_THAT(output, HasSubstr("then nothing"));
  EXPECT_THAT(output, HasSubstr("illegal code=40010"));
  EXPECT_THAT(output, HasSubstr("at position 4"));
}

}  // namespace
}  // namespace apogee
