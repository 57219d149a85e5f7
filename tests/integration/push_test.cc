// Push delivery integration tests: real apogee-nameserver, apogee-store and
// apogee-broker processes; consumers on apogee.broker.v1.PushConsumer
// streams (in this process, or a separate process that is SIGKILLed).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/broker/v1/push.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

#if !defined(APOGEE_NAMESERVER_BIN) || !defined(APOGEE_STORE_BIN) || \
    !defined(APOGEE_BROKER_BIN) || !defined(APOGEE_PUSH_CONSUMER_BIN)
#error "the build defines APOGEE_{NAMESERVER,STORE,BROKER,PUSH_CONSUMER}_BIN (binary paths)"
#endif

namespace apogee {
namespace {

// Bound on every wait for something that should happen.
constexpr absl::Duration kWait = absl::Seconds(20);

namespace pushv1 = ::apogee::broker::v1;
namespace av1 = ::apogee::admin::v1;
namespace v2 = ::apache::rocketmq::v2;
using testing::LocalCluster;
using testing::PollUntil;

struct Delivery {
  pushv1::PushedMessage message;
  absl::Time arrived;
};

// One push consumer stream driven from the test thread; a reader thread
// records everything the broker sends.
class PushConsumer {
 public:
  PushConsumer(const std::string& broker, pushv1::Subscribe subscribe)
      : stub_(pushv1::PushConsumer::NewStub(
            grpc::CreateChannel(broker, grpc::InsecureChannelCredentials()))) {
    context_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(3)));
    stream_ = stub_->Consume(&context_);
    pushv1::ConsumeRequest request;
    *request.mutable_subscribe() = std::move(subscribe);
    stream_->Write(request);
    reader_ = std::thread([this] { Read(); });
  }
  ~PushConsumer() {
    context_.TryCancel();
    reader_.join();
  }

  void Grant(int messages) {
    pushv1::ConsumeRequest request;
    request.mutable_credit()->set_messages(messages);
    EXPECT_TRUE(stream_->Write(request));
  }
  // Acks every delivery not acked yet (granting `credits` in the same
  // frame); waits for the broker's SettleResult.
  void AckAll(int credits = 0) {
    pushv1::ConsumeRequest request;
    request.mutable_settle()->set_credits(credits);
    {
      absl::MutexLock lock(&mu_);
      for (; acked_ < deliveries_.size(); ++acked_) {
        request.mutable_settle()->add_acks(deliveries_[acked_].message.receipt_handle());
      }
    }
    const int n = request.settle().acks_size();
    if (n == 0) return;
    const size_t results = SettleResults().size();
    ASSERT_TRUE(stream_->Write(request));
    ASSERT_TRUE(WaitFor([&] { return SettleResults().size() > results; }));
    pushv1::SettleResult result = SettleResults().back();
    EXPECT_EQ(result.settled(), n);
    EXPECT_EQ(result.failures_size(), 0) << result.DebugString();
  }
  void Write(const pushv1::ConsumeRequest& request) { EXPECT_TRUE(stream_->Write(request)); }

  template <typename Condition>
  static bool WaitFor(Condition condition, absl::Duration timeout = kWait) {
    return PollUntil(condition, timeout, absl::Milliseconds(2));
  }
  bool WaitForDeliveries(size_t n, absl::Duration timeout = kWait) {
    return WaitFor([&] { return Deliveries().size() >= n; }, timeout);
  }
  // The latest assignment is `queues` shared by `members`.
  bool WaitForAssignment(std::vector<int32_t> queues, int members) {
    return WaitFor([&] {
      absl::MutexLock lock(&mu_);
      return !assignments_.empty() &&
             std::vector<int32_t>(assignments_.back().queue_ids().begin(),
                                  assignments_.back().queue_ids().end()) == queues &&
             assignments_.back().members() == members;
    });
  }
  bool WaitForEnd() {
    return WaitFor([&] {
      absl::MutexLock lock(&mu_);
      return ended_;
    });
  }

