#include "services/broker/limits/stream_limits.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apogee::broker {
namespace {

using ::testing::HasSubstr;

TEST(StreamCounterTest, RefusesPastTheTotalAndGivesThePlaceBack) {
  StreamCounter counter("telemetry", "max_telemetry_streams", 2, "per_client", 2);
  auto a = counter.Open("a");
  auto b = counter.Open("b");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = counter.Open("c");
  ASSERT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(c.status().message(), HasSubstr("--max_telemetry_streams=2"));
  EXPECT_EQ(counter.of_client("c"), 0);  // a refused stream holds nothing
  a->reset();
  EXPECT_EQ(counter.total(), 1);
  EXPECT_TRUE(counter.Open("c").ok());
}

TEST(StreamCounterTest, RefusesPastThePerClientLimitNamingTheClient) {
  StreamCounter counter("push", "max_push_streams", 10, "max_push_streams_per_client", 1);
  auto first = counter.OpenForClient("c1");
  ASSERT_TRUE(first.ok());
  auto second = counter.OpenForClient("c1");
  ASSERT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.status().message(), HasSubstr("\"c1\""));
  EXPECT_THAT(second.status().message(), HasSubstr("--max_push_streams_per_client=1"));
  EXPECT_TRUE(counter.OpenForClient("c2").ok());
  first->reset();
  EXPECT_EQ(counter.of_client("c1"), 0);
  EXPECT_TRUE(counter.OpenForClient("c1").ok());
}

TEST(StreamCounterTest, OpenTakesBothOrNeither) {
  StreamCounter counter("push", "max_push_streams", 5, "max_push_streams_per_client", 1);
  auto first = counter.Open("c1");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(counter.Open("c1").ok());
  EXPECT_EQ(counter.total(), 1);  // the refused one gave its total place back
}

TEST(StreamLimitsTest, ValidationNamesFlagAndRange) {
  StreamLimits limits;
  EXPECT_TRUE(ValidateStreamLimits(limits).ok());
  limits.max_push_streams = 0;
  EXPECT_THAT(ValidateStreamLimits(limits).message(),
              HasSubstr("--max_push_streams=0 is out of range (allowed: 1..1000000)"));
  limits = StreamLimits();
  limits.max_telemetry_streams_per_client = limits.max_telemetry_streams + 1;
  EXPECT_THAT(ValidateStreamLimits(limits).message(),
              HasSubstr("--max_telemetry_streams_per_client=10001 is out of range"));
}

}  // namespace
}  // namespace apogee::broker
