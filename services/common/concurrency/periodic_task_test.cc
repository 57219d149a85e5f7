#include "services/common/concurrency/periodic_task.h"

#include <atomic>

#include "gtest/gtest.h"
#include "services/common/testing/process.h"

namespace apogee {
namespace {

TEST(PeriodicTaskTest, RunsRepeatedlyUntilStopped) {
  std::atomic<int> runs{0};
  PeriodicTask task(absl::Milliseconds(1), [&] { runs++; });
  EXPECT_TRUE(testing::PollUntil([&] { return runs.load() >= 3; }, absl::Seconds(10)));
  task.Stop();
  const int after_stop = runs.load();
  task.Stop();  // idempotent
  EXPECT_EQ(runs.load(), after_stop);
}

TEST(PeriodicTaskTest, StopDoesNotWaitForTheInterval) {
  const absl::Time start = absl::Now();
  {
    PeriodicTask task(absl::Hours(1), [] {});
  }
  // A stop that waited for the interval would take an hour; any bound works.
  EXPECT_LT(absl::Now() - start, absl::Minutes(1));
}

}  // namespace
}  // namespace apogee
