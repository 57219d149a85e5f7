#include "sdk/cpp/src/backoff.h"

#include "gtest/gtest.h"

namespace apogee::sdk {
namespace {

TEST(BackoffTest, DoublesPerFailureUpToTheCapAndStartsOverAfterASuccess) {
  Backoff backoff(absl::Milliseconds(100), absl::Milliseconds(350));
  EXPECT_EQ(backoff.failures(), 0);
  EXPECT_EQ(backoff.Failure(), absl::Milliseconds(100));
  EXPECT_EQ(backoff.Failure(), absl::Milliseconds(200));
  EXPECT_EQ(backoff.Failure(), absl::Milliseconds(350));  // 400 capped
  EXPECT_EQ(backoff.Failure(), absl::Milliseconds(350));
  EXPECT_EQ(backoff.failures(), 4);
  backoff.Success();
  EXPECT_EQ(backoff.failures(), 0);
  EXPECT_EQ(backoff.Failure(), absl::Milliseconds(100));
}

TEST(BackoffTest, ACapBelowTheFirstWaitIsRaisedToIt) {
  Backoff backoff(absl::Seconds(1), absl::Milliseconds(10));
  EXPECT_EQ(backoff.Failure(), absl::Seconds(1));
  EXPECT_EQ(backoff.Failure(), absl::Seconds(1));
}

}  // namespace
}  // namespace apogee::sdk
