// apogee-admin integration tests: the real binary run as a process against a
// real NameServer + store + broker; consumption with the v2 API in the test.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/common/clock/proto_time.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

// APOGEE_*_BIN name the binaries (compile definitions, see CMakeLists.txt).
extern char** environ;

namespace apogee {
namespace {

using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::apogee::testing::V2TestClient;
using ::google::protobuf::Value;
using ::testing::HasSubstr;

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The field `name` of a JSON object value (null Value when absent).
const Value& Field(const Value& v, const std::string& name) {
  static const Value* null = new Value;
  auto it = v.struct_value().fields().find(name);
  return it == v.struct_value().fields().end() ? *null : it->second;
}

class AdminCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started;
    client_ = std::make_unique<V2TestClient>(cluster_.broker_address(), "cli-test@1@0@it");
  }

  // Runs apogee-admin with `args` (plus --nameservers unless `env` sets
  // APOGEE_NAMESERVERS) and waits for it; the CLI's calls have deadlines.
  CliResult Run(std::vector<std::string> args, const std::string& env = "") {
    if (env.empty()) args.push_back(absl::StrCat("--nameservers=", cluster_.nameserver_address()));
    const std::string out_path = absl::StrCat(cluster_.dir(), "/cli-", runs_, ".out");
    const std::string err_path = absl::StrCat(cluster_.dir(), "/cli-", runs_, ".err");
    ++runs_;
    std::vector<std::string> argv_text = {APOGEE_ADMIN_BIN};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e) {
      if (!absl::StartsWith(*e, "APOGEE_NAMESERVERS=")) env_text.emplace_back(*e);
    }
    if (!env.empty()) env_text.push_back(absl::StrCat("APOGEE_NAMESERVERS=", env));
    std::vector<char*> envp;
    for (std::string& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = -1;
    CliResult result;
    const int spawned =
        posix_spawn(&pid, APOGEE_ADMIN_BIN, &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
      ADD_FAILURE() << "cannot start " << APOGEE_ADMIN_BIN;
      return result;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = ReadAll(out_path);
    result.err = ReadAll(err_path);
    return result;
  }

  // Runs with --json and parses stdout as one JSON document.
  Value RunJson(std::vector<std::string> args) {
    args.push_back("--json");
    CliResult r = Run(args);
    Value v;
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &v).ok()) << r.out;
    return v;
  }

  static void ExpectOneLineError(const CliResult& r, const std::string& fragment) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_THAT(r.err, HasSubstr(fragment));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }

  void CreateTopic(const std::string& name, int queues) {
    CliResult created = Run({"topic", "create", absl::StrCat("--name=", name),
                             absl::StrCat("--queues=", queues), "--broker=broker-a"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    EXPECT_THAT(created.out, HasSubstr(name));
    // The broker re-registers with the NameServer; the route follows.
    ASSERT_TRUE(PollUntil(
        [&] {
          CliResult route = Run({"topic", "route", absl::StrCat("--name=", name)});
          return route.exit_code == 0 && absl::StrContains(route.out, "broker-a");
        },
        absl::Seconds(15), absl::Milliseconds(100)));
  }

  // "message send" and the id it printed.
  std::string Send(const std::string& topic, const std::string& key, const std::string& body) {
    CliResult sent = Run({"message", "send", absl::StrCat("--topic=", topic),
                          absl::StrCat("--key=", key), "--tag=G", absl::StrCat("--body=", body)});
    EXPECT_EQ(sent.exit_code, 0) << sent.err;
    absl::string_view id = absl::StripAsciiWhitespace(sent.out);
    EXPECT_TRUE(absl::ConsumePrefix(&id, "message_id ")) << sent.out;
    return std::string(id);
  }

  static std::string Rfc3339(absl::Time t) {
    return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
  }

  int64_t Lag(const std::string& group, const std::string& topic) {
    Value v = RunJson(
        {"group", "progress", absl::StrCat("--group=", group), absl::StrCat("--topic=", topic)});
    return static_cast<int64_t>(Field(v, "lag").number_value());
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::unique_ptr<V2TestClient> client_;
  int runs_ = 0;
};

TEST_F(AdminCliTest, TopicCreateRouteSendGetAndFind) {
  CreateTopic("CliTopic", 2);
  Value route = RunJson({"topic", "route", "--name=CliTopic"});
  EXPECT_EQ(Field(route, "topic").string_value(), "CliTopic");
  ASSERT_EQ(Field(route, "queues").list_value().values_size(), 1);
  EXPECT_EQ(Field(Field(route, "queues").list_value().values(0), "broker_name").string_value(),
            "broker-a");

  const absl::Time before = absl::Now() - absl::Seconds(1);
  const std::string id = Send("CliTopic", "order-7", "hello from the cli");
  ASSERT_EQ(id.size(), 32u);
  EXPECT_NE(Send("CliTopic", "order-8", "second"), id) << "ids are unique";
  // Bad input is refused before anything is sent (the SDK's checks), as
  // input: exit 2. The stats below still count two messages.
  CliResult bad_tag = Run({"message", "send", "--topic=CliTopic", "--tag=a|b", "--body=x"});
  ExpectOneLineError(bad_tag, "tag");
  EXPECT_EQ(bad_tag.exit_code, 2);

  CliResult got = Run({"message", "get", absl::StrCat("--id=", id)});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_THAT(got.out, HasSubstr(id));
  EXPECT_THAT(got.out, HasSubstr("hello from the cli"));
  Value got_json = RunJson({"message", "get", absl::StrCat("--id=", id)});
  const Value& view = Field(got_json, "messages").list_value().values(0);
  EXPECT_EQ(Field(view, "message_id").string_value(), id);
  EXPECT_EQ(Field(view, "topic").string_value(), "CliTopic");
  EXPECT_EQ(Field(view, "tag").string_value(), "G");
  EXPECT_EQ(Field(Field(view, "broker"), "broker_name").string_value(), "broker-a");

  CliResult by_key = Run({"message", "find", "--topic=CliTopic", "--key=order-7"});
  ASSERT_EQ(by_key.exit_code, 0) << by_key.err;
  EXPECT_THAT(by_key.out, HasSubstr(id));
  Value by_time =
      RunJson({"message", "find", "--topic=CliTopic", absl::StrCat("--from=", Rfc3339(before)),
               absl::StrCat("--to=", Rfc3339(absl::Now() + absl::Seconds(1)))});
  EXPECT_EQ(Field(by_time, "messages").list_value().values_size(), 2);
  EXPECT_FALSE(Field(by_time, "truncated").bool_value());

  Value stats = RunJson({"topic", "stats", "--name=CliTopic"});
  EXPECT_EQ(Field(stats, "messages").number_value(), 2);
  const Value& broker = Field(stats, "brokers").list_value().values(0);
  ASSERT_EQ(Field(broker, "queues").list_value().values_size(), 2);
  for (const Value& q : Field(broker, "queues").list_value().values()) {
    EXPECT_TRUE(q.struct_value().fields().count("min_offset")) << "keys are stable for scripts";
    EXPECT_TRUE(q.struct_value().fields().count("max_offset"));
  }
  CliResult table = Run({"topic", "stats", "--name=CliTopic"});
  EXPECT_THAT(table.out, HasSubstr("MIN_OFFSET"));
  EXPECT_THAT(table.out, HasSubstr("MAX_OFFSET"));

  CliResult listed = Run({"topic", "list"});
  EXPECT_THAT(listed.out, HasSubstr("CliTopic"));
}

TEST_F(AdminCliTest, GroupProgressAndResetOffsetToTime) {
  CreateTopic("CliWork", 2);
  const absl::Time start = absl::Now() - absl::Seconds(1);
  for (int i = 0; i < 3; ++i) Send("CliWork", absl::StrCat("k", i), absl::StrCat("job ", i));
  EXPECT_EQ(Lag("workers", "CliWork"), 3);
  CliResult table = Run({"group", "progress", "--group=workers", "--topic=CliWork"});
  EXPECT_THAT(table.out, HasSubstr("LAG"));

  EXPECT_EQ(client_->ReceiveAtLeast("workers", "CliWork", 3, /*ack=*/true).size(), 3u);
  EXPECT_EQ(Lag("workers", "CliWork"), 0);

  CliResult reset = Run({"group", "reset-offset", "--group=workers", "--topic=CliWork",
                         absl::StrCat("--to-time=", Rfc3339(start))});
  ASSERT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_THAT(reset.out, HasSubstr("NEW_OFFSET"));
  EXPECT_EQ(Lag("workers", "CliWork"), 3);
  EXPECT_EQ(client_->ReceiveAtLeast("workers", "CliWork", 3, true).size(), 3u);
  EXPECT_EQ(Lag("workers", "CliWork"), 0);

  Value by_offset = RunJson({"group", "reset-offset", "--group=workers", "--topic=CliWork",
                             "--to-offset=0", "--queues=0"});
  const Value& changes = Field(Field(by_offset, "brokers").list_value().values(0), "changes");
  ASSERT_EQ(changes.list_value().values_size(), 1);
  EXPECT_EQ(Field(changes.list_value().values(0), "new_offset").string_value(), "0");
}

TEST_F(AdminCliTest, ClusterAndBrokerStatus) {
  CliResult clusters = Run({"cluster", "list"}, /*env=*/cluster_.nameserver_address());
  ASSERT_EQ(clusters.exit_code, 0) << clusters.err;
  EXPECT_THAT(clusters.out, HasSubstr("DefaultCluster"));
  EXPECT_THAT(clusters.out, HasSubstr(cluster_.broker_address()));
  Value status = RunJson({"broker", "status"});
  ASSERT_EQ(Field(status, "brokers").list_value().values_size(), 1);
  const Value& broker = Field(status, "brokers").list_value().values(0);
  EXPECT_EQ(Field(broker, "broker_name").string_value(), "broker-a");
  EXPECT_EQ(Field(broker, "endpoint").string_value(), cluster_.broker_address());
  EXPECT_TRUE(broker.struct_value().fields().count("store"));
  CliResult named = Run({"broker", "status", "--broker=broker-a"});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  Value config = RunJson({"broker", "config", "--broker=broker-a"});
  EXPECT_EQ(Field(Field(config, "config"), "broker_name").string_value(), "broker-a");
}

TEST_F(AdminCliTest, BrokerStatusShowsMasterAndSlaveAndPromoteNeedsAController) {
  auto slave = cluster_.AddSlave(0, 1);
  ASSERT_TRUE(slave.ok()) << slave.status();
  Value status;
  ASSERT_TRUE(PollUntil(
      [&] {
        status = RunJson({"broker", "status", "--broker=broker-a"});
        return Field(status, "brokers").list_value().values_size() == 2;
      },
      absl::Seconds(10)));
  std::map<std::string, std::string> roles;  // endpoint -> role
  for (const Value& b : Field(status, "brokers").list_value().values()) {
    roles[Field(b, "endpoint").string_value()] = Field(b, "role").string_value();
  }
  EXPECT_EQ(roles[cluster_.broker_address()], "master");
  EXPECT_EQ(roles[cluster_.broker(*slave)->address()], "slave");
  CliResult table = Run({"broker", "status", "--broker=broker-a"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("ROLE"));
  EXPECT_THAT(table.out, HasSubstr("async"));
  EXPECT_THAT(table.out, HasSubstr("follows 127.0.0.1:10912"));
  ExpectOneLineError(Run({"broker", "promote", "--broker=broker-a", "--id=1"}),
                     "cannot promote broker broker-a id 1: PromoteBroker on broker broker-a");
  ExpectOneLineError(Run({"broker", "promote", "--broker=broker-a", "--id=1"}),
                     "no controller: roles are static (--controller not set)");
}

TEST_F(AdminCliTest, TransactionListCommitAndRollback) {
  CreateTopic("TxnCli", 2);
  // Two half messages (the check-back waits 6 s by default: none here).
  auto stub = apache::rocketmq::v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  std::map<std::string, std::string> ids;  // message id -> transaction id
  for (const char* id : {"TXCLI-1", "TXCLI-2"}) {
    apache::rocketmq::v2::SendMessageRequest request;
    apache::rocketmq::v2::Message* m = request.add_messages();
    m->mutable_topic()->set_name("TxnCli");
    m->set_body(id);
    m->mutable_system_properties()->set_message_id(id);
    m->mutable_system_properties()->set_message_type(apache::rocketmq::v2::TRANSACTION);
    grpc::ClientContext context;
    context.AddMetadata("x-mq-client-id", "cli-txn@1@0@it");
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    apache::rocketmq::v2::SendMessageResponse response;
    ASSERT_TRUE(stub->SendMessage(&context, request, &response).ok());
    ASSERT_EQ(response.status().code(), apache::rocketmq::v2::OK) << response.status().message();
    ids[id] = response.entries(0).transaction_id();
  }
  Value listed = RunJson({"transaction", "list", "--topic=TxnCli"});
  const auto& rows = Field(listed, "transactions").list_value().values();
  ASSERT_EQ(rows.size(), 2);
  for (const Value& row : rows) {
    const std::string message_id = Field(row, "message_id").string_value();
    EXPECT_EQ(Field(row, "transaction_id").string_value(), ids[message_id]);
    EXPECT_EQ(Field(row, "topic").string_value(), "TxnCli");
  }
  CliResult committed = Run({"transaction", "commit", "--id=" + ids["TXCLI-1"]});
  ASSERT_EQ(committed.exit_code, 0) << committed.err;
  EXPECT_THAT(committed.out, HasSubstr("committed"));
  EXPECT_THAT(Run({"transaction", "commit", "--id=" + ids["TXCLI-1"]}).out, HasSubstr("(already)"));
  EXPECT_EQ(Run({"transaction", "rollback", "--id=" + ids["TXCLI-2"]}).exit_code, 0);
  ExpectOneLineError(Run({"transaction", "commit", "--id=" + ids["TXCLI-2"]}),
                     "already rolled back");
  ExpectOneLineError(Run({"transaction", "commit", "--id=nocolon"}), "not a transaction id");
  EXPECT_TRUE(
      Field(RunJson({"transaction", "list"}), "transactions").list_value().values().empty());
  std::vector<apache::rocketmq::v2::Message> got =
      client_->ReceiveAtLeast("txn-cli-group", "TxnCli", 1, true, absl::Seconds(15));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body(), "TXCLI-1");
}

// `timer list`: the pending delayed messages of the store, earliest due
// first, their count, pages and a topic filter; a fired one is gone.
TEST_F(AdminCliTest, TimerListShowsPendingDelayedMessagesInDueOrder) {
  CreateTopic("CliDelay", 2);
  CreateTopic("CliDelayOther", 1);
  auto stub = apache::rocketmq::v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  const absl::Time now = absl::Now();
  auto send_delayed = [&](const std::string& topic, const std::string& id, absl::Duration delay) {
    apache::rocketmq::v2::SendMessageRequest request;
    apache::rocketmq::v2::Message* m = request.add_messages();
    m->mutable_topic()->set_name(topic);
    m->set_body("later");
    m->mutable_system_properties()->set_message_id(id);
    m->mutable_system_properties()->set_tag("T");
    *m->mutable_system_properties()->mutable_delivery_timestamp() = ToProtoTimestamp(now + delay);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    context.AddMetadata("x-mq-client-id", "cli-test@1@0@timer");
    apache::rocketmq::v2::SendMessageResponse response;
    ASSERT_TRUE(stub->SendMessage(&context, request, &response).ok());
    ASSERT_EQ(response.status().code(), apache::rocketmq::v2::OK) << response.status().message();
  };
  send_delayed("CliDelay", "timer-30m", absl::Minutes(30));
  send_delayed("CliDelay", "timer-10m", absl::Minutes(10));
  send_delayed("CliDelayOther", "timer-5m", absl::Minutes(5));
  send_delayed("CliDelay", "timer-20m", absl::Minutes(20));
  send_delayed("CliDelay", "timer-now", absl::Milliseconds(300));  // fires during the test

  CliResult listed;
  ASSERT_TRUE(PollUntil(
      [&] {
        listed = Run({"timer", "list"});
        return listed.exit_code == 0 && absl::StrContains(listed.out, "4 pending timer(s)");
      },
      absl::Seconds(15), absl::Milliseconds(100)))
      << listed.out << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("DUE"));
  EXPECT_FALSE(absl::StrContains(listed.out, "timer-now")) << "fired, no longer pending";
  const size_t at5 = listed.out.find("timer-5m"), at10 = listed.out.find("timer-10m"),
               at20 = listed.out.find("timer-20m"), at30 = listed.out.find("timer-30m");
  ASSERT_NE(at30, std::string::npos) << listed.out;
  EXPECT_TRUE(at5 < at10 && at10 < at20 && at20 < at30) << "earliest due first:\n" << listed.out;

  // A topic, in pages of 2.
  Value first = RunJson({"timer", "list", "--topic=CliDelay", "--limit=2"});
  const Value& page = Field(first, "brokers").list_value().values(0);
  ASSERT_EQ(Field(page, "timers").list_value().values_size(), 2);
  EXPECT_EQ(Field(Field(page, "timers").list_value().values(0), "message_id").string_value(),
            "timer-10m");
  EXPECT_EQ(Field(Field(page, "timers").list_value().values(0), "topic").string_value(),
            "CliDelay");
  ASSERT_TRUE(Field(page, "more").bool_value());
  Value second = RunJson({"timer", "list", "--topic=CliDelay", "--limit=2",
                          absl::StrCat("--after=", Field(page, "next").string_value())});
  const Value& rest = Field(second, "brokers").list_value().values(0);
  ASSERT_EQ(Field(rest, "timers").list_value().values_size(), 1);
  EXPECT_EQ(Field(Field(rest, "timers").list_value().values(0), "message_id").string_value(),
            "timer-30m");

  ExpectOneLineError(Run({"timer", "list", "--limit=0"}), "--limit");
  ExpectOneLineError(Run({"timer", "list", "--after=garbage"}), "after \"garbage\"");
}

TEST_F(AdminCliTest, ErrorsAreOneLineWithNonZeroExit) {
  ExpectOneLineError(Run({"topic", "stats", "--name=Nope"}), "Nope");
  ExpectOneLineError(Run({"topic", "stats"}), "needs --name");
  ExpectOneLineError(Run({"topic", "explode"}), "unknown command \"topic explode\"");
  ExpectOneLineError(Run({"broker", "status", "--broker=broker-z"}), "broker-z");
  // An unknown topic fails; the send does not auto-create it.
  CliResult unknown = Run({"message", "send", "--topic=NoSuchTopic", "--body=x"});
  ExpectOneLineError(unknown, "NoSuchTopic");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(Run({"topic", "route", "--name=NoSuchTopic"}).exit_code, 0);
  ExpectOneLineError(Run({"group", "reset-offset", "--group=g", "--topic=T", "--to-time=noon"}),
                     "--to-time=noon is not an RFC 3339 time");
  CliResult unreachable = Run({"cluster", "list"}, /*env=*/"127.0.0.1:1");
  ExpectOneLineError(unreachable, "127.0.0.1:1");
  CliResult bad_list = Run({"cluster", "list"}, /*env=*/"not-an-address");
  ExpectOneLineError(bad_list, "APOGEE_NAMESERVERS");
  EXPECT_EQ(bad_list.exit_code, 2);
}

// --admin_listen: the admin API leaves the client port (UNIMPLEMENTED there)
// and apogee-admin reaches it with --admin_endpoints; clients still send.
TEST_F(AdminCliTest, AdminListenMovesTheAdminApiOffTheClientPort) {
  absl::Status restarted = cluster_.StartBroker({"--admin_listen=127.0.0.1:0"});
  ASSERT_TRUE(restarted.ok()) << restarted;
  const std::string client = cluster_.broker_address();
  const std::string admin = cluster_.broker()->admin_address();
  ASSERT_FALSE(admin.empty());
  ASSERT_NE(admin, client);
  // Polled: the NameServer learns the new endpoint at the first heartbeat.
  CliResult refused;
  ASSERT_TRUE(PollUntil(
      [&] {
        refused = Run({"broker", "status"});
        return absl::StrContains(refused.err, client);
      },
      absl::Seconds(20), absl::Milliseconds(200)))
      << refused.err;
  ExpectOneLineError(refused, "UNIMPLEMENTED");
  const std::string mapping = absl::StrCat("--admin_endpoints=", client, "=", admin);
  CliResult status = Run({"broker", "status", mapping});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("broker-a"));
  CliResult created =
      Run({"topic", "create", "--name=AdminPortTopic", "--queues=2", "--broker=broker-a", mapping});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  V2TestClient producer(client, "admin-listen@1@0@it");
  absl::Status sent = producer.Send("AdminPortTopic", "m-1", "body");
  EXPECT_TRUE(sent.ok()) << sent;
  ExpectOneLineError(Run({"broker", "status", "--admin_endpoints=nohost"}),
                     "--admin_endpoints entry \"nohost\"");
}

}  // namespace
}  // namespace apogee