  std::vector<Delivery> Deliveries() {
    absl::MutexLock lock(&mu_);
    return deliveries_;
  }
  std::vector<std::string> Ids() {
    std::vector<std::string> ids;
    for (const Delivery& d : Deliveries()) ids.push_back(d.message.message().message_id());
    return ids;
  }
  std::vector<pushv1::SettleResult> SettleResults() {
    absl::MutexLock lock(&mu_);
    return settle_results_;
  }
  std::vector<pushv1::Assignment> Assignments() {
    absl::MutexLock lock(&mu_);
    return assignments_;
  }
  std::optional<pushv1::Subscribed> Subscribed() {
    absl::MutexLock lock(&mu_);
    return subscribed_;
  }
  grpc::Status EndStatus() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  void Read() {
    pushv1::ConsumeResponse response;
    while (stream_->Read(&response)) {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      if (response.has_subscribed()) subscribed_ = response.subscribed();
      if (response.has_assignment()) assignments_.push_back(response.assignment());
      if (response.has_settle_result()) settle_results_.push_back(response.settle_result());
      for (const pushv1::PushedMessage& m : response.deliveries().messages()) {
        deliveries_.push_back(Delivery{m, now});
      }
    }
    grpc::Status status = stream_->Finish();
    absl::MutexLock lock(&mu_);
    status_ = status;
    ended_ = true;
  }

  std::unique_ptr<pushv1::PushConsumer::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<pushv1::ConsumeRequest, pushv1::ConsumeResponse>>
      stream_;
  std::thread reader_;
  absl::Mutex mu_;
  std::vector<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
  size_t acked_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<pushv1::Subscribed> subscribed_ ABSL_GUARDED_BY(mu_);
  std::vector<pushv1::Assignment> assignments_ ABSL_GUARDED_BY(mu_);
  std::vector<pushv1::SettleResult> settle_results_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

// push_consumer_tool as a child process; its stdout lines are collected.
class ConsumerProcess {
 public:
  ConsumerProcess(std::vector<std::string> args) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    std::vector<std::string> argv_storage = {APOGEE_PUSH_CONSUMER_BIN};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    read_fd_ = fds[0];
    reader_ = std::thread([this] { Read(); });
  }
  ~ConsumerProcess() {
    Kill();
    reader_.join();
    close(read_fd_);
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::vector<std::string> Lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  // Ids of the messages the process printed.
  std::set<std::string> MessageIds() {
    std::set<std::string> ids;
    for (const std::string& line : Lines()) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 3 && parts[0] == "message") ids.insert(parts[1]);
    }
    return ids;
  }
  bool HasLine(const std::string& line) {
    for (const std::string& l : Lines()) {
      if (l == line) return true;
    }
    return false;
  }

 private:
  void Read() {
    std::string partial;
    char buffer[4096];
    while (true) {
      ssize_t n = read(read_fd_, buffer, sizeof(buffer));
      if (n <= 0) break;
      partial.append(buffer, static_cast<size_t>(n));
      size_t newline;
      while ((newline = partial.find('\n')) != std::string::npos) {
        absl::MutexLock lock(&mu_);
        lines_.push_back(partial.substr(0, newline));
        partial.erase(0, newline + 1);
      }
    }
  }

  pid_t pid_ = -1;
  int read_fd_ = -1;
  std::thread reader_;
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

class PushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started;
    Connect();
    absl::Status created = cluster_.CreateTopic(topic_, 4);
    ASSERT_TRUE(created.ok()) << created;
  }

  void Connect() {
    v2_ = v2::MessagingService::NewStub(
        grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  }

  pushv1::Subscribe Subscription(const std::string& group, const std::string& client_id,
                                 int credits, av1::ConsumeMode mode = av1::CONSUME_MODE_UNSPECIFIED,
                                 absl::Duration ack_timeout = absl::Seconds(60)) {
    pushv1::Subscribe s;
    s.set_client_id(client_id);
    s.set_group(group);
    s.set_topic(topic_);
    s.set_tag_expression("*");
    s.set_consume_mode(mode);
    s.set_initial_credits(credits);
    s.mutable_ack_timeout()->set_seconds(absl::ToInt64Seconds(ack_timeout));
    return s;
  }

  std::unique_ptr<PushConsumer> Subscribe(pushv1::Subscribe subscribe) {
    return std::make_unique<PushConsumer>(cluster_.broker_address(), std::move(subscribe));
  }

  // Sends "<prefix>-0".."<prefix>-<n-1>" and checks each was stored.
  std::vector<std::string> SendMany(const std::string& prefix, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      const std::string id = absl::StrCat(prefix, "-", i);
      v2::SendMessageRequest request;
      v2::Message* m = request.add_messages();
      m->mutable_topic()->set_name(topic_);
      m->mutable_system_properties()->set_message_id(id);
      m->mutable_system_properties()->set_message_type(v2::NORMAL);
      m->set_body(absl::StrCat("body-", id));
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      context.AddMetadata("x-mq-client-id", "push-test-producer");
      v2::SendMessageResponse response;
      grpc::Status s = v2_->SendMessage(&context, request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(response.status().code(), v2::OK) << response.status().message();
      ids.push_back(id);
    }
    return ids;
  }

  static std::multiset<std::string> Multiset(const std::vector<std::string>& ids) {
    return std::multiset<std::string>(ids.begin(), ids.end());
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::unique_ptr<v2::MessagingService::Stub> v2_;
  const std::string topic_ = "PushTopic";
};

TEST_F(PushTest, PushesAStoredMessageWithoutAnotherRequest) {
  auto consumer = Subscribe(Subscription("g-latency", "latency-1", 10));
  ASSERT_TRUE(consumer->WaitForAssignment({0, 1, 2, 3}, 1));
  for (int round = 0; round < 3; ++round) {
    const absl::Time sent = absl::Now();
    SendMany(absl::StrCat("latency", round), 1);
    ASSERT_TRUE(consumer->WaitForDeliveries(round + 1)) << cluster_.broker()->LogTail();
    const Delivery d = consumer->Deliveries().back();
    EXPECT_EQ(d.message.message().message_id(), absl::StrCat("latency", round, "-0"));
    EXPECT_EQ(d.message.delivery_attempt(), 1);
    EXPECT_EQ(d.message.message().body(), absl::StrCat("body-latency", round, "-0"));
    EXPECT_FALSE(d.message.receipt_handle().empty());
    std::printf("push latency (send call start -> pushed): %s\n",
                absl::FormatDuration(d.arrived - sent).c_str());
  }
  // Sent while the consumer was caught up: read from the broker's tail
  // cache, not from the store (the count is published every second).
  const bool from_memory = PollUntil(
      [&] {
        return ::apogee::testing::ScrapeMetric(cluster_.broker()->metrics_address(),
                                               "apogee_pop_reads_total", {{"source", "memory"}})
                   .value_or(0) >= 1;
      },
      absl::Seconds(10));
  EXPECT_TRUE(from_memory) << "no pop read answered from the tail cache";
}

TEST_F(PushTest, NeverMoreInFlightThanCreditsGranted) {
  auto consumer = Subscribe(Subscription("g-credits", "credits-1", 5));
  ASSERT_TRUE(consumer->WaitForAssignment({0, 1, 2, 3}, 1));
  SendMany("c", 20);
  ASSERT_TRUE(consumer->WaitForDeliveries(5));
  // Bounded read window: nothing beyond the 5 credits arrives.
  EXPECT_FALSE(consumer->WaitForDeliveries(6, absl::Seconds(1)));
  // Settling does not return credits.
  consumer->AckAll();
  EXPECT_FALSE(consumer->WaitForDeliveries(6, absl::Milliseconds(500)));
  consumer->Grant(10);
  ASSERT_TRUE(consumer->WaitForDeliveries(15));
  EXPECT_FALSE(consumer->WaitForDeliveries(16, absl::Milliseconds(500)));
  consumer->Grant(5);
  ASSERT_TRUE(consumer->WaitForDeliveries(20));
  consumer->AckAll();
  std::multiset<std::string> got = Multiset(consumer->Ids());
  EXPECT_EQ(got.size(), 20u);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 20u);
}

