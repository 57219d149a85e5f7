#include "services/nameserver/registry/registry.h"

#include <set>
#include <tuple>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apogee::nameserver {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::BrokerRegistration Reg(const std::string& broker, int64_t id, const std::string& endpoint,
                           std::vector<std::string> topics = {"TopicA"}, int64_t version = 1) {
  v1::BrokerRegistration r;
  r.set_cluster_name("DefaultCluster");
  r.set_broker_name(broker);
  r.set_broker_id(id);
  r.set_client_endpoint(endpoint);
  r.set_data_version(version);
  r.set_full(true);
  for (const std::string& t : topics) {
    v1::TopicConfig* c = r.add_topics();
    c->set_name(t);
    c->set_read_queues(4);
    c->set_write_queues(4);
    c->set_permission(v1::TOPIC_PERMISSION_READ_WRITE);
  }
  return r;
}

class RegistryTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  Registry registry_{&clock_, absl::Seconds(120)};
};

TEST_F(RegistryTest, RouteListsQueuesAndEveryInstanceOfTheGroup) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081")).ok());
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 1, "10.0.0.2:8081")).ok());
  ASSERT_TRUE(registry_.Register(Reg("broker-b", 0, "broker-b-0.apogee:8081")).ok());

  auto route = registry_.GetRoute("TopicA");
  ASSERT_TRUE(route.ok()) << route.status();
  ASSERT_EQ(route->queues_size(), 2);
  EXPECT_EQ(route->queues(0).broker_name(), "broker-a");
  EXPECT_EQ(route->queues(0).write_queues(), 4);
  ASSERT_EQ(route->broker_groups_size(), 2);
  const v1::BrokerGroup& a = route->broker_groups(0);
  ASSERT_EQ(a.brokers_size(), 2);
  EXPECT_EQ(a.brokers(0).broker_id(), 0);
  EXPECT_EQ(a.brokers(0).client_endpoint(), "10.0.0.1:8081");
  EXPECT_EQ(a.brokers(1).broker_id(), 1);
  EXPECT_EQ(route->broker_groups(1).brokers(0).client_endpoint(), "broker-b-0.apogee:8081");

  EXPECT_EQ(registry_.Stats().live_brokers, 3);
  EXPECT_EQ(registry_.Stats().broker_groups, 2);
}

TEST_F(RegistryTest, UnknownTopicIsNotFoundAndBadNameInvalid) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081")).ok());
  EXPECT_EQ(registry_.GetRoute("Nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(registry_.GetRoute("Nope").status().message(), HasSubstr("\"Nope\""));
  EXPECT_EQ(registry_.GetRoute("a b").status().code(), absl::StatusCode::kInvalidArgument);
}

