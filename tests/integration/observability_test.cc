// The Grafana dashboard (deploy/grafana/) and the Prometheus rules
// (deploy/prometheus/) name only metrics the services really export: a
// cluster of real processes (NameServer, a master and a slave broker, each
// with its store) carries traffic, a retry and a dead letter, and every
// apogee_* name in those files must appear in some process's /metrics.
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

namespace apogee {
namespace {

using ::apogee::testing::LocalCluster;
using ::apogee::testing::V2TestClient;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Metric names in a Prometheus text exposition: families (# TYPE) and the
// names of samples (histograms' _bucket/_sum/_count included).
void AddExported(const std::string& exposition, std::set<std::string>* names) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      names->insert(std::string(line.substr(0, line.find(' '))));
    } else if (!line.empty() && line[0] != '#') {
      names->insert(std::string(line.substr(0, line.find_first_of("{ "))));
    }
  }
}

// apogee_* names a file mentions. (No std::regex: GCC 12 warns inside it
// under -fsanitize, and the ASan build uses -Werror.)
std::set<std::string> Referenced(absl::string_view text) {
  auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  std::set<std::string> names;
  for (size_t at = text.find("apogee_"); at != absl::string_view::npos;
       at = text.find("apogee_", at + 1)) {
    if (at > 0 && name_char(text[at - 1])) continue;  // inside a longer word
    size_t end = at + 7;
    while (end < text.size() && name_char(text[end])) ++end;
    if (end > at + 7) names.insert(std::string(text.substr(at, end - at)));
    at = end - 1;
  }
  return names;
}

// The values of every `"expr": "..."` in a dashboard JSON.
std::vector<std::string> DashboardQueries(absl::string_view json) {
  constexpr absl::string_view kKey = "\"expr\": \"";
  std::vector<std::string> queries;
  for (size_t at = json.find(kKey); at != absl::string_view::npos; at = json.find(kKey, at)) {
    at += kKey.size();
    const size_t end = json.find('"', at);
    if (end == absl::string_view::npos) break;
    queries.emplace_back(json.substr(at, end - at));
    at = end + 1;
  }
  return queries;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.enable_replication();
    cluster_.enable_metrics();
    absl::Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(cluster_.CreateTopic(kTopic, 2).ok());
    auto slave = cluster_.AddSlave(0, 1);
    ASSERT_TRUE(slave.ok()) << slave.status();
    slave_ = *slave;
  }

  // Everything every process exports now.
  std::set<std::string> Exported() {
    std::set<std::string> names;
    for (testing::ServiceProcess* p : {cluster_.nameserver(), cluster_.store(0), cluster_.broker(0),
                                       cluster_.store(slave_), cluster_.broker(slave_)}) {
      auto text = testing::HttpGet(p->metrics_address(), "/metrics");
      if (text.ok()) AddExported(*text, &names);
    }
    return names;
  }

  static constexpr char kTopic[] = "ObservedTopic";
  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  int slave_ = -1;
};

TEST_F(ObservabilityTest, DashboardAndAlertRulesNameExportedMetrics) {
  const std::string dashboard =
      ReadFile(std::string(APOGEE_SOURCE_DIR) + "/deploy/grafana/apogee-dashboard.json");
  const std::string rules =
      ReadFile(std::string(APOGEE_SOURCE_DIR) + "/deploy/prometheus/apogee-rules.yaml");
  ASSERT_FALSE(dashboard.empty());
  ASSERT_FALSE(rules.empty());

  // Every dashboard query names at least one of our metrics.
  const std::vector<std::string> queries = DashboardQueries(dashboard);
  for (const std::string& query : queries) {
    EXPECT_FALSE(Referenced(query).empty()) << "query names no apogee_ metric: " << query;
  }
  EXPECT_GE(queries.size(), 20u);

  // Traffic: sends, receives with acks (lag, out), and one message left
  // unacked until it is dead-lettered (the cluster's test brokers allow 3
  // deliveries with a 1 s invisible time), so retry and DLQ series exist.
  V2TestClient client(cluster_.broker_address(), "observer");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client.Send(kTopic, absl::StrCat("m", i), "body").ok());
  }
  EXPECT_EQ(client.ReceiveAtLeast("Readers", kTopic, 5, /*ack=*/true).size(), 5u);
  ASSERT_TRUE(client.Send(kTopic, "poison", "body").ok());
  // A route query through the NameServer.
  auto nameserver = nameserver::v1::NameServer::NewStub(
      grpc::CreateChannel(cluster_.nameserver_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  nameserver::v1::GetRouteRequest request;
  request.set_topic(kTopic);
  nameserver::v1::GetRouteResponse route;
  ASSERT_TRUE(nameserver->GetRoute(&context, request, &route).ok());

  std::set<std::string> wanted = Referenced(dashboard);
  for (const std::string& name : Referenced(rules)) wanted.insert(name);
  std::vector<std::string> missing;
  const absl::Time deadline = absl::Now() + absl::Seconds(25);
  while (true) {
    // Keep the poison message cycling towards the DLQ.
    (void)client.ReceiveOnce("Poisoned", kTopic, 8, absl::Milliseconds(300), absl::Seconds(1));
    const std::set<std::string> exported = Exported();
    missing.clear();
    for (const std::string& name : wanted) {
      if (exported.count(name) == 0) missing.push_back(name);
    }
    if (missing.empty() || absl::Now() > deadline) break;
  }
  EXPECT_TRUE(missing.empty()) << "named in deploy/grafana or deploy/prometheus but exported by "
                               << "no process: " << absl::StrJoin(missing, ", ");
  EXPECT_GE(wanted.size(), 30u);
}

}  // namespace
}  // namespace apogee
