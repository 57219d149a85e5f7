// FIFO consumption against real processes: a FIFO consumer group reading a
// FIFO topic gets each message group's messages in send order, one in flight
// per group, across concurrent consumers, redelivery, a member leaving and
// a broker restart (docs/design/message-types.md §4).
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

#ifndef APOGEE_SOURCE_DIR
#error "APOGEE_SOURCE_DIR must name the source tree"
#endif

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
namespace av1 = ::apogee::admin::v1;
namespace nsv1 = ::apogee::nameserver::v1;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::V2TestClient;

constexpr char kTopic[] = "FifoTopic";
constexpr char kGroup[] = "fifo-group";

std::unique_ptr<grpc::ClientContext> Context(const std::string& client_id = "fifo-test@1") {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  context->AddMetadata("x-mq-client-id", client_id);
  return context;
}

// Message group and index from a body "g<group>:<index>".
std::pair<int, int> Parse(const std::string& body) {
  std::vector<std::string> parts = absl::StrSplit(body.substr(1), ':');
  int group = -1, index = -1;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &group) ||
      !absl::SimpleAtoi(parts[1], &index)) {
    ADD_FAILURE() << "unexpected body " << body;
  }
  return {group, index};
}

// What consumers saw, checked as they go: per message group, the next index
// that may be handed out. A message of a group is correct only if it is that
// one (a later one means order broke or two were in flight).
class OrderChecker {
 public:
  explicit OrderChecker(int groups) : next_(groups, 0), acking_(groups, -1) {}

  // A delivery of (group, index); false (and a failure) if out of order.
  bool OnReceive(int group, int index) {
    absl::MutexLock lock(&mu_);
    ++deliveries_;
    // While an ack of index is in flight, `next_` already moved past it;
    // the broker may still redeliver it if the ack came too late.
    if (index == next_[group] || index == acking_[group]) return true;
    ADD_FAILURE() << "group " << group << ": got index " << index << ", expected " << next_[group];
    return false;
  }
  // Call before acking: the next message may arrive before Ack returns.
  void BeforeAck(int group, int index) {
    absl::MutexLock lock(&mu_);
    next_[group] = index + 1;
    acking_[group] = index;
  }
  void AfterAck(int group, bool ok) {
    absl::MutexLock lock(&mu_);
    if (!ok) next_[group] = acking_[group];  // it will come again
    acking_[group] = -1;
  }
  // After a broker restart, redelivery starts again from the committed
  // offset: any index at or below the next one is acceptable once per group.
  void Restarted(int group, int index) {
    absl::MutexLock lock(&mu_);
    EXPECT_LE(index, next_[group]) << "group " << group << " skipped after restart";
    next_[group] = index;
  }
  bool Done(int per_group) const {
    absl::MutexLock lock(&mu_);
    for (int n : next_) {
      if (n < per_group) return false;
    }
    return true;
  }
  int next(int group) const {
    absl::MutexLock lock(&mu_);
    return next_[group];
  }
  int deliveries() const {
    absl::MutexLock lock(&mu_);
    return deliveries_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<int> next_ ABSL_GUARDED_BY(mu_);
  std::vector<int> acking_ ABSL_GUARDED_BY(mu_);
  int deliveries_ ABSL_GUARDED_BY(mu_) = 0;
};

// Acks `m`, telling `checker` first: the group's next message may arrive
// before the Ack returns.
void AckInOrder(OrderChecker* checker, V2TestClient* client, const v2::Message& m, int group,
                int index) {
  checker->BeforeAck(group, index);
  checker->AfterAck(group, client->Ack(kGroup, m).ok());
}

class FifoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Enough attempts that nothing reaches the DLQ in these tests.
    cluster_.enable_metrics();
    absl::Status started = cluster_.Start({"--max_delivery_attempts=17"});
    ASSERT_TRUE(started.ok()) << started;
    Connect();
    av1::CreateTopicRequest topic;
    topic.mutable_topic()->set_name(kTopic);
    topic.mutable_topic()->set_read_queues(4);
    topic.mutable_topic()->set_write_queues(4);
    topic.mutable_topic()->set_message_type(nsv1::TOPIC_MESSAGE_TYPE_FIFO);
    av1::CreateTopicResponse created;
    grpc::Status s = admin_->CreateTopic(Context().get(), topic, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
    av1::CreateGroupRequest group;
    group.mutable_group()->set_name(kGroup);
    group.mutable_group()->set_fifo(true);
    av1::CreateGroupResponse configured;
    s = admin_->CreateGroup(Context().get(), group, &configured);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_TRUE(configured.group().fifo());
  }