// Several delivery rounds pop a backlog at once (PushLimits::max_rounds),
// each on queues of its own, while new messages keep arriving (each an
// arrival that marks its queue unread during the rounds): every message
// still arrives once, and each queue's in offset order.
TEST_F(PushTest, ABacklogArrivesOnceAndInQueueOrder) {
  std::vector<std::string> sent = SendMany("b", 2000);
  auto consumer = Subscribe(Subscription("g-backlog", "backlog-1", 2600));
  const std::vector<std::string> live = SendMany("live", 600);
  sent.insert(sent.end(), live.begin(), live.end());
  ASSERT_TRUE(consumer->WaitForDeliveries(2600));
  EXPECT_FALSE(consumer->WaitForDeliveries(2601, absl::Milliseconds(300)));
  std::map<int32_t, int64_t> last;  // queue -> offset of its latest delivery
  for (const Delivery& d : consumer->Deliveries()) {
    const av1::MessageView& m = d.message.message();
    auto [it, first] = last.try_emplace(m.queue_id(), m.queue_offset());
    if (first) continue;
    EXPECT_GT(m.queue_offset(), it->second) << "queue " << m.queue_id();
    it->second = m.queue_offset();
  }
  EXPECT_EQ(last.size(), 4u);
  EXPECT_EQ(Multiset(consumer->Ids()), Multiset(sent));
  consumer->AckAll();
}

TEST_F(PushTest, ASettleGrantsTheCreditsItCarries) {
  auto consumer = Subscribe(Subscription("g-settle-credits", "settle-credits-1", 5));
  ASSERT_TRUE(consumer->WaitForAssignment({0, 1, 2, 3}, 1));
  ASSERT_TRUE(consumer->Subscribed().has_value());
  EXPECT_TRUE(consumer->Subscribed()->settle_credits());
  SendMany("sc", 12);
  ASSERT_TRUE(consumer->WaitForDeliveries(5));
  EXPECT_FALSE(consumer->WaitForDeliveries(6, absl::Milliseconds(500)));
  consumer->AckAll(/*credits=*/5);
  ASSERT_TRUE(consumer->WaitForDeliveries(10));
  EXPECT_FALSE(consumer->WaitForDeliveries(11, absl::Milliseconds(500)));
  consumer->AckAll(/*credits=*/2);
  ASSERT_TRUE(consumer->WaitForDeliveries(12));
  consumer->AckAll();
  EXPECT_EQ(Multiset(consumer->Ids()).size(), 12u);
}

