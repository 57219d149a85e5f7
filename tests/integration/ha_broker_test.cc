// A broker group with static roles (no controller) as real processes: the
// master (id 0) and a slave (id 1), each with its own store. Checks what the
// brokers and the NameServer do with roles; it does not depend on the stores
// replicating (that is the store's own test).
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

namespace apogee {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
namespace av1 = ::apogee::admin::v1;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::apogee::testing::V2TestClient;
using ::testing::HasSubstr;

std::unique_ptr<grpc::ClientContext> Context() {
  return testing::DeadlineContext(absl::Seconds(5));
}

// apogee_rpc_total{rpc, result} of `broker`; -1 when unreachable.
int64_t RpcCount(testing::ServiceProcess* broker, const std::string& rpc,
                 const std::string& result) {
  auto count = testing::ScrapeMetric(broker->metrics_address(), "apogee_rpc_total",
                                     {{"rpc", rpc}, {"result", result}});
  return count.ok() ? static_cast<int64_t>(*count) : -1;
}

class HaBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(cluster_.CreateTopic(kTopic, 4).ok());
    auto slave = cluster_.AddSlave(0, 1);
    ASSERT_TRUE(slave.ok()) << slave.status();
    slave_ = *slave;
    nameserver_ = nsv1::NameServer::NewStub(
        grpc::CreateChannel(cluster_.nameserver_address(), grpc::InsecureChannelCredentials()));
  }

  av1::GetBrokerStatusResponse Status(int index) {
    auto admin = av1::Admin::NewStub(
        grpc::CreateChannel(cluster_.broker(index)->address(), grpc::InsecureChannelCredentials()));
    av1::GetBrokerStatusResponse status;
    grpc::Status s = admin->GetBrokerStatus(Context().get(), {}, &status);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return status;
  }

  static constexpr char kTopic[] = "HaTopic";
  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  int slave_ = -1;
  std::unique_ptr<nsv1::NameServer::Stub> nameserver_;
};

TEST_F(HaBrokerTest, MasterWritesSlaveRefusesAndRoutesListBoth) {
  const std::string master_endpoint = cluster_.broker_address();
  const std::string slave_endpoint = cluster_.broker(slave_)->address();

  // The NameServer lists both: the master as route id 0, the slave as 1.
  nsv1::GetRouteResponse route;
  ASSERT_TRUE(PollUntil(
      [&] {
        nsv1::GetRouteRequest request;
        request.set_topic(kTopic);
        route.Clear();
        return nameserver_->GetRoute(Context().get(), request, &route).ok() &&
               route.broker_groups_size() == 1 && route.broker_groups(0).brokers_size() == 2;
      },
      absl::Seconds(10)))
      << route.DebugString();
  const nsv1::BrokerGroup& group = route.broker_groups(0);
  EXPECT_EQ(group.brokers(0).broker_id(), 0);
  EXPECT_EQ(group.brokers(0).configured_id(), 0);
  EXPECT_EQ(group.brokers(0).client_endpoint(), master_endpoint);
  EXPECT_EQ(group.brokers(0).ha_endpoint(), "127.0.0.1:10912");  // the default
  EXPECT_EQ(group.brokers(1).broker_id(), 1);
  EXPECT_EQ(group.brokers(1).client_endpoint(), slave_endpoint);

  // The slave relays a send to its master (official clients cache the
  // slave's standby queue, services/common/rocketmq/v2_route.h): stored there.
  V2TestClient to_slave(slave_endpoint, "ha-test@1@0@it");
  absl::Status via_slave = to_slave.Send(kTopic, "id-slave", "x");
  ASSERT_TRUE(via_slave.ok()) << via_slave;
  EXPECT_EQ(RpcCount(cluster_.broker(slave_), "send_relayed", "OK"), 1);
  EXPECT_EQ(RpcCount(cluster_.broker(0), "send", "OK"), 1);
  // A relayed call is never relayed again: the slave refuses it, naming
  // itself and its role.
  V2TestClient relayed(slave_endpoint, "ha-test@1@0@it");
  relayed.SetHeader("x-apogee-forwarded-by", "127.0.0.1:1");  // ha::kForwardedByHeader
  absl::Status refused = relayed.Send(kTopic, "id-relayed", "x");
  EXPECT_THAT(refused.message(), HasSubstr("HA_NOT_AVAILABLE"));
  EXPECT_THAT(refused.message(),
              HasSubstr(absl::StrCat("broker \"broker-a\" id 1 at ", slave_endpoint,
                                     " is a slave (epoch 0) and does not accept writes")));
  V2TestClient to_master(master_endpoint, "ha-test@1@0@it");
  EXPECT_TRUE(to_master.Send(kTopic, "id-master", "x").ok());

  // The SDK writes to the master only: with no retries, a single send
  // routed to the slave would fail.
  ProducerOptions options;
  options.endpoints = {cluster_.nameserver_address()};
  options.max_retries = 0;
  options.fault_avoidance = false;
  auto producer = Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = 0; i < 16; ++i) {
    Message m;
    m.topic = kTopic;
    m.body = absl::StrCat("m", i);
    auto receipt = (*producer)->Send(m);
    ASSERT_TRUE(receipt.ok()) << "send " << i << ": " << receipt.status();
  }

  // Admin status: roles, epoch, replication settings, the slave's master.
  av1::GetBrokerStatusResponse master = Status(0);
  EXPECT_EQ(master.role(), "master");
  EXPECT_EQ(master.epoch(), 0);
  EXPECT_EQ(master.replication_mode(), "async");
  EXPECT_EQ(master.min_insync_replicas(), 1);
  EXPECT_EQ(master.controller(), "static");
  av1::GetBrokerStatusResponse slave;
  ASSERT_TRUE(PollUntil(
      [&] {
        slave = Status(slave_);
        return slave.master_address() == "127.0.0.1:10912";
      },
      absl::Seconds(10)))
      << slave.DebugString();
  EXPECT_EQ(slave.role(), "slave");
  EXPECT_EQ(slave.broker_id(), 1);

  // Static roles: promotion needs a controller.
  auto admin =
      av1::Admin::NewStub(grpc::CreateChannel(slave_endpoint, grpc::InsecureChannelCredentials()));
  av1::PromoteBrokerRequest promote;
  promote.set_broker_id(1);
  av1::PromoteBrokerResponse promoted;
  grpc::Status s = admin->PromoteBroker(Context().get(), promote, &promoted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(),
              HasSubstr("no controller: roles are static (--controller not set)"));
}

