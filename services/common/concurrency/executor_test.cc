#include "services/common/concurrency/executor.h"

#include <atomic>

#include "gtest/gtest.h"
#include "services/common/testing/process.h"

namespace apogee {
namespace {

TEST(ExecutorTest, RunsEveryTaskAndDrainsOnDestruction) {
  std::atomic<int> done{0};
  {
    Executor executor(3);
    for (int i = 0; i < 1000; ++i) executor.Submit([&] { done++; });
    EXPECT_TRUE(testing::PollUntil([&] { return done.load() > 0; }, absl::Seconds(10)));
  }
  EXPECT_EQ(done.load(), 1000);
}

TEST(ExecutorTest, TasksRunOnWorkerThreads) {
  std::atomic<bool> other_thread{false};
  const auto caller = std::this_thread::get_id();
  {
    Executor executor(1);
    executor.Submit([&] { other_thread = std::this_thread::get_id() != caller; });
  }
  EXPECT_TRUE(other_thread.load());
}

}  // namespace
}  // namespace apogee
