#include "tools/admin/cli.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/common/clock/proto_time.h"
#include "tools/admin/commands.h"

namespace apogee::admin_cli {
namespace {

namespace av1 = ::apogee::admin::v1;
namespace nsv1 = ::apogee::nameserver::v1;
using ::testing::HasSubstr;

absl::StatusOr<Invocation> P(std::vector<std::string> args,
                             std::optional<std::string> env = std::nullopt) {
  return Parse(args, env);
}

TEST(ParseTest, CommandFlagsAndGlobals) {
  auto inv = P({"topic", "create", "--name=T", "--queues=4", "--broker=broker-a", "--json",
                "--nameservers=127.0.0.1:1;127.0.0.1:2"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "topic create");
  EXPECT_EQ(inv->flags.at("name"), "T");
  EXPECT_TRUE(inv->json);
  EXPECT_EQ(inv->nameservers, (std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"}));
  EXPECT_EQ(*IntFlag(*inv, "queues", 1, 1024), 4);
}

TEST(ParseTest, AdminEndpointsMapClientEndpointsToAdminAddresses) {
  auto inv = P({"broker", "status", "--admin_endpoints=10.0.0.1:8081=10.1.0.1:8090; b:1=c:2"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->admin_endpoints, (std::map<std::string, std::string>{
                                      {"10.0.0.1:8081", "10.1.0.1:8090"}, {"b:1", "c:2"}}));
  auto bad = P({"broker", "status", "--admin_endpoints=10.0.0.1:8081"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("--admin_endpoints entry \"10.0.0.1:8081\""));
}

TEST(ParseTest, NameserversFromEnvironmentThenDefault) {
  auto from_env = P({"cluster", "list"}, "10.0.0.1:9876");
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->nameservers, std::vector<std::string>{"10.0.0.1:9876"});
  auto flag_wins = P({"cluster", "list", "--nameservers=10.0.0.2:1"}, "10.0.0.1:9876");
  EXPECT_EQ(flag_wins->nameservers, std::vector<std::string>{"10.0.0.2:1"});
  EXPECT_EQ(P({"cluster", "list"})->nameservers, std::vector<std::string>{"127.0.0.1:9876"});
  auto bad = P({"cluster", "list"}, "nohostport");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("$APOGEE_NAMESERVERS"));
}

TEST(ParseTest, ErrorsNameTheInputAndTheRule) {
  auto unknown = P({"topic", "explode"});
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown command \"topic explode\""));
  EXPECT_THAT(unknown.status().message(), HasSubstr("topic create"));
  auto missing = P({"topic", "stats"});
  EXPECT_THAT(missing.status().message(), HasSubstr("\"topic stats\" needs --name=VALUE"));
  auto extra = P({"topic", "stats", "--name=T", "--color=red"});
  EXPECT_THAT(extra.status().message(), HasSubstr("does not take --color (it takes: --name)"));
  auto no_value = P({"topic", "stats", "--name"});
  EXPECT_THAT(no_value.status().message(), HasSubstr("--name has no value"));
  auto both = P({"group", "reset-offset", "--group=G", "--topic=T", "--to-offset=1",
                 "--to-time=2026-01-01T00:00:00Z"});
  EXPECT_THAT(both.status().message(), HasSubstr("exactly one of --to-time"));
  auto neither = P({"message", "find", "--topic=T"});
  EXPECT_THAT(neither.status().message(), HasSubstr("--key=K or --from"));
  EXPECT_FALSE(P({}).ok());
}

TEST(ParseTest, TypedFlags) {
  auto inv = P({"group", "reset-offset", "--group=G", "--topic=T", "--to-time=2026-01-02T03:04:05Z",
                "--queues=0,3"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(*TimeFlag(*inv, "to-time"), absl::FromUnixSeconds(1767323045));
  EXPECT_EQ(*QueueListFlag(*inv, "queues"), (std::vector<int32_t>{0, 3}));
  inv->flags["to-time"] = "yesterday";
  EXPECT_THAT(TimeFlag(*inv, "to-time").status().message(),
              HasSubstr("--to-time=yesterday is not an RFC 3339 time"));
  inv->flags["queues"] = "0,x";
  EXPECT_THAT(QueueListFlag(*inv, "queues").status().message(), HasSubstr("entry \"x\""));
  inv->flags["queues"] = "0";
  inv->flags["max"] = "5000";
  EXPECT_THAT(IntFlag(*inv, "max", 1, 1000).status().message(),
              HasSubstr("--max=5000 is not an integer in 1..1000"));
}

TEST(ParseTest, ChoiceFlagListsTheChoices) {
  auto inv = P({"group", "create", "--group=G", "--mode=sideways"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  const std::vector<std::pair<std::string, int>> modes = {{"clustering", 1}, {"broadcasting", 2}};
  EXPECT_THAT(ChoiceFlag(*inv, "mode", modes).status().message(),
              HasSubstr("--mode=sideways is unknown (allowed: clustering, broadcasting)"));
  inv->flags["mode"] = "broadcasting";
  EXPECT_EQ(*ChoiceFlag(*inv, "mode", modes), 2);
}

TEST(OutputTest, TableAlignsColumns) {
  Table t{{"A", "LONGER"}, {{"xyz", "1"}, {"q", "22"}}};
  EXPECT_EQ(t.Render(), "A    LONGER\nxyz  1\nq    22\n");
}

TEST(OutputTest, TopicStatsTableAndJson) {
  av1::GetTopicStatsResponse stats;
  stats.set_name("T");
  av1::QueueStats* q = stats.add_queues();
  q->set_queue_id(0);
  q->set_min_offset(0);
  q->set_max_offset(3);
  *q->mutable_last_store_time() = ToProtoTimestamp(absl::FromUnixSeconds(1767323045));
  stats.set_messages(3);
  BrokerRef b{"DefaultCluster", "broker-a", 0, "127.0.0.1:1"};
  Output out = TopicStatsOutput("T", {{b, stats}});
  const std::string text = out.Render(false);
  EXPECT_THAT(text, HasSubstr("MIN_OFFSET"));
  EXPECT_THAT(text, HasSubstr("broker-a  0      0           3           3         "
                              "2026-01-02T03:04:05.000Z"));
  const std::string json = out.Render(true);
  google::protobuf::Value parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  const auto& broker0 = parsed.struct_value().fields().at("brokers").list_value().values(0);
  const auto& queue0 = broker0.struct_value().fields().at("queues").list_value().values(0);
  // Zero values are present, so scripts can rely on the keys.
  EXPECT_EQ(queue0.struct_value().fields().at("min_offset").string_value(), "0");
  EXPECT_EQ(queue0.struct_value().fields().at("max_offset").string_value(), "3");
  EXPECT_EQ(json.find('\n'), json.size() - 1) << "one JSON document, one line";
}

TEST(OutputTest, GroupProgressShowsMemberOrDash) {
  av1::GetGroupProgressResponse p;
  p.set_group("G");
  av1::QueueProgress* q = p.add_queues();
  q->set_topic("T");
  q->set_committed_offset(1);
  q->set_max_offset(4);
  q->set_lag(3);
  p.set_lag(3);
  Output out = GroupProgressOutput("G", {{BrokerRef{"c", "broker-a", 0, "e"}, p}});
  const std::string text = out.Render(false);
  EXPECT_THAT(text, HasSubstr("group G: lag 3"));
  EXPECT_THAT(text, HasSubstr("broker-a  T      0      -       1          4           3"));
}

TEST(OutputTest, BrokerStatusShowsRolesReplicationAndReplicas) {
  av1::GetBrokerStatusResponse master;
  master.set_broker_name("broker-a");
  master.set_broker_id(0);
  master.set_role("master");
  master.set_epoch(2);
  master.set_replication_mode("sync");
  master.set_min_insync_replicas(1);
  master.set_controller("static");
  av1::ReplicaStatus* r = master.add_replicas();
  r->set_replica_id("broker-a/1");
  r->set_acked_offset(4096);
  r->set_lag_bytes(0);
  r->set_in_sync(true);
  av1::GetBrokerStatusResponse slave;
  slave.set_broker_name("broker-a");
  slave.set_broker_id(1);
  slave.set_role("slave");
  slave.set_epoch(2);
  slave.set_master_address("10.0.0.1:10912");
  slave.set_lag_bytes(512);
  ToProtoDuration(absl::Milliseconds(1500), slave.mutable_lag_time());
  av1::GetBrokerStatusResponse old;  // a broker without replication fields
  old.set_broker_name("broker-b");
  Output out = BrokerStatusOutput({master, slave, old});
  const std::string text = out.Render(false);
  EXPECT_THAT(text, HasSubstr("ROLE"));
  EXPECT_THAT(text, HasSubstr("master  2      sync min_insync=1 in_sync=1/1"));
  EXPECT_THAT(text, HasSubstr("slave   2      follows 10.0.0.1:10912 disconnected lag=512B/1.5s"));
  EXPECT_THAT(text, HasSubstr("-       0      -"));
  EXPECT_THAT(text, HasSubstr("broker-a  0   broker-a/1  4096          0          0    yes"));
  google::protobuf::Value parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out.Render(true), &parsed).ok());
  const auto& b1 = parsed.struct_value().fields().at("brokers").list_value().values(1);
  EXPECT_EQ(b1.struct_value().fields().at("role").string_value(), "slave");
  EXPECT_EQ(b1.struct_value().fields().at("master_address").string_value(), "10.0.0.1:10912");
}

TEST(ParseTest, BrokerPromoteNeedsBrokerAndId) {
  EXPECT_THAT(P({"broker", "promote", "--broker=broker-a"}).status().message(), HasSubstr("--id"));
  auto inv = P({"broker", "promote", "--broker=broker-a", "--id=1"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "broker promote");
  EXPECT_EQ(*IntFlag(*inv, "id", 0, 1 << 20), 1);
}

TEST(BrokersTest, MastersComeFromTheRouteAndClusterInfo) {
  nsv1::GetRouteResponse route;
  route.add_queues()->set_broker_name("broker-a");
  nsv1::BrokerGroup* g = route.add_broker_groups();
  g->set_broker_name("broker-a");
  g->add_brokers()->set_broker_id(0);
  g->mutable_brokers(0)->set_client_endpoint("m:1");
  g->add_brokers()->set_broker_id(1);
  nsv1::BrokerGroup* other = route.add_broker_groups();  // serves no queue of the topic
  other->set_broker_name("broker-b");
  other->add_brokers()->set_broker_id(0);
  auto masters = MastersOf(route, "");
  ASSERT_EQ(masters.size(), 1u);
  EXPECT_EQ(masters[0].endpoint, "m:1");

  nsv1::GetClusterInfoResponse info;
  nsv1::Cluster* c = info.add_clusters();
  *c->add_broker_groups() = *g;
  EXPECT_EQ(BrokersOf(info, true, "").size(), 1u);
  EXPECT_EQ(BrokersOf(info, false, "").size(), 2u);
  EXPECT_TRUE(BrokersOf(info, false, "broker-z").empty());
}

TEST(OneLineTest, NewlinesBecomeSpaces) { EXPECT_EQ(OneLine("a\nb\r\nc"), "a b c"); }

}  // namespace
}  // namespace apogee::admin_cli