TEST_F(PushTest, ClusteringRebalancesWhenAConsumerJoins) {
  const absl::Duration ack_timeout = absl::Seconds(2);
  auto a = Subscribe(
      Subscription("g-rebalance", "member-a", 1000, av1::CONSUME_MODE_CLUSTERING, ack_timeout));
  ASSERT_TRUE(a->WaitForAssignment({0, 1, 2, 3}, 1));
  std::vector<std::string> sent = SendMany("first", 20);
  ASSERT_TRUE(a->WaitForDeliveries(20));
  a->AckAll();

  auto b = Subscribe(
      Subscription("g-rebalance", "member-b", 1000, av1::CONSUME_MODE_CLUSTERING, ack_timeout));
  ASSERT_TRUE(b->WaitForAssignment({2, 3}, 2));
  ASSERT_TRUE(a->WaitForAssignment({0, 1}, 2));
  for (const std::string& id : SendMany("second", 40)) sent.push_back(id);
  ASSERT_TRUE(PushConsumer::WaitFor([&] {
    return a->Deliveries().size() + b->Deliveries().size() >= 60;
  })) << a->Deliveries().size()
      << " + " << b->Deliveries().size();
  a->AckAll();
  b->AckAll();
  // After the join each member got only its own queues.
  for (const Delivery& d : a->Deliveries()) {
    if (absl::StartsWith(d.message.message().message_id(), "second")) {
      EXPECT_LT(d.message.message().queue_id(), 2) << d.message.message().message_id();
    }
  }
  for (const Delivery& d : b->Deliveries()) EXPECT_GE(d.message.message().queue_id(), 2);
  EXPECT_FALSE(b->Deliveries().empty());
  // Longer than the ack timeout: nothing acked comes back to anyone.
  EXPECT_FALSE(
      PushConsumer::WaitFor([&] { return a->Deliveries().size() + b->Deliveries().size() > 60; },
                            ack_timeout + absl::Seconds(1)));
  std::vector<std::string> got = a->Ids();
  for (const std::string& id : b->Ids()) got.push_back(id);
  EXPECT_EQ(Multiset(got), Multiset(sent));
}

TEST_F(PushTest, KilledConsumerProcessHandsItsMessagesToTheSurvivor) {
  const std::string group = "g-kill";
  ConsumerProcess victim({absl::StrCat("--broker=", cluster_.broker_address()),
                          absl::StrCat("--group=", group), absl::StrCat("--topic=", topic_),
                          "--client_id=member-a-victim", "--credits=100"});
  ASSERT_TRUE(PushConsumer::WaitFor([&] { return victim.HasLine("assignment 1 0,1,2,3"); }))
      << cluster_.broker()->LogTail();
  std::vector<std::string> sent = SendMany("before", 8);
  ASSERT_TRUE(PushConsumer::WaitFor([&] { return victim.MessageIds().size() == 8; }));

  auto survivor = Subscribe(Subscription(group, "member-b-survivor", 100));
  ASSERT_TRUE(survivor->WaitForAssignment({2, 3}, 2));
  ASSERT_TRUE(PushConsumer::WaitFor([&] { return victim.HasLine("assignment 2 0,1"); }));
  for (const std::string& id : SendMany("during", 8)) sent.push_back(id);
  ASSERT_TRUE(PushConsumer::WaitFor(
      [&] { return victim.MessageIds().size() + survivor->Deliveries().size() == 16; }));
  survivor->AckAll();
  std::set<std::string> acked_by_survivor;
  for (const std::string& id : survivor->Ids()) acked_by_survivor.insert(id);
  const std::set<std::string> unacked = victim.MessageIds();
  ASSERT_FALSE(unacked.empty());

  victim.Kill();
  ASSERT_TRUE(survivor->WaitForAssignment({0, 1, 2, 3}, 1));
  // The victim's unacked messages come to the survivor (attempt 2).
  ASSERT_TRUE(survivor->WaitForDeliveries(acked_by_survivor.size() + unacked.size()))
      << survivor->Deliveries().size() << "\n"
      << cluster_.broker()->LogTail();
  std::vector<Delivery> deliveries = survivor->Deliveries();
  std::set<std::string> redelivered;
  for (size_t i = acked_by_survivor.size(); i < deliveries.size(); ++i) {
    const pushv1::PushedMessage& m = deliveries[i].message;
    EXPECT_EQ(acked_by_survivor.count(m.message().message_id()), 0u)
        << "acked, yet redelivered: " << m.message().message_id();
    EXPECT_EQ(unacked.count(m.message().message_id()), 1u) << m.message().message_id();
    EXPECT_EQ(m.delivery_attempt(), 2) << m.message().message_id();
    redelivered.insert(m.message().message_id());
  }
  EXPECT_EQ(redelivered, unacked);
  survivor->AckAll();
  std::vector<std::string> got(acked_by_survivor.begin(), acked_by_survivor.end());
  got.insert(got.end(), redelivered.begin(), redelivered.end());
  EXPECT_EQ(Multiset(got), Multiset(sent));
}

