// apogee-bench against a LocalCluster: small produce and consume runs whose
// JSON summary lines are checked.
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

}  // namespace
}  // namespace apogee