  void Connect() {
    auto channel =
        grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials());
    v2_ = v2::MessagingService::NewStub(channel);
    admin_ = av1::Admin::NewStub(channel);
  }

  // Sends `per_group` rounds; each round is one request with one message
  // of every group, so groups interleave in every queue.
  void SendRounds(int groups, int from, int to) {
    for (int i = from; i < to; ++i) {
      v2::SendMessageRequest request;
      for (int g = 0; g < groups; ++g) {
        v2::Message* m = request.add_messages();
        m->mutable_topic()->set_name(kTopic);
        m->mutable_system_properties()->set_message_id(absl::StrCat("fifo-", g, "-", i));
        m->mutable_system_properties()->set_message_type(v2::FIFO);
        m->mutable_system_properties()->set_message_group(absl::StrCat("order-", g));
        m->set_body(absl::StrCat("g", g, ":", i));
      }
      v2::SendMessageResponse response;
      grpc::Status s = v2_->SendMessage(Context().get(), request, &response);
      ASSERT_TRUE(s.ok()) << s.error_message();
      ASSERT_EQ(response.status().code(), v2::OK) << response.status().message();
    }
  }

  // Nacks: visible again at once (ChangeInvisibleDuration 0).
  bool Nack(const std::string& client_id, const v2::Message& m) {
    v2::ChangeInvisibleDurationRequest request;
    request.mutable_group()->set_name(kGroup);
    request.mutable_topic()->set_name(kTopic);
    request.set_receipt_handle(m.system_properties().receipt_handle());
    request.set_message_id(m.system_properties().message_id());
    request.mutable_invisible_duration()->set_seconds(0);
    v2::ChangeInvisibleDurationResponse response;
    grpc::Status s = v2_->ChangeInvisibleDuration(Context(client_id).get(), request, &response);
    return s.ok() && response.status().code() == v2::OK;
  }

  // One consumer: receives, checks order, nacks every `nack_every`-th
  // message, acks the rest, until `stop` or the deadline.
  void Consume(int id, OrderChecker* checker, const std::atomic<bool>* stop, int nack_every,
               absl::Time deadline) {
    const std::string client_id = absl::StrCat("fifo-consumer-", id, "@1");
    V2TestClient client(cluster_.broker_address(), client_id);
    int seen = 0;
    while (!stop->load() && absl::Now() < deadline) {
      auto batch = client.ReceiveOnce(kGroup, kTopic, 8, absl::Seconds(1), absl::Seconds(10));
      if (!batch.ok()) continue;  // e.g. during a restart
      for (const v2::Message& m : *batch) {
        auto [group, index] = Parse(m.body());
        if (group < 0 || !checker->OnReceive(group, index)) return;
        if (nack_every > 0 && ++seen % nack_every == 0) {
          EXPECT_GE(m.system_properties().delivery_attempt(), 1);
          Nack(client_id, m);
          continue;
        }
        AckInOrder(checker, &client, m, group, index);
      }
    }
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::unique_ptr<v2::MessagingService::Stub> v2_;
  std::unique_ptr<av1::Admin::Stub> admin_;
};