// RocketMQ 4's default topic: an unknown topic goes to the groups whose
// writer creates topics on first use, with the queues it would give them.
TEST_F(RegistryTest, UnknownTopicRoutesToGroupsWhoseMasterAutoCreates) {
  v1::BrokerRegistration a = Reg("broker-a", 0, "broker-a-0.apogee:8081");
  a.set_auto_create_queues(8);
  v1::BrokerRegistration a_slave = Reg("broker-a", 1, "broker-a-1.apogee:8081");
  a_slave.set_auto_create_queues(8);
  v1::BrokerRegistration b = Reg("broker-b", 0, "broker-b-0.apogee:8081");  // does not create
  // A group with only a slave that would create: no writer, so no route.
  v1::BrokerRegistration c_slave = Reg("broker-c", 1, "broker-c-1.apogee:8081");
  c_slave.set_auto_create_queues(4);
  for (const auto& r : {a, a_slave, b, c_slave}) ASSERT_TRUE(registry_.Register(r).ok());

  // Only when asked for (v2 QueryRoute): tools asking GetRoute get NOT_FOUND.
  EXPECT_EQ(registry_.GetRoute("BrandNew").status().code(), absl::StatusCode::kNotFound);
  auto route = registry_.GetRoute("BrandNew", /*or_auto_create=*/true);
  ASSERT_TRUE(route.ok()) << route.status();
  EXPECT_EQ(route->topic(), "BrandNew");
  ASSERT_EQ(route->queues_size(), 1);
  EXPECT_EQ(route->queues(0).broker_name(), "broker-a");
  EXPECT_EQ(route->queues(0).read_queues(), 8);
  EXPECT_EQ(route->queues(0).write_queues(), 8);
  EXPECT_EQ(route->queues(0).permission(), v1::TOPIC_PERMISSION_READ_WRITE);
  ASSERT_EQ(route->broker_groups_size(), 1);
  ASSERT_EQ(route->broker_groups(0).brokers_size(), 2);
  EXPECT_EQ(route->broker_groups(0).brokers(0).client_endpoint(), "broker-a-0.apogee:8081");
  // Not a topic: ListTopics and Stats still count only served topics.
  EXPECT_THAT(registry_.ListTopics(""), ElementsAre("TopicA"));

  // A served topic keeps its own route, on the groups that serve it.
  auto known = registry_.GetRoute("TopicA", /*or_auto_create=*/true);
  ASSERT_TRUE(known.ok());
  EXPECT_EQ(known->queues_size(), 3);
  EXPECT_EQ(known->queues(0).write_queues(), 4);

  // The auto-creating master turns it off: unknown topics are NOT_FOUND.
  a.set_auto_create_queues(0);
  a.set_data_version(2);
  ASSERT_TRUE(registry_.Register(a).ok());
  auto none = registry_.GetRoute("BrandNew", /*or_auto_create=*/true);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("no live master creates topics"));
}

TEST_F(RegistryTest, AutoCreateQueuesOutOfRangeIsRejected) {
  v1::BrokerRegistration r = Reg("broker-a", 0, "10.0.0.1:8081");
  r.set_auto_create_queues(kMaxQueuesPerTopic + 1);
  auto result = registry_.Register(r);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("registration.auto_create_queues is 1025"));
  EXPECT_THAT(result.status().message(), HasSubstr("0..1024"));
}

TEST_F(RegistryTest, BrokersExpireWithoutRefresh) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081")).ok());
  ASSERT_TRUE(registry_.Register(Reg("broker-b", 0, "10.0.0.2:8081")).ok());
  clock_.Advance(absl::Seconds(100));
  ASSERT_TRUE(registry_.Register(Reg("broker-b", 0, "10.0.0.2:8081")).ok());  // refresh b only
  EXPECT_EQ(registry_.ExpireStale(), 0);
  clock_.Advance(absl::Seconds(21));
  EXPECT_EQ(registry_.ExpireStale(), 1);  // a: 121s old; b: 21s old
  auto route = registry_.GetRoute("TopicA");
  ASSERT_TRUE(route.ok());
  ASSERT_EQ(route->queues_size(), 1);
  EXPECT_EQ(route->queues(0).broker_name(), "broker-b");
}

TEST_F(RegistryTest, PerRegistrationExpiryOverridesDefault) {
  v1::BrokerRegistration r = Reg("broker-a", 0, "10.0.0.1:8081");
  r.mutable_expiry()->set_seconds(10);
  ASSERT_TRUE(registry_.Register(r).ok());
  clock_.Advance(absl::Seconds(11));
  EXPECT_EQ(registry_.ExpireStale(), 1);
  EXPECT_EQ(registry_.Stats().live_brokers, 0);
}

