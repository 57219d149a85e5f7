// apogee-bench against a LocalCluster: small produce and consume runs whose
// JSON summary lines are checked.
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

using ::apogee::testing::LocalCluster;

struct CommandResult {
  int exit_code = -1;
  std::string stdout_text;
};

// Runs the command (stderr to a log in the cluster dir), returns its stdout.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& log) {
  const std::string command = absl::StrCat(absl::StrJoin(argv, " "), " 2>>", log);
  CommandResult run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.stdout_text.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// The numeric fields of a flat JSON object line.
std::map<std::string, double> ParseJson(const std::string& line) {
  std::map<std::string, double> fields;
  google::protobuf::Struct json;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &json).ok()) << line;
  for (const auto& [key, value] : json.fields()) {
    if (value.has_number_value()) fields[key] = value.number_value();
  }
  return fields;
}

// Runs apogee-bench with `args`; expects exit 0, every summary key, and
// `messages` messages without errors.
std::map<std::string, double> RunBench(std::vector<std::string> args, const std::string& log,
                                       int messages) {
  args.insert(args.begin(), APOGEE_BENCH_BIN);
  args.push_back("--json");
  CommandResult run = RunCommand(args, log);
  EXPECT_EQ(run.exit_code, 0) << run.stdout_text;
  auto json = ParseJson(run.stdout_text);
  for (const char* key :
       {"messages", "errors", "seconds", "msgs_per_s", "mb_per_s", "p50_us", "p99_us", "p999_us"}) {
    EXPECT_EQ(json.count(key), 1u) << key << " missing in " << run.stdout_text;
  }
  EXPECT_EQ(json["messages"], messages);
  EXPECT_EQ(json["errors"], 0);
  return json;
}

TEST(BenchTest, ProducesAndConsumesWithJsonSummaries) {
  LocalCluster cluster({APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN});
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  // Not created beforehand: the producer's first sends go to any master and
  // the broker auto-creates the topic.
  const std::string log = absl::StrCat(cluster.dir(), "/bench.log");
  const std::string ns = absl::StrCat("--endpoints=", cluster.nameserver_address());

  auto p = RunBench({"produce", ns, "--topic=BenchT", "--size=100", "--count=300",
                     "--concurrency=4", "--batch=3"},
                    log, 300);
  EXPECT_GT(p["msgs_per_s"], 0);
  EXPECT_GT(p["p50_us"], 0);
  EXPECT_LE(p["p50_us"], p["p99_us"]);
  EXPECT_LE(p["p99_us"], p["p999_us"]);
  // The peers' shape: single messages, 64 async sends in flight, each
  // counted once acknowledged.
  auto w = RunBench({"produce", ns, "--topic=BenchT", "--size=100", "--count=500", "--window=64"},
                    log, 500);
  EXPECT_EQ(w["window"], 64);
  EXPECT_GT(w["p50_us"], 0);

  // The consumer needs the route, which the NameServer has once the broker
  // registered the auto-created topic; apogee-bench waits up to --timeout.
  auto c = RunBench({"consume", ns, "--topic=BenchT", "--group=BenchG", "--count=800",
                     "--timeout=30s", "--concurrency=2"},
                    log, 800);
  EXPECT_GT(c["mb_per_s"], 0);

  // The same messages again through the streaming push consumer.
  RunBench({"consume", ns, "--topic=BenchT", "--group=BenchPushG", "--count=800", "--timeout=30s",
            "--concurrency=4", "--consumer=push"},
           log, 800);
}

// e2e: the consumer can only join once the first send made the topic, so
// the messages born before (counted, not measured) are at least one and,
// at this rate, a small part of the run.
TEST(BenchTest, EndToEndMeasuresOnlyMessagesBornAfterTheJoin) {
  LocalCluster cluster({APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN});
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  const std::string log = absl::StrCat(cluster.dir(), "/bench.log");
  CommandResult run = RunCommand(
      {APOGEE_BENCH_BIN, "e2e", absl::StrCat("--endpoints=", cluster.nameserver_address()),
       "--topic=E2eT", "--group=E2eG", "--size=100", "--count=600", "--rate=200", "--window=16",
       "--consumer=push", "--timeout=30s", "--json"},
      log);
  ASSERT_EQ(run.exit_code, 0) << run.stdout_text;
  std::map<std::string, std::map<std::string, double>> by_mode;
  for (absl::string_view line : absl::StrSplit(run.stdout_text, '\n', absl::SkipEmpty())) {
    by_mode[line.find("e2e-consume") != absl::string_view::npos ? "consume" : "produce"] =
        ParseJson(std::string(line));
  }
  ASSERT_EQ(by_mode.size(), 2u) << run.stdout_text;
  EXPECT_EQ(by_mode["produce"]["messages"], 600);
  auto& consumed = by_mode["consume"];
  EXPECT_EQ(consumed["messages"], 600);
  EXPECT_EQ(consumed["errors"], 0);
  ASSERT_EQ(consumed.count("born_before_join"), 1u) << run.stdout_text;
  EXPECT_GE(consumed["born_before_join"], 1);
  EXPECT_LT(consumed["born_before_join"], 300);
  EXPECT_GT(consumed["p50_us"], 0);
}

}  // namespace
}  // namespace apogee