TEST_F(FifoTest, SettingsAndAssignmentReportAFifoGroup) {
  v2::QueryAssignmentRequest request;
  request.mutable_topic()->set_name(kTopic);
  request.mutable_group()->set_name(kGroup);
  v2::QueryAssignmentResponse response;
  grpc::Status s = v2_->QueryAssignment(Context().get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.status().code(), v2::OK) << response.status().message();
  // Every readable queue, as the proxy answers FIFO groups.
  std::set<int> ids;
  for (const auto& a : response.assignments()) ids.insert(a.message_queue().id());
  EXPECT_EQ(ids, (std::set<int>{0, 1, 2, 3}));

  request.mutable_group()->set_name("plain-group");
  response.Clear();
  s = v2_->QueryAssignment(Context().get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.assignments_size(), 1);
  EXPECT_EQ(response.assignments(0).message_queue().id(), -1);
}

TEST_F(FifoTest, OrderUnderConcurrencyRedeliveryAndAMemberLeaving) {
  constexpr int kGroups = 20, kPerGroup = 20;
  SendRounds(kGroups, 0, kPerGroup);
  OrderChecker checker(kGroups);
  const absl::Time deadline = absl::Now() + absl::Seconds(40);

  // A member that takes a batch and leaves without acking: its messages
  // come back after their invisible time (1 s), first of their groups.
  {
    V2TestClient leaver(cluster_.broker_address(), "fifo-leaver@1");
    auto batch = leaver.ReceiveOnce(kGroup, kTopic, 8, absl::Seconds(1), absl::Seconds(1));
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_FALSE(batch->empty());
    std::set<int> groups;
    for (const v2::Message& m : *batch) {
      auto [group, index] = Parse(m.body());
      EXPECT_EQ(index, 0);
      EXPECT_TRUE(groups.insert(group).second) << "two of group " << group << " in one batch";
      EXPECT_TRUE(checker.OnReceive(group, index));
    }
    // The admin API shows the held groups and the messages behind them.
    av1::GetGroupProgressRequest request;
    request.set_group(kGroup);
    request.set_topic(kTopic);
    av1::GetGroupProgressResponse progress;
    grpc::Status s = admin_->GetGroupProgress(Context().get(), request, &progress);
    ASSERT_TRUE(s.ok()) << s.error_message();
    int64_t busy = 0, waiting = 0;
    for (const auto& q : progress.queues()) {
      busy += q.busy_message_groups();
      waiting += q.waiting();
    }
    EXPECT_EQ(busy, static_cast<int64_t>(batch->size()));
    EXPECT_GT(waiting, 0);
    // And the broker's metrics (refreshed every second).
    auto metric = [&](const std::string& name) {
      return testing::ScrapeMetric(cluster_.broker()->metrics_address(), name,
                                   {{"consumer_group", kGroup}})
          .value_or(-1);
    };
    EXPECT_TRUE(testing::PollUntil(
        [&] {
          return metric("apogee_fifo_busy_message_groups") == static_cast<double>(batch->size()) &&
                 metric("apogee_fifo_waiting_messages") == static_cast<double>(waiting) &&
                 metric("apogee_fifo_blocked_message_groups") > 0;
        },
        absl::Seconds(5)))
        << metric("apogee_fifo_busy_message_groups") << " "
        << metric("apogee_fifo_waiting_messages");
  }

  std::atomic<bool> stop{false};
  std::vector<std::thread> consumers;
  for (int id = 0; id < 4; ++id) {
    // Consumers 0 and 1 nack every 10th message (redelivery in place).
    consumers.emplace_back([&, id] { Consume(id, &checker, &stop, id < 2 ? 10 : 0, deadline); });
  }
  EXPECT_TRUE(testing::PollUntil([&] { return checker.Done(kPerGroup); }, absl::Seconds(40)));
  stop = true;
  for (auto& t : consumers) t.join();
  EXPECT_GT(checker.deliveries(), kGroups * kPerGroup);  // redeliveries happened
  // The leaver's batch came back in place after its invisible time.
  EXPECT_GE(testing::ScrapeMetric(cluster_.broker()->metrics_address(),
                                  "apogee_fifo_redelivered_total", {{"consumer_group", kGroup}})
                .value_or(0),
            1);

  // Nothing is left: a last receive finds no message.
  V2TestClient last(cluster_.broker_address(), "fifo-last@1");
  auto rest = last.ReceiveOnce(kGroup, kTopic, 8, absl::Seconds(1));
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(rest->empty()) << rest->size() << " messages left, first: " << (*rest)[0].body();
}