TEST_F(RegistryTest, ReRegistrationReplacesTopicSet) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081", {"T1", "T2"}, 1)).ok());
  EXPECT_THAT(registry_.ListTopics(""), ElementsAre("T1", "T2"));
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081", {"T2", "T3"}, 2)).ok());
  EXPECT_THAT(registry_.ListTopics(""), ElementsAre("T2", "T3"));
  EXPECT_EQ(registry_.GetRoute("T1").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, CheapRefreshWithSameDataVersionKeepsTopics) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081", {"T1"}, 7)).ok());
  v1::BrokerRegistration refresh = Reg("broker-a", 0, "10.0.0.1:8081", {}, 7);
  refresh.set_full(false);
  clock_.Advance(absl::Seconds(100));
  auto result = registry_.Register(refresh);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->full_registration_required);
  EXPECT_EQ(result->data_version, 7);
  clock_.Advance(absl::Seconds(100));
  EXPECT_EQ(registry_.ExpireStale(), 0);  // the refresh counted
  EXPECT_THAT(registry_.ListTopics(""), ElementsAre("T1"));
}

TEST_F(RegistryTest, CheapRefreshWithUnknownVersionAsksForFullRegistration) {
  v1::BrokerRegistration refresh = Reg("broker-a", 0, "10.0.0.1:8081", {}, 3);
  refresh.set_full(false);
  auto unknown = registry_.Register(refresh);  // e.g. this NameServer restarted
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->full_registration_required);
  EXPECT_EQ(registry_.Stats().live_brokers, 0);

  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081", {"T1"}, 3)).ok());
  refresh.set_data_version(4);  // broker changed topics, NameServer missed it
  auto stale = registry_.Register(refresh);
  ASSERT_TRUE(stale.ok());
  EXPECT_TRUE(stale->full_registration_required);
  EXPECT_EQ(stale->data_version, 3);
}

TEST_F(RegistryTest, SecondLiveMasterIsRejectedAndTableUnchanged) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081", {"T1"})).ok());
  auto second = registry_.Register(Reg("broker-a", 0, "10.0.0.9:8081", {"T9"}));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("already has a live master"));
  EXPECT_THAT(second.status().message(), HasSubstr("10.0.0.1:8081"));
  EXPECT_THAT(registry_.ListTopics(""), ElementsAre("T1"));

  // Once the old master expires, a new one may take over.
  clock_.Advance(absl::Seconds(121));
  registry_.ExpireStale();
  EXPECT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.9:8081", {"T9"})).ok());
}

TEST_F(RegistryTest, GroupCannotMoveBetweenClusters) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081")).ok());
  v1::BrokerRegistration other = Reg("broker-a", 1, "10.0.0.2:8081");
  other.set_cluster_name("OtherCluster");
  EXPECT_THAT(registry_.Register(other).status().message(),
              HasSubstr("belongs to cluster \"DefaultCluster\""));
}

TEST_F(RegistryTest, SlaveServesRouteWhenMasterGone) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081", {"T1"})).ok());
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 1, "10.0.0.2:8081", {"T1"})).ok());
  ASSERT_TRUE(registry_.Unregister("DefaultCluster", "broker-a", 0).ok());
  auto route = registry_.GetRoute("T1");
  ASSERT_TRUE(route.ok());
  ASSERT_EQ(route->broker_groups(0).brokers_size(), 1);
  EXPECT_EQ(route->broker_groups(0).brokers(0).broker_id(), 1);
}

TEST_F(RegistryTest, UnregisterUnknownIsNotFound) {
  EXPECT_EQ(registry_.Unregister("DefaultCluster", "broker-x", 0).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, EndSessionDropsOnlyThatSessionsInstances) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081"), 11).ok());
  ASSERT_TRUE(registry_.Register(Reg("broker-b", 0, "10.0.0.2:8081"), 12).ok());
  ASSERT_TRUE(registry_.Register(Reg("broker-c", 0, "10.0.0.3:8081")).ok());
  EXPECT_EQ(registry_.EndSession(11), 1);
  EXPECT_EQ(registry_.EndSession(11), 0);
  EXPECT_EQ(registry_.Stats().live_brokers, 2);
  // A broker that re-registered on a new session is not dropped by the old one.
  ASSERT_TRUE(registry_.Register(Reg("broker-b", 0, "10.0.0.2:8081"), 13).ok());
  EXPECT_EQ(registry_.EndSession(12), 0);
  EXPECT_EQ(registry_.Stats().live_brokers, 2);
}

