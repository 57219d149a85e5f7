#include "sdk/cpp/src/send_coalescer.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk/cpp/src/convert.h"
#include "services/common/clock/clock.h"

namespace apogee::sdk {
namespace {

using ::testing::ElementsAre;

namespace v2 = ::apache::rocketmq::v2;

grpc::Slice Body(const std::string& topic, size_t bytes) {
  Message m;
  m.topic = topic;
  m.body = std::string(bytes, 'x');
  return EncodeSendEntry(m, "id", absl::FromUnixSeconds(100));
}

// The batch's request as the broker reads it.
v2::SendMessageRequest Request(const OutgoingBatch& b) {
  std::string bytes;
  for (const grpc::Slice& e : b.entries) {
    bytes.append(reinterpret_cast<const char*>(e.begin()), e.size());
  }
  v2::SendMessageRequest request;
  EXPECT_TRUE(request.ParseFromString(bytes));
  return request;
}

// Records the batches that leave (their sizes) and runs no thread: the
// test moves the ManualClock and calls FlushExpired itself.
class SendCoalescerTest : public ::testing::Test {
 protected:
  SendCoalescer& Make(CoalescerOptions options) {
    coalescer_ = std::make_unique<SendCoalescer>(
        options, clock_, [this](OutgoingBatch b) { sent_.push_back(std::move(b)); },
        /*linger_thread=*/false);
    return *coalescer_;
  }
  void Add(const std::string& topic, size_t bytes = 10) {
    const int index = added_++;
    coalescer_->Add(topic, {}, Body(topic, bytes),
                    [this, index](absl::StatusOr<SendReceipt>) { called_.push_back(index); });
  }
  std::vector<int> Sizes() const {
    std::vector<int> out;
    for (const OutgoingBatch& b : sent_) out.push_back(Request(b).messages_size());
    return out;
  }

  ManualClock clock_;
  std::unique_ptr<SendCoalescer> coalescer_;
  std::vector<OutgoingBatch> sent_;
  std::vector<int> called_;
  int added_ = 0;
};

TEST_F(SendCoalescerTest, LoneMessagesLeaveAtOnceWhileCallsAreFree) {
  Make({absl::Seconds(1), 100, 1 << 20, 2});
  Add("T");
  Add("T");
  EXPECT_THAT(Sizes(), ElementsAre(1, 1));  // two calls in flight: the limit
  Add("T");
  Add("T");
  Add("T");
  EXPECT_THAT(Sizes(), ElementsAre(1, 1));  // these wait for a call to end
  coalescer_->CallDone("T");
  EXPECT_THAT(Sizes(), ElementsAre(1, 1, 3));
  // Each callback stays with its own message, in order.
  for (SendCallback& c : sent_[2].callbacks) c(SendReceipt{});
  EXPECT_THAT(called_, ElementsAre(2, 3, 4));
}

TEST_F(SendCoalescerTest, FullBatchLeavesWithoutWaiting) {
  Make({absl::Seconds(1), 3, 1 << 20, 1});
  for (int i = 0; i < 7; ++i) Add("T");
  // 1 alone (no call out), then full batches of 3; one message waits.
  EXPECT_THAT(Sizes(), ElementsAre(1, 3, 3));
}

TEST_F(SendCoalescerTest, BatchBytesAreBounded) {
  Make({absl::Seconds(1), 100, 2500, 1});
  Add("T", 10);    // leaves alone
  Add("T", 1000);  // waits
  Add("T", 1000);  // waits (about 2000 bytes)
  Add("T", 1000);  // would overfill: the two before leave, this one waits
  ASSERT_THAT(Sizes(), ElementsAre(1, 2));
  EXPECT_LE(Request(sent_[1]).ByteSizeLong(), 2500u);
}

TEST_F(SendCoalescerTest, LingerEndsTheWait) {
  Make({absl::Milliseconds(5), 100, 1 << 20, 1});
  Add("T");
  Add("T");
  Add("T");
  clock_.Advance(absl::Milliseconds(4));
  coalescer_->FlushExpired();
  EXPECT_THAT(Sizes(), ElementsAre(1));
  clock_.Advance(absl::Milliseconds(1));
  coalescer_->FlushExpired();
  EXPECT_THAT(Sizes(), ElementsAre(1, 2));
}

TEST_F(SendCoalescerTest, TopicsHaveTheirOwnLanes) {
  Make({absl::Seconds(1), 100, 1 << 20, 1});
  Add("A");
  Add("B");
  Add("A");
  Add("B");
  Add("B");
  ASSERT_THAT(Sizes(), ElementsAre(1, 1));
  coalescer_->FlushAll();
  ASSERT_THAT(Sizes(), ElementsAre(1, 1, 1, 2));
  EXPECT_EQ(sent_[2].topic, "A");
  EXPECT_EQ(sent_[3].topic, "B");
  const v2::SendMessageRequest b = Request(sent_[3]);
  for (const v2::Message& m : b.messages()) EXPECT_EQ(m.topic().name(), "B");
}

TEST_F(SendCoalescerTest, LingerThreadSendsWaitingMessages) {
  RealClock clock;
  absl::Mutex mu;
  int sent = 0;
  SendCoalescer coalescer({absl::Milliseconds(1), 100, 1 << 20, 1}, clock, [&](OutgoingBatch b) {
    absl::MutexLock lock(&mu);
    sent += static_cast<int>(b.entries.size());
  });
  for (int i = 0; i < 3; ++i) coalescer.Add("T", {}, Body("T", 1), [](auto) {});
  absl::MutexLock lock(&mu);
  // The first left at once; the linger thread sends the other two (no
  // CallDone ever comes).
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                      +[](int* n) { return *n == 3; }, &sent),
                                  absl::Seconds(10)));
}

