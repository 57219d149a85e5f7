#include "services/broker/consume/arrivals.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace apogee::broker {
namespace {

TEST(ArrivalsTest, ArrivalWakesOnlyWatchersOfThatTopicOnce) {
  Arrivals arrivals;
  const absl::Time deadline = absl::FromUnixSeconds(100);
  int a = 0, b = 0;
  bool a_arrived = false;
  arrivals.Watch({"T1", "%RETRY%G"}, deadline, [&](bool arrived) {
    ++a;
    a_arrived = arrived;
  });
  arrivals.Watch({"T2"}, deadline, [&](bool) { ++b; });
  arrivals.Notify("%RETRY%G");
  arrivals.Notify("T1");  // already woken: no second call
  EXPECT_EQ(a, 1);
  EXPECT_TRUE(a_arrived);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(arrivals.Parked(), 1u);
}

TEST(ArrivalsTest, DeadlineWakesWithFalse) {
  Arrivals arrivals;
  int calls = 0;
  bool arrived = true;
  arrivals.Watch({"T"}, absl::FromUnixSeconds(100), [&](bool a) {
    ++calls;
    arrived = a;
  });
  arrivals.ExpireDue(absl::FromUnixSeconds(99));
  EXPECT_EQ(calls, 0);
  arrivals.ExpireDue(absl::FromUnixSeconds(100));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(arrived);
  arrivals.Notify("T");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(arrivals.Parked(), 0u);
}

TEST(ArrivalsTest, UnwatchedWatchNeverFires) {
  Arrivals arrivals;
  int calls = 0;
  const uint64_t id = arrivals.Watch({"T"}, absl::FromUnixSeconds(100), [&](bool) { ++calls; });
  EXPECT_TRUE(arrivals.Unwatch(id));
  EXPECT_FALSE(arrivals.Unwatch(id));
  arrivals.Notify("T");
  arrivals.ExpireDue(absl::FromUnixSeconds(200));
  EXPECT_EQ(calls, 0);
}

TEST(ArrivalsTest, ListenersHearEveryArrivalWithItsQueueUntilUnlistened) {
  Arrivals arrivals;
  std::vector<std::pair<std::string, int32_t>> heard;
  const uint64_t id = arrivals.Listen(
      {"T", "%RETRY%G"}, [&](const std::string& t, int32_t q) { heard.emplace_back(t, q); });
  int watched = 0;
  arrivals.Watch({"T"}, absl::FromUnixSeconds(100), [&](bool) { ++watched; });
  arrivals.Notify("T", 3);
  arrivals.Notify("T", 5);  // a listener is not one-shot
  arrivals.Notify("Other", 1);
  arrivals.Notify("%RETRY%G");
  EXPECT_EQ(heard, (std::vector<std::pair<std::string, int32_t>>{
                       {"T", 3}, {"T", 5}, {"%RETRY%G", Arrivals::kAnyQueue}}));
  EXPECT_EQ(watched, 1);
  EXPECT_EQ(arrivals.Parked(), 0u);  // listeners are not parked polls
  arrivals.Unlisten(id);
  arrivals.Notify("T", 3);
  EXPECT_EQ(heard.size(), 3u);
}

TEST(ArrivalsTest, WatchWithoutTopicsOnlyExpires) {
  Arrivals arrivals;
  int calls = 0;
  arrivals.Watch({}, absl::FromUnixSeconds(100), [&](bool) { ++calls; });
  arrivals.Notify("T", 0);
  EXPECT_EQ(calls, 0);
  arrivals.ExpireDue(absl::FromUnixSeconds(100));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace apogee::broker
