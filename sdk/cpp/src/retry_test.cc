#include "sdk/cpp/src/retry.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/clock/clock.h"

namespace apogee::sdk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<QueueRef> Brokers(std::vector<std::string> names) {
  std::vector<QueueRef> queues;
  for (const std::string& n : names) queues.push_back({"T", n, n + ":8081", 0});
  return queues;
}

class RetryTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  FaultTracker faults_{&clock_};
  QueueSelector selector_{&faults_};
  std::vector<std::string> tried_;

  // An attempt that takes `latency` of manual time and answers `result`
  // per broker.
  SendAttempt Fake(std::map<std::string, absl::Status> results,
                   absl::Duration latency = absl::Milliseconds(1)) {
    return [this, results, latency](
               const QueueRef& q, absl::Time deadline) -> absl::StatusOr<std::vector<SendReceipt>> {
      tried_.push_back(q.broker);
      const absl::Time done = clock_.Now() + latency;
      if (done > deadline) {
        clock_.Set(deadline);
        return absl::DeadlineExceededError("deadline exceeded");
      }
      clock_.Set(done);
      auto it = results.find(q.broker);
      if (it == results.end()) it = results.find("*");  // every other broker
      if (it != results.end() && !it->second.ok()) return it->second;
      return std::vector<SendReceipt>{{"id", q.broker, 7}};
    };
  }
};

TEST_F(RetryTest, FailureIsRetriedOnAnotherBroker) {
  RetryPolicy policy;
  // Whichever broker the round robin starts with fails; the other answers.
  SendAttempt first_fails = [this](const QueueRef& q,
                                   absl::Time) -> absl::StatusOr<std::vector<SendReceipt>> {
    tried_.push_back(q.broker);
    clock_.Advance(absl::Milliseconds(1));
    if (tried_.size() == 1) return absl::UnavailableError("connection refused");
    return std::vector<SendReceipt>{{"id", q.broker, 7}};
  };
  auto r =
      SendWithRetries("T", Brokers({"a", "b"}), policy, clock_, selector_, &faults_, first_fails);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(tried_.size(), 2u);
  EXPECT_NE(tried_[0], tried_[1]);  // the retry went to the other broker
  EXPECT_EQ(r->front().broker, tried_[1]);
  EXPECT_FALSE(faults_.Available(tried_[0]));  // the failed one is avoided
  EXPECT_TRUE(faults_.Available(tried_[1]));
}

TEST_F(RetryTest, AttemptsAreBoundedAndTheErrorSaysWhy) {
  RetryPolicy policy;
  policy.max_retries = 2;
  absl::Status down = absl::UnavailableError("connection refused");
  auto r = SendWithRetries("T", Brokers({"a", "b", "c", "d"}), policy, clock_, selector_, &faults_,
                           Fake({{"a", down}, {"b", down}, {"c", down}, {"d", down}}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(tried_.size(), 3u);
  EXPECT_THAT(r.status().message(), HasSubstr("failed after 3 attempt(s)"));
  EXPECT_THAT(r.status().message(), HasSubstr("max retries 2"));
  EXPECT_THAT(r.status().message(), HasSubstr("connection refused"));
  EXPECT_THAT(r.status().message(), HasSubstr("topic \"T\""));
}

TEST_F(RetryTest, BadInputIsNotRetriedNorHeldAgainstTheBroker) {
  RetryPolicy policy;
  auto r = SendWithRetries("T", Brokers({"a", "b"}), policy, clock_, selector_, &faults_,
                           Fake({{"a", absl::InvalidArgumentError("body too large")},
                                 {"b", absl::InvalidArgumentError("body too large")}}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tried_.size(), 1u);
  EXPECT_TRUE(faults_.Available(tried_.front()));
}

TEST_F(RetryTest, TimeoutCoversTheWholeSendRetriesIncluded) {
  RetryPolicy policy;
  policy.timeout = absl::Seconds(3);
  policy.max_retries = 5;
  const absl::Time start = clock_.Now();
  // Every attempt fails after 2 s of manual time: the first uses 2 s, the
  // second hits the deadline, and no third starts.
  auto r = SendWithRetries("T", Brokers({"a", "b", "c"}), policy, clock_, selector_, &faults_,
                           Fake({{"*", absl::UnavailableError("slow")}}, absl::Seconds(2)));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(tried_.size(), 2u);
  EXPECT_LE(clock_.Now() - start, absl::Seconds(3));
  EXPECT_THAT(r.status().message(), HasSubstr("timeout 3s"));
}

TEST_F(RetryTest, SlowSuccessMakesTheBrokerAvoided) {
  RetryPolicy policy;
  auto r = SendWithRetries("T", Brokers({"a"}), policy, clock_, selector_, &faults_,
                           Fake({}, absl::Milliseconds(1200)));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(faults_.Available("a"));
  EXPECT_EQ(faults_.AvailableAt("a"), clock_.Now() + absl::Seconds(60));
}

TEST_F(RetryTest, RetryableClassification) {
  EXPECT_TRUE(Retryable(absl::UnavailableError("")));
  EXPECT_TRUE(Retryable(absl::DeadlineExceededError("")));
  EXPECT_TRUE(Retryable(absl::ResourceExhaustedError("")));
  EXPECT_TRUE(Retryable(absl::InternalError("")));
  EXPECT_TRUE(Retryable(absl::NotFoundError("")));  // topic not on that broker
  EXPECT_FALSE(Retryable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(Retryable(absl::UnimplementedError("")));
  EXPECT_FALSE(Retryable(absl::FailedPreconditionError("")));
}

}  // namespace
}  // namespace apogee::sdk