TEST_F(FifoTest, BrokerRestartRedeliversInOrder) {
  constexpr int kGroups = 8, kPerGroup = 10;
  SendRounds(kGroups, 0, kPerGroup);
  OrderChecker checker(kGroups);
  {
    // Consume about half, leaving the last batch unacked (in flight).
    V2TestClient client(cluster_.broker_address(), "fifo-before@1");
    int acked = 0;
    ASSERT_TRUE(testing::PollUntil(
        [&] {
          auto batch = client.ReceiveOnce(kGroup, kTopic, 8, absl::Seconds(1));
          if (!batch.ok()) return false;
          for (const v2::Message& m : *batch) {
            auto [group, index] = Parse(m.body());
            EXPECT_TRUE(checker.OnReceive(group, index));
            if (acked >= kGroups * kPerGroup / 2) continue;  // stays in flight
            AckInOrder(&checker, &client, m, group, index);
            ++acked;
          }
          return acked >= kGroups * kPerGroup / 2;
        },
        absl::Seconds(20)));
  }
  ASSERT_TRUE(cluster_.broker()->Stop(SIGKILL).ok());
  absl::Status restarted = cluster_.RestartBroker();
  ASSERT_TRUE(restarted.ok()) << restarted;
  Connect();

  // Each group resumes at or below where it was, then continues in order.
  V2TestClient client(cluster_.broker_address(), "fifo-after@1");
  std::set<int> resumed;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        auto batch = client.ReceiveOnce(kGroup, kTopic, 8, absl::Seconds(1));
        if (!batch.ok()) return false;
        for (const v2::Message& m : *batch) {
          auto [group, index] = Parse(m.body());
          if (resumed.insert(group).second) checker.Restarted(group, index);
          if (!checker.OnReceive(group, index)) return true;  // failed: stop
          AckInOrder(&checker, &client, m, group, index);
        }
        return checker.Done(kPerGroup);
      },
      absl::Seconds(20)));
  for (int g = 0; g < kGroups; ++g) EXPECT_EQ(checker.next(g), kPerGroup) << "group " << g;
}