TEST_F(PushTest, BroadcastingGivesEveryConsumerEveryMessage) {
  std::vector<std::unique_ptr<PushConsumer>> consumers;
  for (int i = 0; i < 3; ++i) {
    consumers.push_back(Subscribe(Subscription("g-broadcast", absl::StrCat("broadcast-", i), 100,
                                               av1::CONSUME_MODE_BROADCASTING)));
  }
  for (auto& c : consumers) ASSERT_TRUE(c->WaitForAssignment({0, 1, 2, 3}, 3));
  std::vector<std::string> sent = SendMany("b", 12);
  for (auto& c : consumers) {
    ASSERT_TRUE(c->WaitForDeliveries(12));
    c->AckAll();
  }
  for (auto& c : consumers) {
    EXPECT_FALSE(c->WaitForDeliveries(13, absl::Milliseconds(500)));
    EXPECT_EQ(Multiset(c->Ids()), Multiset(sent));
  }
}

TEST_F(PushTest, ConsumersResumeFromCommittedProgressAfterBrokerRestart) {
  // A clustering member and a broadcasting member, each with 10 credits:
  // each gets and acks 10 of 15, leaving 5 unread.
  auto clustering = Subscribe(Subscription("g-restart", "restart-c", 10));
  auto broadcasting =
      Subscribe(Subscription("g-restart-b", "restart-b", 10, av1::CONSUME_MODE_BROADCASTING));
  ASSERT_TRUE(clustering->WaitForAssignment({0, 1, 2, 3}, 1));
  ASSERT_TRUE(broadcasting->WaitForAssignment({0, 1, 2, 3}, 1));
  std::vector<std::string> sent = SendMany("old", 15);
  for (PushConsumer* c : {clustering.get(), broadcasting.get()}) {
    ASSERT_TRUE(c->WaitForDeliveries(10));
    c->AckAll();
  }

  absl::Status restarted = cluster_.RestartBroker();
  ASSERT_TRUE(restarted.ok()) << restarted;
  for (PushConsumer* c : {clustering.get(), broadcasting.get()}) {
    ASSERT_TRUE(c->WaitForEnd());
    EXPECT_FALSE(c->EndStatus().ok());
  }
  Connect();
  // Reconnect with the same client ids.
  auto clustering2 = Subscribe(Subscription("g-restart", "restart-c", 100));
  auto broadcasting2 =
      Subscribe(Subscription("g-restart-b", "restart-b", 100, av1::CONSUME_MODE_BROADCASTING));
  for (const std::string& id : SendMany("new", 5)) sent.push_back(id);
  for (auto [before, after] : {std::pair{clustering.get(), clustering2.get()},
                               std::pair{broadcasting.get(), broadcasting2.get()}}) {
    ASSERT_TRUE(after->WaitForDeliveries(10)) << after->Deliveries().size() << "\n"
                                              << cluster_.broker()->LogTail();
    EXPECT_FALSE(after->WaitForDeliveries(11, absl::Milliseconds(500)));
    after->AckAll();
    std::vector<std::string> got = before->Ids();
    for (const std::string& id : after->Ids()) got.push_back(id);
    // Nothing acked came back and nothing was lost.
    EXPECT_EQ(Multiset(got), Multiset(sent));
  }
}

