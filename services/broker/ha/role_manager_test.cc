#include "services/broker/ha/role_manager.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker::ha {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
namespace sv1 = ::apogee::store::v1;
using ::testing::HasSubstr;

TEST(HaOptionsTest, ParsesModesAndNamesBadFlags) {
  EXPECT_EQ(*ParseReplicationMode("--replication", "async"), sv1::REPLICATION_ASYNC);
  EXPECT_EQ(*ParseReplicationMode("--replication", "sync"), sv1::REPLICATION_SYNC);
  EXPECT_THAT(ParseReplicationMode("--replication", "SYNC").status().message(),
              HasSubstr("--replication=SYNC is not a replication mode (allowed: async, sync)"));

  HaOptions options;
  EXPECT_TRUE(ValidateHaOptions(options).ok());
  options.min_insync_replicas = 0;
  EXPECT_THAT(ValidateHaOptions(options).message(),
              HasSubstr("--min_insync_replicas=0 is out of range (allowed: 1..16)"));
  options = HaOptions();
  options.replication_timeout = absl::Milliseconds(1);
  EXPECT_THAT(ValidateHaOptions(options).message(), HasSubstr("--replication_timeout=1ms"));
  options = HaOptions();
  options.master = "nohost";
  EXPECT_THAT(ValidateHaOptions(options).message(), HasSubstr("--master"));
  options = HaOptions();
  options.min_insync_replicas = 2;
  EXPECT_EQ(DescribeSyncPolicy(options), "min_insync_replicas=2 replication_timeout=3s");
}

nsv1::GetClusterInfoResponse Info(std::vector<std::tuple<int64_t, int64_t, std::string>> brokers) {
  nsv1::GetClusterInfoResponse info;
  nsv1::Cluster* c = info.add_clusters();
  c->set_name("DefaultCluster");
  nsv1::BrokerGroup* other = c->add_broker_groups();
  other->set_broker_name("broker-b");
  nsv1::BrokerInstance* b_master = other->add_brokers();
  b_master->set_broker_id(0);
  b_master->set_ha_endpoint("b:10912");
  nsv1::BrokerGroup* g = c->add_broker_groups();
  g->set_broker_name("broker-a");
  for (const auto& [route_id, configured_id, ha] : brokers) {
    nsv1::BrokerInstance* b = g->add_brokers();
    b->set_broker_id(route_id);
    b->set_configured_id(configured_id);
    b->set_ha_endpoint(ha);
    b->set_epoch(route_id == 0 ? 4 : 0);
  }
  return info;
}

TEST(FindWriterTest, FindsTheGroupsRouteIdZero) {
  auto writer =
      FindWriter(Info({{0, 2, "m:10912"}, {1, 1, "s:10912"}}), "DefaultCluster", "broker-a", 1);
  ASSERT_TRUE(writer.has_value());
  EXPECT_EQ(writer->ha_endpoint, "m:10912");
  EXPECT_EQ(writer->configured_id, 2);
  EXPECT_EQ(writer->epoch, 4);
  // No writer yet, another cluster, or only itself: keep looking.
  EXPECT_FALSE(FindWriter(Info({{1, 1, "s:10912"}}), "DefaultCluster", "broker-a", 1));
  EXPECT_FALSE(FindWriter(Info({{0, 0, "m:10912"}}), "Other", "broker-a", 1));
  EXPECT_FALSE(FindWriter(Info({{0, 1, "s:10912"}}), "DefaultCluster", "broker-a", 1));
  EXPECT_FALSE(FindWriter(Info({{0, 0, ""}}), "DefaultCluster", "broker-a", 1));
}

BrokerIdentity Self(int64_t id) {
  BrokerIdentity self;
  self.cluster_name = "DefaultCluster";
  self.broker_name = "broker-a";
  self.broker_id = id;
  self.client_endpoint = "127.0.0.1:8081";
  return self;
}

TEST(RoleManagerTest, RefusesWritesUntilTheStoreAcceptsTheMasterRole) {
  // No store listens there: the role cannot be taken, writes stay refused.
  StoreClient store("unix:/nonexistent/apogee-role-test.sock", absl::Milliseconds(200));
  RoleManager roles(Self(0), HaOptions(), &store, {});
  std::vector<RoleState> published;
  roles.SetListener([&published](const RoleState& s) { published.push_back(s); });
  EXPECT_EQ(roles.BecomeMaster(0).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(roles.AcceptsWrites());
  EXPECT_TRUE(published.empty());
  absl::Status refused = roles.CheckWritable();
  EXPECT_EQ(ToV2Code(refused), apache::rocketmq::v2::HA_NOT_AVAILABLE);
  EXPECT_THAT(refused.message(),
              HasSubstr("broker \"broker-a\" id 0 at 127.0.0.1:8081 is a slave"));
}

TEST(RoleManagerTest, FollowRefusesWritesAndPublishesEvenWhenTheStoreIsDown) {
  StoreClient store("unix:/nonexistent/apogee-role-test.sock", absl::Milliseconds(200));
  RoleManager roles(Self(1), HaOptions(), &store, {});
  std::vector<RoleState> published;
  roles.SetListener([&published](const RoleState& s) { published.push_back(s); });
  EXPECT_FALSE(roles.Follow("10.0.0.1:10912", 3).ok());
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].role, Role::kSlave);
  EXPECT_EQ(published[0].epoch, 3);
  EXPECT_FALSE(published[0].accepts_writes);
  EXPECT_THAT(roles.CheckWritable().message(),
              HasSubstr("is a slave (epoch 3) and does not accept writes: send to its group's "
                        "master (route broker id 0; master store at 10.0.0.1:10912)"));
}

TEST(RoleManagerTest, PromoteWithoutControllerIsAPreconditionFailure) {
  StoreClient store("unix:/nonexistent/apogee-role-test.sock", absl::Milliseconds(200));
  RoleManager roles(Self(1), HaOptions(), &store, {});
  auto promoted = roles.Promote(1);
  EXPECT_EQ(promoted.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(promoted.status().message(),
              HasSubstr("no controller: roles are static (--controller not set)"));
  roles.SetPromoteHandler([](int64_t id) -> absl::StatusOr<int64_t> { return id + 10; },
                          "etcd:127.0.0.1:2379");
  EXPECT_EQ(*roles.Promote(1), 11);
}

}  // namespace
}  // namespace apogee::broker::ha