TEST_F(RegistryTest, ClusterInfoGroupsByCluster) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081")).ok());
  v1::BrokerRegistration other = Reg("broker-z", 0, "10.0.0.5:8081", {"Z"});
  other.set_cluster_name("Blue");
  ASSERT_TRUE(registry_.Register(other).ok());
  v1::GetClusterInfoResponse info = registry_.GetClusterInfo();
  ASSERT_EQ(info.clusters_size(), 2);
  EXPECT_EQ(info.clusters(0).name(), "Blue");
  EXPECT_EQ(info.clusters(1).name(), "DefaultCluster");
  EXPECT_THAT(registry_.ListTopics("Blue"), ElementsAre("Z"));
}

TEST(ValidateRegistrationTest, NamesFieldAndRule) {
  v1::BrokerRegistration r = Reg("broker-a", 0, "10.0.0.1:8081");
  r.set_broker_id(-1);
  EXPECT_THAT(ValidateRegistration(r).message(), HasSubstr("registration.broker_id is -1"));

  r = Reg("broker a", 0, "10.0.0.1:8081");
  EXPECT_THAT(ValidateRegistration(r).message(),
              HasSubstr("registration.broker_name \"broker a\""));

  r = Reg("broker-a", 0, "10.0.0.1");
  EXPECT_THAT(ValidateRegistration(r).message(), HasSubstr("registration.client_endpoint"));

  r = Reg("broker-a", 0, "10.0.0.1:8081", {"bad topic"});
  EXPECT_THAT(ValidateRegistration(r).message(), HasSubstr("registration.topics[0].name"));

  r = Reg("broker-a", 0, "10.0.0.1:8081", {"T", "T"});
  EXPECT_THAT(ValidateRegistration(r).message(), HasSubstr("repeats topic \"T\""));

  r = Reg("broker-a", 0, "10.0.0.1:8081");
  r.mutable_topics(0)->set_write_queues(5000);
  EXPECT_THAT(ValidateRegistration(r).message(),
              HasSubstr("write_queues of topic \"TopicA\" is 5000"));

  r = Reg("broker-a", 0, "10.0.0.1:8081");
  r.set_cluster_name("");
  EXPECT_THAT(ValidateRegistration(r).message(), HasSubstr("registration.cluster_name is empty"));
}

}  // namespace
}  // namespace apogee::nameserver

namespace apogee::nameserver {
namespace {

v1::BrokerRegistration RoleReg(int64_t id, const std::string& endpoint, int64_t epoch,
                               bool writer) {
  v1::BrokerRegistration r = Reg("broker-a", id, endpoint);
  r.set_epoch(epoch);
  r.set_writer(writer);
  return r;
}

// Route id, configured id and endpoint of each broker of the TopicA route.
std::vector<std::tuple<int64_t, int64_t, std::string>> Brokers(const Registry& registry) {
  std::vector<std::tuple<int64_t, int64_t, std::string>> out;
  auto route = registry.GetRoute("TopicA");
  if (!route.ok()) return out;
  for (const v1::BrokerInstance& b : route->broker_groups(0).brokers()) {
    out.emplace_back(b.broker_id(), b.configured_id(), b.client_endpoint());
  }
  return out;
}

using Row = std::tuple<int64_t, int64_t, std::string>;

TEST_F(RegistryTest, StaticMasterIsTheWriterAndRoutesCarryConfiguredIdAndEpoch) {
  ASSERT_TRUE(registry_.Register(RoleReg(1, "10.0.0.2:8081", 0, false)).ok());
  ASSERT_TRUE(registry_.Register(RoleReg(0, "10.0.0.1:8081", 0, true)).ok());
  EXPECT_THAT(Brokers(registry_),
              ElementsAre(Row{0, 0, "10.0.0.1:8081"}, Row{1, 1, "10.0.0.2:8081"}));
  auto info = registry_.GetClusterInfo();
  ASSERT_EQ(info.clusters(0).broker_groups(0).brokers_size(), 2);
  EXPECT_EQ(info.clusters(0).broker_groups(0).brokers(1).configured_id(), 1);
}

TEST_F(RegistryTest, LegacyIdZeroWithoutWriterFlagStillCountsAsWriter) {
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 0, "10.0.0.1:8081")).ok());
  ASSERT_TRUE(registry_.Register(Reg("broker-a", 1, "10.0.0.2:8081")).ok());
  EXPECT_THAT(Brokers(registry_),
              ElementsAre(Row{0, 0, "10.0.0.1:8081"}, Row{1, 1, "10.0.0.2:8081"}));
}