TEST_F(PushTest, BrokerShutdownEndsStreamsWithUnavailable) {
  auto consumer = Subscribe(Subscription("g-shutdown", "shutdown-1", 10));
  ASSERT_TRUE(consumer->WaitForAssignment({0, 1, 2, 3}, 1));
  auto stopped = cluster_.broker()->Stop(SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << *stopped << "\n"
                                                                 << cluster_.broker()->LogTail();
  ASSERT_TRUE(consumer->WaitForEnd());
  EXPECT_EQ(consumer->EndStatus().error_code(), grpc::UNAVAILABLE);
  EXPECT_THAT(consumer->EndStatus().error_message(), ::testing::HasSubstr("shutting down"));
}

TEST_F(PushTest, BadSubscriptionsEndTheStreamNamingTheFieldAndLimit) {
  struct Case {
    std::function<void(pushv1::Subscribe&)> change;
    grpc::StatusCode code;
    std::string text;
  };
  std::vector<Case> cases = {
      {[](pushv1::Subscribe& s) { s.set_initial_credits(-1); }, grpc::INVALID_ARGUMENT,
       "subscribe.initial_credits is -1 (allowed: 0..10000)"},
      {[](pushv1::Subscribe& s) { s.set_initial_credits(10001); }, grpc::INVALID_ARGUMENT,
       "allowed: 0..10000"},
      {[](pushv1::Subscribe& s) { s.mutable_ack_timeout()->set_seconds(0); },
       grpc::INVALID_ARGUMENT, "subscribe.ack_timeout"},
      {[](pushv1::Subscribe& s) { s.set_group("bad group"); }, grpc::INVALID_ARGUMENT,
       "subscribe.group"},
      {[](pushv1::Subscribe& s) { s.set_client_id(""); }, grpc::INVALID_ARGUMENT,
       "subscribe.client_id"},
      {[](pushv1::Subscribe& s) { s.set_topic("NoSuchTopic"); }, grpc::NOT_FOUND, "NoSuchTopic"},
      {[](pushv1::Subscribe& s) { s.set_topic("rmq_sys_wheel_timer"); }, grpc::PERMISSION_DENIED,
       "subscribe.topic \"rmq_sys_wheel_timer\" is a system topic"},
  };
  for (const Case& c : cases) {
    pushv1::Subscribe s = Subscription("g-bad", "bad-1", 1);
    c.change(s);
    auto consumer = Subscribe(s);
    ASSERT_TRUE(consumer->WaitForEnd()) << c.text;
    EXPECT_EQ(consumer->EndStatus().error_code(), c.code) << c.text;
    EXPECT_THAT(consumer->EndStatus().error_message(), ::testing::HasSubstr(c.text));
  }
  // Credits out of range end a good stream too.
  auto consumer = Subscribe(Subscription("g-bad", "bad-2", 1));
  ASSERT_TRUE(consumer->WaitForAssignment({0, 1, 2, 3}, 1));
  consumer->Grant(20000);
  ASSERT_TRUE(consumer->WaitForEnd());
  EXPECT_EQ(consumer->EndStatus().error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(consumer->EndStatus().error_message(),
              ::testing::HasSubstr("credit.messages is 20000 (allowed: 1..10000)"));
  // And so do the credits a settle carries.
  auto settler = Subscribe(Subscription("g-bad", "bad-3", 1));
  ASSERT_TRUE(settler->WaitForAssignment({0, 1, 2, 3}, 1));
  pushv1::ConsumeRequest settle;
  settle.mutable_settle()->set_credits(-3);
  settler->Write(settle);
  ASSERT_TRUE(settler->WaitForEnd());
  EXPECT_EQ(settler->EndStatus().error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(settler->EndStatus().error_message(),
              ::testing::HasSubstr("settle.credits is -3 (allowed: 1..10000)"));
}

TEST_F(PushTest, NackRedeliversWithTheNextAttempt) {
  auto consumer = Subscribe(Subscription("g-nack", "nack-1", 10));
  ASSERT_TRUE(consumer->WaitForAssignment({0, 1, 2, 3}, 1));
  SendMany("n", 1);
  ASSERT_TRUE(consumer->WaitForDeliveries(1));
  pushv1::ConsumeRequest nack;
  pushv1::Nack* n = nack.mutable_settle()->add_nacks();
  n->set_receipt_handle(consumer->Deliveries()[0].message.receipt_handle());
  n->mutable_retry_delay()->set_nanos(100 * 1000 * 1000);
  consumer->Write(nack);
  ASSERT_TRUE(consumer->WaitForDeliveries(2));
  const pushv1::PushedMessage again = consumer->Deliveries()[1].message;
  EXPECT_EQ(again.message().message_id(), "n-0");
  EXPECT_EQ(again.delivery_attempt(), 2);
  EXPECT_EQ(again.message().topic(), topic_);
}

TEST_F(PushTest, TheStoredFormCarriesTheMessageAsSentAndRetriesComeDecoded) {
  pushv1::Subscribe subscribe = Subscription("g-stored", "stored-1", 10);
  subscribe.set_stored_messages(true);
  auto consumer = Subscribe(subscribe);
  ASSERT_TRUE(consumer->WaitForAssignment({0, 1, 2, 3}, 1));
  v2::SendMessageRequest request;
  v2::Message* sent = request.add_messages();
  sent->mutable_topic()->set_name(topic_);
  sent->mutable_system_properties()->set_message_id("stored-0");
  sent->mutable_system_properties()->set_message_type(v2::NORMAL);
  sent->mutable_system_properties()->set_tag("TagS");
  sent->mutable_system_properties()->add_keys("key-s");
  (*sent->mutable_user_properties())["color"] = "blue";
  sent->set_body("body-stored");
  sent->mutable_system_properties()->mutable_born_timestamp()->set_seconds(1'700'000'000);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  context.AddMetadata("x-mq-client-id", "push-test-producer");
  v2::SendMessageResponse response;
  ASSERT_TRUE(v2_->SendMessage(&context, request, &response).ok());
  ASSERT_EQ(response.status().code(), v2::OK) << response.status().message();
  const int64_t offset = response.entries(0).offset();

  ASSERT_TRUE(consumer->WaitForDeliveries(1)) << cluster_.broker()->LogTail();
  const pushv1::PushedMessage first = consumer->Deliveries()[0].message;
  EXPECT_FALSE(first.has_message()) << "asked for the stored form";
  v2::Message stored;
  ASSERT_TRUE(stored.ParseFromString(first.stored_message()));
  EXPECT_EQ(stored.system_properties().message_id(), "stored-0");
  EXPECT_EQ(stored.system_properties().tag(), "TagS");
  EXPECT_THAT(stored.system_properties().keys(), ::testing::ElementsAre("key-s"));
  EXPECT_EQ(stored.user_properties().at("color"), "blue");
  EXPECT_EQ(stored.body(), "body-stored");
  EXPECT_EQ(stored.system_properties().born_timestamp().seconds(), 1'700'000'000);
  EXPECT_EQ(first.topic(), topic_);
  EXPECT_GE(first.queue_id(), 0);
  EXPECT_LT(first.queue_id(), 4);
  EXPECT_EQ(first.queue_offset(), offset);
  EXPECT_GT(first.store_time().seconds(), 0);
  EXPECT_EQ(first.delivery_attempt(), 1);
  EXPECT_FALSE(first.receipt_handle().empty());

  // Redelivered from the group's retry topic: decoded, under the original
  // topic, without the broker's internal properties.
  pushv1::ConsumeRequest nack;
  pushv1::Nack* n = nack.mutable_settle()->add_nacks();
  n->set_receipt_handle(first.receipt_handle());
  n->mutable_retry_delay()->set_nanos(100 * 1000 * 1000);
  consumer->Write(nack);
  ASSERT_TRUE(consumer->WaitForDeliveries(2));
  const pushv1::PushedMessage again = consumer->Deliveries()[1].message;
  ASSERT_TRUE(again.has_message());
  EXPECT_TRUE(again.stored_message().empty());
  EXPECT_EQ(again.message().message_id(), "stored-0");
  EXPECT_EQ(again.message().topic(), topic_);
  EXPECT_EQ(again.delivery_attempt(), 2);
  EXPECT_THAT(again.message().properties(),
              ::testing::UnorderedElementsAre(::testing::Pair("color", "blue")));
}

}  // namespace
}  // namespace apogee
