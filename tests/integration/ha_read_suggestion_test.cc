// The slave suggestion for a lagging consumer (issue 13, RocketMQ's
// suggestWhichBrokerId), with real processes: a NameServer, a master and a
// slave of group broker-a whose stores replicate, both started with a small
// --slave_read_lag_bytes. A consumer reading a backlog from the beginning is
// sent to the slave, the slave serves its reads (its own metrics say so),
// and near the head it is sent back to the master; offsets land on the
// master and every message is delivered once, in order.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

namespace av1 = ::apogee::admin::v1;
namespace v2 = ::apache::rocketmq::v2;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;

// Bodies of 1 KiB: the backlog spans about 300 KiB of commit log, far more
// than the 64 KiB threshold; the last 32 KiB count as hot on the slave.
constexpr int kBodyBytes = 1024;
constexpr int kBacklog = 300;
constexpr char kLagFlag[] = "--slave_read_lag_bytes=65536";

// The sum of metric `name`'s samples whose labels contain every `labels`.
double MetricSum(testing::ServiceProcess* process, const std::string& name,
                 const std::vector<std::string>& labels) {
  auto metrics = testing::HttpGet(process->metrics_address(), "/metrics");
  if (!metrics.ok()) return -1;
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(*metrics, '\n')) {
    if (!absl::StartsWith(line, absl::StrCat(name, "{"))) continue;
    bool match = true;
    for (const std::string& label : labels) match = match && absl::StrContains(line, label);
    double value = 0;
    if (match && absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) sum += value;
  }
  return sum;
}

class HaReadSuggestionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.enable_replication();
    absl::Status started = cluster_.Start({kLagFlag});
    ASSERT_TRUE(started.ok()) << started;
    auto slave = cluster_.AddSlave(0, 1, {kLagFlag});
    ASSERT_TRUE(slave.ok()) << slave.status();
  }

  av1::GetBrokerStatusResponse Status(int index) {
    return cluster_.BrokerStatus(index).value_or(av1::GetBrokerStatusResponse());
  }

  // Until the master has an in-sync slave that lags nothing.
  bool AwaitCaughtUpSlave() {
    return PollUntil(
        [&] {
          av1::GetBrokerStatusResponse s = Status(0);
          return s.role() == "master" && s.replicas_size() == 1 && s.replicas(0).in_sync() &&
                 s.replicas(0).lag_bytes() == 0;
        },
        absl::Seconds(15));
  }

  // A one-queue topic holding kBacklog messages, on the master and on its
  // caught-up slave, which serves the topic.
  void PrepareBacklog(const std::string& topic) {
    ASSERT_TRUE(cluster_.CreateTopic(topic, 1).ok());
    ASSERT_TRUE(AwaitCaughtUpSlave()) << Status(0).DebugString();
    SendRange(topic, 0, kBacklog);
    ASSERT_TRUE(AwaitCaughtUpSlave()) << Status(0).DebugString();
    ASSERT_TRUE(PollUntil([&] { return KnowsTopic(1, topic); }, absl::Seconds(10)));
  }

  // Sends messages "<i>" padded to kBodyBytes for i in [from, to), in order
  // (one queue: the queue order is the send order).
  void SendRange(const std::string& topic, int from, int to) {
    ProducerOptions options;
    options.endpoints = {cluster_.nameserver_address()};
    auto producer = Producer::Create(options);
    ASSERT_TRUE(producer.ok()) << producer.status();
    for (int i = from; i < to; ++i) {
      Message m;
      m.topic = topic;
      m.body = absl::StrCat(i, ":");
      m.body.resize(kBodyBytes, 'x');
      auto receipt = (*producer)->Send(m);
      ASSERT_TRUE(receipt.ok()) << i << ": " << receipt.status();
    }
  }

  static int Sequence(const std::string& body) {
    int i = -1;
    EXPECT_TRUE(absl::SimpleAtoi(body.substr(0, body.find(':')), &i)) << body.substr(0, 16);
    return i;
  }

  // The group's committed offset of queue 0 of `topic`, asked of broker
  // `index` directly.
  int64_t CommittedOn(int index, const std::string& topic, const std::string& group) {
    auto stub = v2::MessagingService::NewStub(
        grpc::CreateChannel(cluster_.broker(index)->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    context.AddMetadata("x-mq-client-id", "read-suggestion-test");
    v2::GetOffsetRequest request;
    request.mutable_group()->set_name(group);
    request.mutable_message_queue()->mutable_topic()->set_name(topic);
    request.mutable_message_queue()->set_id(0);
    v2::GetOffsetResponse response;
    grpc::Status s = stub->GetOffset(&context, request, &response);
    if (!s.ok() || response.status().code() != v2::OK) return -1;
    return response.offset();
  }

  // Whether broker `index` serves `topic` yet (a slave loads topic configs
  // from its store about every second).
  bool KnowsTopic(int index, const std::string& topic) {
    auto stub = v2::MessagingService::NewStub(
        grpc::CreateChannel(cluster_.broker(index)->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v2::QueryOffsetRequest request;
    request.mutable_message_queue()->mutable_topic()->set_name(topic);
    request.set_query_offset_policy(v2::END);
    v2::QueryOffsetResponse response;
    return stub->QueryOffset(&context, request, &response).ok() &&
           response.status().code() == v2::OK;
  }

  double MessagesOut(int index, const std::string& topic) {
    return MetricSum(cluster_.broker(index), "apogee_messages_out_total",
                     {absl::StrCat("topic=\"", topic, "\"")});
  }
  double Suggestions(int index, const std::string& target_role) {
    return MetricSum(cluster_.broker(index), "apogee_read_suggestions_total",
                     {absl::StrCat("target_role=\"", target_role, "\"")});
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
};

TEST_F(HaReadSuggestionTest, PullConsumerReadsTheBacklogFromTheSlaveThenReturnsToTheMaster) {
  const std::string topic = "SuggestPull";
  const std::string group = "SuggestPullGroup";
  ASSERT_NO_FATAL_FAILURE(PrepareBacklog(topic));

  PullConsumerOptions options;
  options.endpoints = {cluster_.nameserver_address()};
  options.group = group;
  options.max_batch = 32;
  auto consumer = PullConsumer::Create(options);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  ASSERT_TRUE((*consumer)->Subscribe(topic).ok());

  std::vector<int> seen;
  std::map<std::string, int> by_endpoint;
  auto consume_until = [&](int total) {
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (static_cast<int>(seen.size()) < total && absl::Now() < end) {
      auto messages = (*consumer)->Poll(absl::Milliseconds(500));
      ASSERT_TRUE(messages.ok()) << messages.status();
      for (const ReceivedMessage& m : *messages) {
        seen.push_back(Sequence(m.body));
        by_endpoint[m.endpoint]++;
      }
      ASSERT_TRUE((*consumer)->Commit().ok());
    }
  };
  consume_until(kBacklog);
  ASSERT_EQ(static_cast<int>(seen.size()), kBacklog);

  // The master sent the reader away, the slave served a good part of the
  // backlog (its own count) and sent it back near the head.
  EXPECT_GE(Suggestions(0, "slave"), 1);
  EXPECT_GE(Suggestions(1, "master"), 1);
  const double slave_out = MessagesOut(1, topic);
  EXPECT_GE(slave_out, kBacklog / 2);
  EXPECT_EQ(by_endpoint[cluster_.broker(1)->address()], slave_out);
  EXPECT_EQ(MessagesOut(0, topic) + slave_out, kBacklog);

  // Hot data afterwards is read from the master again.
  const double master_before = MessagesOut(0, topic);
  SendRange(topic, kBacklog, kBacklog + 20);
  consume_until(kBacklog + 20);
  ASSERT_EQ(static_cast<int>(seen.size()), kBacklog + 20);
  EXPECT_EQ(MessagesOut(0, topic) - master_before, 20);
  EXPECT_EQ(MessagesOut(1, topic), slave_out);

  for (int i = 0; i < static_cast<int>(seen.size()); ++i) {
    ASSERT_EQ(seen[i], i) << "delivered out of order or twice";
  }
  // Every commit went to the master's store.
  EXPECT_EQ(CommittedOn(0, topic, group), kBacklog + 20);
}

// The push path: the master lends the cold queue to the consumer, which
// pulls it from the slave and reports progress on its stream; near the head
// the slave sends it back and the master pushes again.
TEST_F(HaReadSuggestionTest, PushConsumerReadsTheBacklogFromTheSlaveThenReturnsToTheMaster) {
  const std::string topic = "SuggestPush";
  const std::string group = "SuggestPushGroup";
  ASSERT_NO_FATAL_FAILURE(PrepareBacklog(topic));

  absl::Mutex mu;
  std::map<int, int> deliveries;  // sequence -> times delivered
  PushConsumerOptions options;
  options.endpoints = {cluster_.nameserver_address()};
  options.group = group;
  options.topic = topic;
  auto consumer = PushConsumer::Create(options, [&](const ReceivedMessage& m) {
    absl::MutexLock lock(&mu);
    deliveries[Sequence(m.body)]++;
    return ConsumeResult::kSuccess;
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto delivered = [&] {
    absl::MutexLock lock(&mu);
    return static_cast<int>(deliveries.size());
  };
  ASSERT_TRUE(PollUntil([&] { return delivered() == kBacklog; }, absl::Seconds(10)))
      << delivered() << " of " << kBacklog;

  EXPECT_GE(Suggestions(0, "slave"), 1);   // the master lent the queue
  EXPECT_GE(Suggestions(1, "master"), 1);  // the slave sent it back
  const double slave_out = MessagesOut(1, topic);
  EXPECT_GE(slave_out, kBacklog / 2);
  // The master's progress follows the consumer's reports.
  EXPECT_TRUE(
      PollUntil([&] { return CommittedOn(0, topic, group) == kBacklog; }, absl::Seconds(10)))
      << CommittedOn(0, topic, group);

  // New messages are pushed by the master again.
  const double master_before = MessagesOut(0, topic);
  SendRange(topic, kBacklog, kBacklog + 20);
  ASSERT_TRUE(PollUntil([&] { return delivered() == kBacklog + 20; }, absl::Seconds(10)))
      << delivered();
  EXPECT_EQ(MessagesOut(0, topic) - master_before, 20);
  EXPECT_EQ(MessagesOut(1, topic), slave_out);
  (*consumer)->Shutdown();
  absl::MutexLock lock(&mu);
  for (const auto& [sequence, times] : deliveries) {
    EXPECT_EQ(times, 1) << "message " << sequence << " delivered " << times << " times";
  }
}

}  // namespace
}  // namespace apogee
