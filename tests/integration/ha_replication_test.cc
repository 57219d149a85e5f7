// Master/slave groups whose stores really replicate, as real processes: a
// NameServer, two brokers of group broker-a (ids 0 and 1) each with its own
// store, and a real etcd for the failover tests. What issue 13 promises a
// user: sync replication loses no acknowledged message when the master dies,
// consumers carry on from the slave with their progress, sync sends fail
// with SLAVE_PERSISTENCE_TIMEOUT when no slave keeps up, and with a
// controller the slave is promoted and the old master is fenced.
#include <csignal>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "services/broker/controller/etcd_client.h"
#include "services/broker/controller/testing/etcd_process.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

namespace apogee {
namespace {

namespace av1 = ::apogee::admin::v1;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::apogee::testing::V2TestClient;
using ::testing::HasSubstr;

constexpr char kTopic[] = "HaReplicated";

// Every key under `prefix` with its value, for failure messages.
std::string EtcdDump(const std::string& endpoint, const std::string& prefix) {
  auto client = controller::EtcdClient::Create(endpoint);
  if (!client.ok()) return client.status().ToString();
  auto range = (*client)->GetPrefix(prefix, absl::Seconds(2));
  if (!range.ok()) return range.status().ToString();
  std::string out;
  for (const controller::EtcdKeyValue& kv : range->kvs) {
    absl::StrAppend(&out, kv.key, " = ", kv.value, " (lease ", kv.lease, ")\n");
  }
  return out;
}

class HaReplicationTest : public ::testing::Test {
 protected:
  // Starts the master with `flags` and a slave (id 1) with `slave_flags`.
  void StartGroup(const std::vector<std::string>& flags,
                  const std::vector<std::string>& slave_flags) {
    cluster_.enable_replication();
    absl::Status started = cluster_.Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    auto slave = cluster_.AddSlave(0, 1, slave_flags);
    ASSERT_TRUE(slave.ok()) << slave.status();
  }

  // A group electing its master in `etcd` under cluster `cluster`, with a
  // caught-up slave and the topic created.
  void StartElectedGroup(controller::testing::EtcdProcess* etcd, const std::string& cluster) {
    const std::vector<std::string> flags = {absl::StrCat("--controller=etcd:", etcd->endpoint()),
                                            absl::StrCat("--cluster=", cluster)};
    StartGroup(flags, flags);
    ASSERT_TRUE(AwaitCaughtUpSlave(0)) << Status(0).DebugString();
    ASSERT_TRUE(cluster_.CreateTopic(kTopic, 4).ok());
  }

  // Only a slave the master published as in sync may be promoted.
  static bool AwaitPublishedInSync(controller::testing::EtcdProcess* etcd,
                                   const std::string& cluster) {
    const std::string prefix = absl::StrCat("/apogee/", cluster, "/");
    const bool in_sync = PollUntil(
        [&] {
          return absl::StrContains(EtcdDump(etcd->endpoint(), prefix + "broker-a/insync"),
                                   "ids=0,1");
        },
        absl::Seconds(10));
    if (!in_sync) ADD_FAILURE() << EtcdDump(etcd->endpoint(), prefix);
    return in_sync;
  }