TEST_F(RegistryTest, PromotedSlaveBecomesIdZeroAndTheOldMasterTakesItsId) {
  ASSERT_TRUE(registry_.Register(RoleReg(0, "10.0.0.1:8081", 1, true)).ok());
  ASSERT_TRUE(registry_.Register(RoleReg(1, "10.0.0.2:8081", 1, false)).ok());
  // The master dies; slave 1 is promoted at epoch 2.
  ASSERT_TRUE(registry_.Unregister("DefaultCluster", "broker-a", 0).ok());
  ASSERT_TRUE(registry_.Register(RoleReg(1, "10.0.0.2:8081", 2, true)).ok());
  EXPECT_THAT(Brokers(registry_), ElementsAre(Row{0, 1, "10.0.0.2:8081"}));
  // The old master returns and follows.
  ASSERT_TRUE(registry_.Register(RoleReg(0, "10.0.0.1:8081", 2, false)).ok());
  EXPECT_THAT(Brokers(registry_),
              ElementsAre(Row{0, 1, "10.0.0.2:8081"}, Row{1, 0, "10.0.0.1:8081"}));
}

TEST_F(RegistryTest, OfTwoWritersTheLowerEpochIsListedAsReader) {
  ASSERT_TRUE(registry_.Register(RoleReg(1, "10.0.0.2:8081", 2, true)).ok());
  // A partitioned old master still claims to write at epoch 1.
  ASSERT_TRUE(registry_.Register(RoleReg(0, "10.0.0.1:8081", 1, true)).ok());
  EXPECT_THAT(Brokers(registry_),
              ElementsAre(Row{0, 1, "10.0.0.2:8081"}, Row{1, 0, "10.0.0.1:8081"}));
  EXPECT_EQ(AssignRouteIds({{0, 1, true}, {1, 2, true}}).fenced, std::set<int64_t>{0});
}

TEST_F(RegistryTest, DeposedMasterAloneIsNotTheWriter) {
  ASSERT_TRUE(registry_.Register(RoleReg(0, "10.0.0.1:8081", 3, false)).ok());
  ASSERT_TRUE(registry_.Register(RoleReg(2, "10.0.0.3:8081", 3, false)).ok());
  // No writer: nobody gets id 0, so official clients send nowhere in this
  // group, and consumers still see its queues.
  EXPECT_THAT(Brokers(registry_),
              ElementsAre(Row{2, 2, "10.0.0.3:8081"}, Row{3, 0, "10.0.0.1:8081"}));
}

TEST_F(RegistryTest, TopicsComeFromTheWriter) {
  v1::BrokerRegistration slave = RoleReg(1, "10.0.0.2:8081", 2, true);
  v1::BrokerRegistration old_master = RoleReg(0, "10.0.0.1:8081", 2, false);
  old_master.clear_topics();
  v1::TopicConfig* c = old_master.add_topics();
  c->set_name("OnlyOld");
  c->set_read_queues(1);
  c->set_write_queues(1);
  ASSERT_TRUE(registry_.Register(old_master).ok());
  ASSERT_TRUE(registry_.Register(slave).ok());
  EXPECT_TRUE(registry_.GetRoute("TopicA").ok());
  EXPECT_EQ(registry_.GetRoute("OnlyOld").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace apogee::nameserver
