#include "sdk/cpp/src/queue_selector.h"

#include <map>

#include "gtest/gtest.h"
#include "services/common/clock/clock.h"

namespace apogee::sdk {
namespace {

std::vector<QueueRef> TwoBrokers() {
  std::vector<QueueRef> queues;
  for (const char* broker : {"a", "b"}) {
    for (int id = 0; id < 2; ++id) queues.push_back({"T", broker, std::string(broker) + ":1", id});
  }
  return queues;
}

TEST(QueueSelectorTest, RoundRobinsOverEveryQueue) {
  QueueSelector selector(nullptr);
  const auto queues = TwoBrokers();
  std::map<std::pair<std::string, int>, int> hits;
  for (int i = 0; i < 40; ++i) {
    auto q = selector.Select(queues, {});
    ASSERT_TRUE(q.ok());
    hits[{q->broker, q->queue_id}]++;
  }
  ASSERT_EQ(hits.size(), 4u);
  for (const auto& [queue, n] : hits) EXPECT_EQ(n, 10);
}

TEST(QueueSelectorTest, SkipsBrokersAlreadyTried) {
  QueueSelector selector(nullptr);
  for (int i = 0; i < 10; ++i) {
    auto q = selector.Select(TwoBrokers(), {"a"});
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->broker, "b");
  }
}

TEST(QueueSelectorTest, EveryBrokerTriedStillAnswers) {
  QueueSelector selector(nullptr);
  EXPECT_TRUE(selector.Select(TwoBrokers(), {"a", "b"}).ok());
}

TEST(QueueSelectorTest, EmptyRouteIsAnError) {
  QueueSelector selector(nullptr);
  EXPECT_EQ(selector.Select({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FaultAvoidanceTest, FailedBrokerIsAvoidedUntilThePenaltyPasses) {
  ManualClock clock;
  FaultPolicy policy;
  policy.failure_avoid = absl::Seconds(30);
  FaultTracker faults(&clock, policy);
  QueueSelector selector(&faults);
  faults.Record("a", absl::Milliseconds(5), /*failed=*/true);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(selector.Select(TwoBrokers(), {})->broker, "b");
  clock.Advance(absl::Seconds(29));
  EXPECT_FALSE(faults.Available("a"));
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(faults.Available("a"));
  int a = 0;
  for (int i = 0; i < 20; ++i) a += selector.Select(TwoBrokers(), {})->broker == "a";
  EXPECT_EQ(a, 10);
}

TEST(FaultAvoidanceTest, SlowBrokerIsAvoidedInProportionToItsLatency) {
  ManualClock clock;
  FaultTracker faults(&clock);
  faults.Record("fast", absl::Milliseconds(100), false);
  faults.Record("slowish", absl::Milliseconds(600), false);
  faults.Record("slow", absl::Seconds(2), false);
  EXPECT_TRUE(faults.Available("fast"));
  EXPECT_EQ(faults.AvailableAt("slowish"), clock.Now() + absl::Seconds(30));
  EXPECT_EQ(faults.AvailableAt("slow"), clock.Now() + absl::Seconds(120));
}

TEST(FaultAvoidanceTest, QuickAnswerClearsThePenalty) {
  ManualClock clock;
  FaultTracker faults(&clock);
  faults.Record("a", absl::ZeroDuration(), true);
  EXPECT_FALSE(faults.Available("a"));
  faults.Record("a", absl::Milliseconds(3), false);
  EXPECT_TRUE(faults.Available("a"));
}

TEST(FaultAvoidanceTest, AllAvoidedPicksTheOneAvailableSoonest) {
  ManualClock clock;
  FaultTracker faults(&clock);
  QueueSelector selector(&faults);
  faults.Record("a", absl::Seconds(3), false);  // 180 s
  faults.Record("b", absl::Seconds(1), false);  // 60 s
  for (int i = 0; i < 5; ++i) EXPECT_EQ(selector.Select(TwoBrokers(), {})->broker, "b");
  // Unless it was tried already in this send.
  EXPECT_EQ(selector.Select(TwoBrokers(), {"b"})->broker, "a");
}

}  // namespace
}  // namespace apogee::sdk
