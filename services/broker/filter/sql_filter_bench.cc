// Cost of compiling and evaluating SQL92 filters (not a test; numbers and
// the command in README.md).
#include <map>
#include <string>

#include "benchmark/benchmark.h"
#include "services/broker/filter/sql_filter.h"

namespace apogee::broker::filter {
namespace {

using Properties = std::map<std::string, std::string>;

const char* const kExpressions[] = {
    "TAGS = 'TagA'",
    "a > 5 AND b = 'abc'",
    "(region IN ('eu-west', 'eu-north', 'us-east') AND price BETWEEN 10 AND 99.5) OR "
    "(vip IS NOT NULL AND NOT level < 3) OR name STARTSWITH 'order-'",
};

// A message with 10 user properties and a tag.
const Properties& Message() {
  static const Properties* message =
      new Properties{{"TAGS", "TagA"},   {"a", "10"},    {"b", "abc"},        {"region", "us-east"},
                     {"price", "42.00"}, {"level", "7"}, {"name", "order-1"}, {"k1", "v1"},
                     {"k2", "v2"},       {"k3", "v3"},   {"k4", "v4"}};
  return *message;
}

void BM_Compile(benchmark::State& state) {
  const char* sql = kExpressions[state.range(0)];
  for (auto _ : state) benchmark::DoNotOptimize(CompileSql(sql));
  state.SetLabel(sql);
}
BENCHMARK(BM_Compile)->DenseRange(0, 2);

void BM_Evaluate(benchmark::State& state) {
  const char* sql = kExpressions[state.range(0)];
  auto filter = CompileSql(sql);
  if (!filter.ok()) {
    state.SkipWithError(std::string(filter.status().message()).c_str());
    return;
  }
  const MapLookup<Properties> lookup(Message());
  for (auto _ : state) benchmark::DoNotOptimize((*filter)->Matches(lookup));
  state.SetLabel(sql);
}
BENCHMARK(BM_Evaluate)->DenseRange(0, 2);

}  // namespace
}  // namespace apogee::broker::filter

BENCHMARK_MAIN();