// A topic auto-created by a send takes the type of the message that
// created it; a message of another type is then refused.
TEST_F(FifoTest, AutoCreatedTopicTakesTheTypeOfItsFirstMessage) {
  auto send = [&](const std::string& id, const std::string& group) {
    v2::SendMessageRequest request;
    v2::Message* m = request.add_messages();
    m->mutable_topic()->set_name("AutoFifo");
    m->mutable_system_properties()->set_message_id(id);
    if (!group.empty()) m->mutable_system_properties()->set_message_group(group);
    m->set_body("b");
    v2::SendMessageResponse response;
    grpc::Status s = v2_->SendMessage(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.status();
  };
  // No message_type: a message group makes it FIFO.
  ASSERT_EQ(send("auto-1", "order-1").code(), v2::OK);
  av1::ListTopicsResponse topics;
  grpc::Status s = admin_->ListTopics(Context().get(), av1::ListTopicsRequest(), &topics);
  ASSERT_TRUE(s.ok()) << s.error_message();
  bool found = false;
  for (const auto& t : topics.topics()) {
    if (t.name() != "AutoFifo") continue;
    found = true;
    EXPECT_EQ(t.message_type(), nsv1::TOPIC_MESSAGE_TYPE_FIFO);
  }
  EXPECT_TRUE(found);
  v2::Status normal = send("auto-2", "");
  EXPECT_EQ(normal.code(), v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  EXPECT_THAT(normal.message(), ::testing::HasSubstr("message type NORMAL does not match topic"));
}

// Our SDK's PushConsumer on a FIFO group: listener calls of a message group
// in send order, with failed calls retried in place, while a second member
// joins and the first leaves (a rebalance).
TEST_F(FifoTest, PushConsumersKeepEachGroupInOrderAcrossARebalance) {
  constexpr int kGroups = 6, kPerGroup = 12;
  SendRounds(kGroups, 0, kPerGroup);
  OrderChecker checker(kGroups);
  std::atomic<int> calls{0};
  absl::Mutex mu;
  std::vector<int> running(kGroups, 0);  // listener calls per group right now
  bool overlapped = false;
  auto listener = [&](const ReceivedMessage& m) {
    auto [group, index] = Parse(m.body);
    EXPECT_EQ(m.message_group, absl::StrCat("order-", group)) << "pushed with its message group";
    if (group < 0 || !checker.OnReceive(group, index)) return ConsumeResult::kRetry;
    {
      absl::MutexLock lock(&mu);
      if (++running[group] > 1) overlapped = true;
    }
    ConsumeResult result = ConsumeResult::kSuccess;
    if (++calls % 10 == 0) {
      result = ConsumeResult::kRetry;  // comes back before the next of its group
    } else {
      checker.BeforeAck(group, index);
      checker.AfterAck(group, true);
    }
    absl::MutexLock lock(&mu);
    --running[group];
    return result;
  };
  PushConsumerOptions options;
  options.endpoints = {cluster_.nameserver_address()};
  options.group = kGroup;
  options.topic = kTopic;
  options.concurrency = 4;
  auto start = [&](const std::string& client_id) {
    options.client_id = client_id;
    std::unique_ptr<PushConsumer> consumer;
    // The NameServer learns the topic's route at the broker's next heartbeat.
    EXPECT_TRUE(testing::PollUntil(
        [&] {
          auto created = PushConsumer::Create(options, listener);
          if (created.ok()) consumer = std::move(created).value();
          return consumer != nullptr;
        },
        absl::Seconds(15), absl::Milliseconds(200)));
    return consumer;
  };
  std::unique_ptr<PushConsumer> first = start("fifo-push-a");
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(testing::PollUntil([&] { return checker.deliveries() >= 20; }, absl::Seconds(20)));
  std::unique_ptr<PushConsumer> second = start("fifo-push-b");
  ASSERT_NE(second, nullptr);
  first->Shutdown();  // leaves: what it had not settled goes to the other member
  EXPECT_TRUE(testing::PollUntil([&] { return checker.Done(kPerGroup); }, absl::Seconds(30)));
  second->Shutdown();
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(overlapped) << "two listener calls of one message group at once";
  EXPECT_GT(checker.deliveries(), kGroups * kPerGroup);  // the retries came back
}

// The acceptance case: four PushConsumers of our SDK, each running
// several callbacks at once, share one FIFO group; the listener asks for a
// retry now and then; while the producer is still sending, a fifth member
// joins and one of the four leaves. Every message must be consumed, each
// message group's successful calls must follow send order, and no two
// listener calls of one group may overlap in any consumer.
TEST_F(FifoTest, FourPushConsumersKeepOrderThroughRetriesAndARebalanceWhileSending) {
  constexpr int kGroups = 16, kPerGroup = 24, kMembers = 5;
  constexpr int kAhead = 4;  // rounds sent beyond those consumed
  SendRounds(kGroups, 0, kAhead);
  absl::Mutex mu;
  std::vector<std::vector<int>> succeeded(kGroups);  // per group, in call order
  std::vector<int> running(kGroups, 0);  // listener calls of the group right now, all consumers
  std::vector<int> calls_by(kMembers, 0);
  int calls = 0, retries = 0, redelivered = 0, overlaps = 0, total_succeeded = 0;
  auto listener_for = [&](int member) {
    return [&, member](const ReceivedMessage& m) {
      auto [group, index] = Parse(m.body);
      if (group < 0 || group >= kGroups) return ConsumeResult::kSuccess;  // Parse failed the test
      bool retry;
      {
        absl::MutexLock lock(&mu);
        if (++running[group] > 1) ++overlaps;
        ++calls_by[member];
        if (m.delivery_attempt > 1) ++redelivered;
        retry = ++calls % 7 == 0;
      }
      // Holds the group briefly, so a second call of it elsewhere would overlap.
      absl::SleepFor(absl::Microseconds(300));
      absl::MutexLock lock(&mu);
      --running[group];
      if (retry) {
        ++retries;
        return ConsumeResult::kRetry;  // must come back before the next of its group
      }
      succeeded[group].push_back(index);
      ++total_succeeded;
      return ConsumeResult::kSuccess;
    };
  };
  PushConsumerOptions options;
  options.endpoints = {cluster_.nameserver_address()};
  options.group = kGroup;
  options.topic = kTopic;
  options.concurrency = 4;
  auto start = [&](int member) {
    options.client_id = absl::StrCat("fifo-push-", member);
    std::unique_ptr<PushConsumer> consumer;
    // The NameServer learns the topic's route at the broker's next heartbeat.
    EXPECT_TRUE(testing::PollUntil(
        [&] {
          auto created = PushConsumer::Create(options, listener_for(member));
          if (created.ok()) consumer = std::move(created).value();
          return consumer != nullptr;
        },
        absl::Seconds(10), absl::Milliseconds(200)));
    return consumer;
  };
  std::vector<std::unique_ptr<PushConsumer>> members;
  for (int member = 0; member < 4; ++member) {
    members.push_back(start(member));
    ASSERT_NE(members.back(), nullptr) << "member " << member;
  }
  auto succeeded_so_far = [&] {
    absl::MutexLock lock(&mu);
    return total_succeeded;
  };
  // The producer keeps `kAhead` rounds ahead of consumption, so messages
  // are still flowing when the membership changes.
  std::thread sender([&] {
    for (int round = kAhead; round < kPerGroup; ++round) {
      if (!testing::PollUntil([&] { return succeeded_so_far() >= kGroups * (round - kAhead + 1); },
                              absl::Seconds(10))) {
        ADD_FAILURE() << "consumption stalled before round " << round;
        return;
      }
      SendRounds(kGroups, round, round + 1);
    }
  });
  EXPECT_TRUE(testing::PollUntil([&] { return succeeded_so_far() >= kGroups * kPerGroup / 3; },
                                 absl::Seconds(10)));
  std::unique_ptr<PushConsumer> joiner = start(4);
  members[0]->Shutdown();  // leaves: what it had not settled goes to the others
  sender.join();
  ASSERT_NE(joiner, nullptr);
  members.push_back(std::move(joiner));
  EXPECT_TRUE(testing::PollUntil([&] { return succeeded_so_far() >= kGroups * kPerGroup; },
                                 absl::Seconds(12)));
  for (auto& member : members) member->Shutdown();

  absl::MutexLock lock(&mu);
  std::vector<int> in_order(kPerGroup);
  for (int i = 0; i < kPerGroup; ++i) in_order[i] = i;
  for (int g = 0; g < kGroups; ++g) {
    EXPECT_EQ(succeeded[g], in_order) << "group " << g << ": successful calls out of send order";
  }
  EXPECT_EQ(overlaps, 0) << "listener calls of one message group ran at once";
  EXPECT_GT(retries, 0);
  EXPECT_EQ(calls, total_succeeded + retries);
  // Each retry came back (a later delivery attempt), the leaver's unsettled ones too.
  EXPECT_GE(redelivered, retries);
  EXPECT_GT(calls_by[0], 0) << "the leaver consumed before leaving";
  EXPECT_GT(calls_by[4], 0) << "the joiner got work after the rebalance";
}

TEST_F(FifoTest, OfficialNodeClientReceivesEachGroupInOrder) {
  auto [code, output] = testing::RunNodeInterop(
      APOGEE_SOURCE_DIR, "fifo_order.js",
      absl::StrCat(cluster_.broker_address(), " ", kTopic, " ", kGroup, " 5 8"),
      absl::StrCat(cluster_.dir(), "/fifo_order.js.log"));
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, ::testing::HasSubstr("sent 40"));
  EXPECT_THAT(output, ::testing::HasSubstr("received 40 in order"));
}

}  // namespace
}  // namespace apogee