TEST_F(HaBrokerTest, SdkRefreshesItsRouteWhenAFormerMasterRefusesASend) {
  auto b = cluster_.AddBroker("broker-b");
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(cluster_.CreateTopic(kTopic, 4, *b).ok());
  // The producer reads the route once (it refreshes only on an
  // invalidation): wait until the NameServer routes the topic to both groups.
  ASSERT_TRUE(PollUntil(
      [&] {
        nsv1::GetRouteRequest request;
        request.set_topic(kTopic);
        nsv1::GetRouteResponse route;
        return nameserver_->GetRoute(Context().get(), request, &route).ok() &&
               route.queues_size() == 2;
      },
      absl::Seconds(10)));
  ProducerOptions options;
  options.endpoints = {cluster_.nameserver_address()};
  options.max_retries = 1;  // a refused send succeeds on broker-b
  options.fault_avoidance = false;
  options.route_refresh = absl::Minutes(10);  // only an invalidation refreshes
  auto producer = Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  Message m;
  m.topic = kTopic;
  m.body = "x";
  // Both groups' masters take sends.
  std::set<std::string> brokers;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto receipt = (*producer)->Send(m);
        if (receipt.ok()) brokers.insert(receipt->broker);
        return brokers.size() == 2;
      },
      absl::Seconds(10)));

  // broker-a's master comes back on its port as a reader (id 2): the
  // producer's cached route still names it as broker-a's writer.
  const std::string address = cluster_.broker_address();
  ASSERT_TRUE(cluster_.StartBroker({"--broker_id=2", absl::StrCat("--listen=", address)}).ok());
  testing::ServiceProcess* former = cluster_.broker(0);
  ASSERT_TRUE(PollUntil(
      [&] {
        EXPECT_TRUE((*producer)->Send(m).ok());
        return RpcCount(former, "send", "HA_NOT_AVAILABLE") >= 1;
      },
      absl::Seconds(10)));
  // Every send still succeeds (retried on broker-b), and the refusal made
  // the producer fetch the route again: broker-a soon gets no more sends.
  // With the stale route every other few sends would be refused.
  int64_t last = RpcCount(former, "send", "HA_NOT_AVAILABLE");
  int quiet = 0;
  ASSERT_TRUE(PollUntil(
      [&] {
        EXPECT_TRUE((*producer)->Send(m).ok());
        const int64_t now = RpcCount(former, "send", "HA_NOT_AVAILABLE");
        quiet = now == last ? quiet + 1 : 0;
        last = now;
        return quiet >= 20;
      },
      absl::Seconds(10)))
      << "broker-a still refuses sends: " << last;
}

}  // namespace
}  // namespace apogee