v2::SendResultEntry* Entry(v2::SendMessageResponse& r, v2::Code code, int64_t offset) {
  v2::SendResultEntry* e = r.add_entries();
  e->mutable_status()->set_code(code);
  e->mutable_status()->set_message(v2::Code_Name(code));
  e->set_message_id(absl::StrCat("id-", r.entries_size()));
  e->set_offset(offset);
  return e;
}

const QueueRef kQueue{"T", "broker-a", "127.0.0.1:8081", 0};

TEST(ReadBatchAnswerTest, EachMessageGetsItsOwnReceipt) {
  v2::SendMessageResponse r;
  r.mutable_status()->set_code(v2::OK);
  Entry(r, v2::OK, 7);
  Entry(r, v2::OK, 8);
  BatchAnswer a = ReadBatchAnswer(absl::OkStatus(), r, 2, "T", kQueue);
  ASSERT_TRUE(a.whole.ok()) << a.whole;
  ASSERT_EQ(a.each.size(), 2u);
  ASSERT_TRUE(a.each[1].has_value() && a.each[1]->ok());
  EXPECT_EQ((*a.each[1])->message_id, "id-2");
  EXPECT_EQ((*a.each[1])->offset, 8);
  EXPECT_EQ((*a.each[1])->broker, "broker-a");
}

// A mixed answer: stored messages get receipts, rejected ones their own
// error (not retried: the good ones are stored), unstored ones with a
// retryable reason may go elsewhere.
TEST(ReadBatchAnswerTest, MixedResultsAreSettledOneByOne) {
  v2::SendMessageResponse r;
  r.mutable_status()->set_code(v2::MULTIPLE_RESULTS);
  Entry(r, v2::OK, 3);
  Entry(r, v2::MESSAGE_BODY_TOO_LARGE, 0);
  Entry(r, v2::INTERNAL_SERVER_ERROR, 0);
  BatchAnswer a = ReadBatchAnswer(absl::OkStatus(), r, 3, "T", kQueue);
  ASSERT_TRUE(a.whole.ok()) << a.whole;
  ASSERT_TRUE(a.each[0].has_value());
  EXPECT_EQ((*a.each[0])->offset, 3);
  ASSERT_TRUE(a.each[1].has_value());
  EXPECT_EQ(a.each[1]->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(a.each[1]->status().message()),
              ::testing::HasSubstr("broker broker-a (127.0.0.1:8081) rejected the message"));
  EXPECT_FALSE(a.each[2].has_value());
  EXPECT_FALSE(a.retry_error.ok());
}

TEST(ReadBatchAnswerTest, OneStatusForAllOrAFailedCallIsWhole) {
  v2::SendMessageResponse r;
  r.mutable_status()->set_code(v2::TOO_MANY_REQUESTS);
  BatchAnswer a = ReadBatchAnswer(absl::OkStatus(), r, 2, "T", kQueue);
  EXPECT_EQ(a.whole.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(a.each.empty());
  a = ReadBatchAnswer(absl::UnavailableError("connection refused"), {}, 2, "T", kQueue);
  EXPECT_EQ(a.whole.code(), absl::StatusCode::kUnavailable);
  // An answer that does not match the call is an error of the whole call.
  v2::SendMessageResponse short_answer;
  short_answer.mutable_status()->set_code(v2::OK);
  Entry(short_answer, v2::OK, 1);
  a = ReadBatchAnswer(absl::OkStatus(), short_answer, 2, "T", kQueue);
  EXPECT_EQ(a.whole.code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace apogee::sdk