  av1::GetBrokerStatusResponse Status(int index) {
    auto admin = av1::Admin::NewStub(
        grpc::CreateChannel(cluster_.broker(index)->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    av1::GetBrokerStatusResponse status;
    if (!admin->GetBrokerStatus(&context, {}, &status).ok()) return {};
    return status;
  }

  // Until broker `index` is master with an in-sync slave that lags nothing.
  bool AwaitCaughtUpSlave(int index) {
    return PollUntil(
        [&] {
          av1::GetBrokerStatusResponse s = Status(index);
          return s.role() == "master" && s.replicas_size() == 1 && s.replicas(0).in_sync() &&
                 s.replicas(0).lag_bytes() == 0;
        },
        absl::Seconds(20));
  }

  std::unique_ptr<Producer> NewProducer() {
    ProducerOptions options;
    options.endpoints = {cluster_.nameserver_address()};
    options.route_refresh = absl::Seconds(1);
    auto producer = Producer::Create(options);
    EXPECT_TRUE(producer.ok()) << producer.status();
    return producer.ok() ? std::move(producer).value() : nullptr;
  }

  std::unique_ptr<SimpleConsumer> NewConsumer(const std::string& group) {
    SimpleConsumerOptions options;
    options.endpoints = {cluster_.nameserver_address()};
    options.route_refresh = absl::Seconds(1);
    options.group = group;
    options.subscriptions[kTopic] = "*";
    options.await_duration = absl::Milliseconds(500);
    auto consumer = SimpleConsumer::Create(options);
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    return consumer.ok() ? std::move(consumer).value() : nullptr;
  }

  // Sends `count` messages "<prefix>-<i>"; the bodies acknowledged.
  std::set<std::string> SendAll(Producer* producer, const std::string& prefix, int count) {
    std::set<std::string> acked;
    for (int i = 0; i < count; ++i) {
      Message m;
      m.topic = kTopic;
      m.body = absl::StrCat(prefix, "-", i);
      auto receipt = producer->Send(m);
      EXPECT_TRUE(receipt.ok()) << m.body << ": " << receipt.status();
      if (receipt.ok()) acked.insert(m.body);
    }
    return acked;
  }

  // Receives (and acks) until `want` are all in, or `timeout`; every body
  // seen.
  static std::multiset<std::string> ReceiveAll(SimpleConsumer* consumer,
                                               const std::set<std::string>& want,
                                               absl::Duration timeout = absl::Seconds(30)) {
    std::multiset<std::string> seen;
    const absl::Time end = absl::Now() + timeout;
    auto missing = [&] {
      for (const std::string& body : want) {
        if (seen.count(body) == 0) return true;
      }
      return false;
    };
    while (missing() && absl::Now() < end) {
      auto messages = consumer->Receive(32, absl::Seconds(20));
      if (!messages.ok()) continue;  // Receive backs off by itself
      for (const ReceivedMessage& m : *messages) seen.insert(m.body);
      EXPECT_TRUE(consumer->Ack(*messages).ok());
    }
    return seen;
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
};

// Sync replication: every acknowledged message is on the slave, so after
// the master and its store are SIGKILLed a consumer reads them all from the
// slave, and the group's committed progress came along (no full replay).
TEST_F(HaReplicationTest, SyncModeLosesNothingAcknowledgedWhenTheMasterDies) {
  StartGroup({"--replication=sync"}, {});
  ASSERT_TRUE(cluster_.CreateTopic(kTopic, 4).ok());
  ASSERT_TRUE(AwaitCaughtUpSlave(0)) << Status(0).DebugString();
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);

  // The group consumes the first batch on the master.
  const std::set<std::string> first = SendAll(producer.get(), "first", 40);
  ASSERT_EQ(first.size(), 40u);
  {
    auto consumer = NewConsumer("HaGroup");
    ASSERT_NE(consumer, nullptr);
    std::multiset<std::string> seen = ReceiveAll(consumer.get(), first);
    for (const std::string& body : first) ASSERT_EQ(seen.count(body), 1u) << body;
  }
  // Its progress reaches the slave's store (metadata snapshots).
  auto slave_admin = av1::Admin::NewStub(
      grpc::CreateChannel(cluster_.broker(1)->address(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(PollUntil(
      [&] {
        grpc::ClientContext context;
        av1::GetGroupProgressRequest request;
        request.set_group("HaGroup");
        request.set_topic(kTopic);
        av1::GetGroupProgressResponse progress;
        if (!slave_admin->GetGroupProgress(&context, request, &progress).ok()) return false;
        int64_t committed = 0;
        for (const av1::QueueProgress& q : progress.queues()) committed += q.committed_offset();
        return committed == 40;
      },
      absl::Seconds(10)));

  const std::set<std::string> second = SendAll(producer.get(), "second", 60);
  ASSERT_EQ(second.size(), 60u);
  ASSERT_TRUE(cluster_.broker(0)->Stop(SIGKILL).ok());
  ASSERT_TRUE(cluster_.store(0)->Stop(SIGKILL).ok());

  auto consumer = NewConsumer("HaGroup");
  ASSERT_NE(consumer, nullptr);
  std::multiset<std::string> seen = ReceiveAll(consumer.get(), second);
  for (const std::string& body : second) EXPECT_EQ(seen.count(body), 1u) << body << " lost";
  for (const std::string& body : first) EXPECT_EQ(seen.count(body), 0u) << body << " replayed";
}

// Async replication acknowledges before the slave holds a send: what a
// master's death loses is bounded by the lag it reported just before.
TEST_F(HaReplicationTest, AsyncModeLosesAtMostTheReportedLag) {
  StartGroup({}, {});
  ASSERT_TRUE(cluster_.CreateTopic(kTopic, 4).ok());
  ASSERT_TRUE(AwaitCaughtUpSlave(0)) << Status(0).DebugString();
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  const std::set<std::string> replicated = SendAll(producer.get(), "replicated", 20);
  ASSERT_TRUE(AwaitCaughtUpSlave(0)) << Status(0).DebugString();

  // The slave's broker knows the topic (a metadata snapshot, then its
  // config reload), so it can serve it alone.
  auto slave_admin = av1::Admin::NewStub(
      grpc::CreateChannel(cluster_.broker(1)->address(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(PollUntil(
      [&] {
        grpc::ClientContext context;
        av1::GetTopicRequest request;
        request.set_name(kTopic);
        av1::GetTopicResponse topic;
        return slave_admin->GetTopic(&context, request, &topic).ok();
      },
      absl::Seconds(10)));
  // The slave's store freezes; the master goes on acknowledging.
  ASSERT_EQ(kill(cluster_.store(1)->pid(), SIGSTOP), 0);
  const std::set<std::string> unreplicated = SendAll(producer.get(), "unreplicated", 30);
  ASSERT_EQ(unreplicated.size(), 30u);
  int64_t lag_bytes = -1;
  ASSERT_TRUE(PollUntil(
      [&] {
        av1::GetBrokerStatusResponse s = Status(0);
        if (s.replicas_size() != 1) return false;
        lag_bytes = s.replicas(0).lag_bytes();
        return lag_bytes > 0;
      },
      absl::Seconds(10)));
  ASSERT_TRUE(cluster_.broker(0)->Stop(SIGKILL).ok());
  ASSERT_TRUE(cluster_.store(0)->Stop(SIGKILL).ok());
  ASSERT_EQ(kill(cluster_.store(1)->pid(), SIGCONT), 0);

  auto consumer = NewConsumer("HaAsyncGroup");
  ASSERT_NE(consumer, nullptr);
  // Whatever of the unreplicated sends the slave got arrives within 5 s.
  std::set<std::string> everything = replicated;
  everything.insert(unreplicated.begin(), unreplicated.end());
  std::multiset<std::string> seen = ReceiveAll(consumer.get(), everything, absl::Seconds(5));
  for (const std::string& body : replicated) EXPECT_GE(seen.count(body), 1u) << body << " lost";
  int lost = 0;
  for (const std::string& body : unreplicated) lost += seen.count(body) == 0 ? 1 : 0;
  // Every lost record held a body of at least 14 bytes in the lag.
  EXPECT_LE(lost * int64_t{14}, lag_bytes) << lost << " lost with " << lag_bytes << " B of lag";
  std::fprintf(stderr, "async: %d of 30 unreplicated sends lost; lag reported %lld B\n", lost,
               static_cast<long long>(lag_bytes));
}

// Sync replication with the slave's store stopped: the master refuses to
// pretend, and the send fails with SLAVE_PERSISTENCE_TIMEOUT naming the
// policy, after about the replication timeout.
TEST_F(HaReplicationTest, SyncModeWithoutASlaveAnswersSlavePersistenceTimeout) {
  StartGroup({"--replication=sync", "--replication_timeout=500ms"}, {});
  ASSERT_TRUE(cluster_.CreateTopic(kTopic, 4).ok());
  ASSERT_TRUE(AwaitCaughtUpSlave(0)) << Status(0).DebugString();
  V2TestClient client(cluster_.broker_address(), "ha-test@1@0@it");
  ASSERT_TRUE(client.Send(kTopic, "id-before", "x").ok());

  ASSERT_TRUE(cluster_.store(1)->Stop(SIGKILL).ok());
  const absl::Time start = absl::Now();
  absl::Status refused = client.Send(kTopic, "id-after", "x");
  const absl::Duration took = absl::Now() - start;
  EXPECT_THAT(refused.message(), HasSubstr("SLAVE_PERSISTENCE_TIMEOUT"));
  EXPECT_THAT(refused.message(), HasSubstr("min_insync_replicas=1"));
  EXPECT_LT(took, absl::Seconds(10));

  // The slave's store comes back, catches up, and sync sends succeed again.
  ASSERT_TRUE(cluster_.RestartStore(1).ok());
  ASSERT_TRUE(AwaitCaughtUpSlave(0)) << Status(0).DebugString();
  EXPECT_TRUE(client.Send(kTopic, "id-back", "x").ok());
}

// With etcd: the master and its store are SIGKILLed, the slave is promoted
// (epoch bumped) and producers write again within seconds; the old master
// comes back as a slave of the new one and refuses writes (fenced).
TEST_F(HaReplicationTest, EtcdPromotesTheSlaveAndTheOldMasterReturnsAsItsSlave) {
  controller::testing::EtcdProcess* etcd = controller::testing::SharedEtcd();
  ASSERT_NE(etcd, nullptr) << "etcd did not start";
  StartElectedGroup(etcd, "HaFailover");
  if (HasFatalFailure()) return;
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  const std::set<std::string> before = SendAll(producer.get(), "before", 50);
  ASSERT_EQ(before.size(), 50u);
  ASSERT_TRUE(AwaitCaughtUpSlave(0)) << Status(0).DebugString();
  ASSERT_TRUE(AwaitPublishedInSync(etcd, "HaFailover"));
  const int64_t old_epoch = Status(0).epoch();

  ASSERT_TRUE(cluster_.broker(0)->Stop(SIGKILL).ok());
  ASSERT_TRUE(cluster_.store(0)->Stop(SIGKILL).ok());
  const absl::Time killed = absl::Now();
  Message m;
  m.topic = kTopic;
  m.body = "after-0";
  ASSERT_TRUE(PollUntil([&] { return producer->Send(m).ok(); }, absl::Seconds(30)))
      << "no write accepted after the master died; etcd holds:\n"
      << EtcdDump(etcd->endpoint(), "/apogee/HaFailover/") << "the slave's log:\n"
      << cluster_.broker(1)->LogTail() << "\nits store's log:\n"
      << cluster_.store(1)->LogTail();
  const absl::Duration failover = absl::Now() - killed;
  std::fprintf(stderr, "failover: first write accepted %s after SIGKILL\n",
               absl::FormatDuration(failover).c_str());
  EXPECT_LT(failover, absl::Seconds(10));
  av1::GetBrokerStatusResponse promoted = Status(1);
  EXPECT_EQ(promoted.role(), "master");
  EXPECT_GT(promoted.epoch(), old_epoch);

  // The old master returns (same ports): it follows the new master and
  // refuses writes.
  ASSERT_TRUE(cluster_.RestartStore(0).ok());
  ASSERT_TRUE(cluster_.RestartBroker(0).ok());
  ASSERT_TRUE(AwaitCaughtUpSlave(1)) << Status(1).DebugString();
  av1::GetBrokerStatusResponse returned = Status(0);
  EXPECT_EQ(returned.role(), "slave");
  EXPECT_EQ(returned.epoch(), promoted.epoch());
  // A send that reaches it is relayed to the new master, never stored on
  // the fenced one (--forward_sends).
  V2TestClient to_old(cluster_.broker_address(), "ha-test@1@0@it");
  EXPECT_TRUE(to_old.Send(kTopic, "id-old", "x").ok());
  auto relayed = testing::ScrapeMetric(cluster_.broker(0)->metrics_address(), "apogee_rpc_total",
                                       {{"rpc", "send_relayed"}, {"result", "OK"}});
  EXPECT_EQ(relayed.value_or(-1), 1);

  // Everything acknowledged before the failover is on the new master.
  auto consumer = NewConsumer("HaFailoverGroup");
  ASSERT_NE(consumer, nullptr);
  std::multiset<std::string> seen = ReceiveAll(consumer.get(), before);
  for (const std::string& body : before) EXPECT_GE(seen.count(body), 1u) << body << " lost";

  // An operator hands mastership back (apogee-admin broker promote), with
  // a new epoch; the producer follows.
  ASSERT_TRUE(PollUntil(
      [&] {
        return absl::StrContains(EtcdDump(etcd->endpoint(), "/apogee/HaFailover/broker-a/insync"),
                                 "ids=0,1");
      },
      absl::Seconds(10)));
  auto admin = av1::Admin::NewStub(
      grpc::CreateChannel(cluster_.broker(1)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(15)));
  av1::PromoteBrokerRequest promote;
  promote.set_broker_id(0);
  av1::PromoteBrokerResponse promoted_back;
  grpc::Status moved = admin->PromoteBroker(&context, promote, &promoted_back);
  ASSERT_TRUE(moved.ok()) << moved.error_message();
  EXPECT_GT(promoted_back.epoch(), promoted.epoch());
  ASSERT_TRUE(PollUntil([&] { return Status(0).role() == "master" && Status(1).role() == "slave"; },
                        absl::Seconds(10)));
  m.body = "after-promote";
  EXPECT_TRUE(PollUntil([&] { return producer->Send(m).ok(); }, absl::Seconds(10)));
}

// The official Node client caches the route it publishes to forever: it
// keeps writing through a failover by isolating the dead master's endpoint
// and using the standby queue QueryRoute lists for the slave (relayed to the
// writer until the slave is promoted, then written there).
// Delayed messages under HA (docs/design/message-types.md §2.6): the TIMER
// records travel in the log, the slave's store indexes them and never
// fires; after the master and its store are SIGKILLed and the slave is
// promoted, its store fires each pending timer once, never early.
TEST_F(HaReplicationTest, PendingTimersFireOnTheNewMasterAfterAFailover) {
  controller::testing::EtcdProcess* etcd = controller::testing::SharedEtcd();
  ASSERT_NE(etcd, nullptr) << "etcd did not start";
  StartElectedGroup(etcd, "HaTimers");
  if (HasFatalFailure()) return;
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(AwaitPublishedInSync(etcd, "HaTimers"));
  // Due after the failover has surely begun, well before it is over.
  const absl::Time due = absl::Now() + absl::Seconds(3);
  std::set<std::string> sent;
  for (int i = 0; i < 10; ++i) {
    Message m;
    m.topic = kTopic;
    m.body = absl::StrCat("timer-", i);
    m.delivery_time = due;
    auto receipt = producer->Send(m);
    ASSERT_TRUE(receipt.ok()) << receipt.status();
    sent.insert(m.body);
  }
  ASSERT_TRUE(AwaitCaughtUpSlave(0)) << Status(0).DebugString();
  // Topic configs reach the slave in metadata snapshots, not in the log;
  // wait for it so that the timers fire at once after the promotion (before
  // the config they would be held, services/store/typed/README.md).
  auto slave_admin = av1::Admin::NewStub(
      grpc::CreateChannel(cluster_.broker(1)->address(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(PollUntil(
      [&] {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
        av1::GetTopicRequest request;
        request.set_name(kTopic);
        av1::GetTopicResponse topic;
        return slave_admin->GetTopic(&context, request, &topic).ok();
      },
      absl::Seconds(10)));
  ASSERT_TRUE(cluster_.broker(0)->Stop(SIGKILL).ok());
  ASSERT_TRUE(cluster_.store(0)->Stop(SIGKILL).ok());
  ASSERT_TRUE(PollUntil([&] { return Status(1).role() == "master"; }, absl::Seconds(15)))
      << cluster_.broker(1)->LogTail();

  // A write through the failover, as producers keep sending.
  Message after;
  after.topic = kTopic;
  after.body = "after";
  ASSERT_TRUE(PollUntil([&] { return producer->Send(after).ok(); }, absl::Seconds(15)));
  // The new master registers its routes at its next heartbeat.
  std::unique_ptr<SimpleConsumer> consumer;
  ASSERT_TRUE(PollUntil(
      [&] {
        SimpleConsumerOptions options;
        options.endpoints = {cluster_.nameserver_address()};
        options.route_refresh = absl::Seconds(1);
        options.group = "HaTimerGroup";
        options.subscriptions[kTopic] = "*";
        options.await_duration = absl::Milliseconds(500);
        auto created = SimpleConsumer::Create(options);
        if (created.ok()) consumer = std::move(created).value();
        return consumer != nullptr;
      },
      absl::Seconds(15), absl::Milliseconds(200)))
      << cluster_.broker(1)->LogTail() << "\n"
      << Status(1).DebugString();
  std::multiset<std::string> seen;
  const absl::Time end = absl::Now() + absl::Seconds(20);
  auto all_in = [&] {
    for (const std::string& body : sent) {
      if (seen.count(body) == 0) return false;
    }
    return true;
  };
  absl::Time done_at = absl::InfiniteFuture();
  // Linger a second after the last to catch a second copy of any.
  while (absl::Now() < std::min(end, done_at)) {
    auto messages = consumer->Receive(32, absl::Seconds(20));
    if (!messages.ok()) continue;
    for (const ReceivedMessage& m : *messages) {
      seen.insert(m.body);
      EXPECT_GE(absl::Now(), due) << m.body << " arrived early";
    }
    EXPECT_TRUE(consumer->Ack(*messages).ok());
    if (all_in() && done_at == absl::InfiniteFuture()) done_at = absl::Now() + absl::Seconds(1);
  }
  for (const std::string& body : sent) {
    EXPECT_EQ(seen.count(body), 1u) << body << " not delivered exactly once";
  }
  if (HasFailure()) ADD_FAILURE() << "new master's store:\n" << cluster_.store(1)->LogTail();
}

TEST_F(HaReplicationTest, OfficialNodeProducerKeepsSendingThroughAFailover) {
  controller::testing::EtcdProcess* etcd = controller::testing::SharedEtcd();
  ASSERT_NE(etcd, nullptr) << "etcd did not start";
  StartElectedGroup(etcd, "HaNode");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(AwaitPublishedInSync(etcd, "HaNode"));

  const std::string log = cluster_.dir() + "/ha_failover.js.log";
  std::pair<int, std::string> result{-1, ""};
  std::thread node([&] {
    result = testing::RunNodeInterop(
        APOGEE_SOURCE_DIR, "ha_failover.js",
        absl::StrCat(cluster_.nameserver_address(), " ", kTopic, " 16"), log);
  });
  auto log_says = [&](absl::string_view what) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return absl::StrContains(text.str(), what);
  };
  const bool started = PollUntil([&] { return log_says("first send ok"); }, absl::Seconds(60));
  if (started) {
    ASSERT_TRUE(cluster_.broker(0)->Stop(SIGKILL).ok());
    ASSERT_TRUE(cluster_.store(0)->Stop(SIGKILL).ok());
  }
  node.join();
  ASSERT_TRUE(started) << result.second;
  EXPECT_EQ(result.first, 0) << result.second;
  EXPECT_THAT(result.second, HasSubstr("done"));
  std::fprintf(stderr, "node producer through the failover:\n%s\n", result.second.c_str());
  EXPECT_EQ(Status(1).role(), "master");
}

}  // namespace
}  // namespace apogee
