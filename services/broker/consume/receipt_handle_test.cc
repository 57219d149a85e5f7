#include "services/broker/consume/receipt_handle.h"

#include "gtest/gtest.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

TEST(ReceiptHandleTest, RoundTripsTopicsWithSpecialCharacters) {
  ReceiptHandle h{"%RETRY%group|x", 3, 1234567890123, 42};
  auto decoded = ReceiptHandle::Decode(h.Encode());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->topic, "%RETRY%group|x");
  EXPECT_EQ(decoded->queue_id, 3);
  EXPECT_EQ(decoded->offset, 1234567890123);
  EXPECT_EQ(decoded->delivery_id, 42u);
}

TEST(ReceiptHandleTest, MalformedIsInvalidReceiptHandle) {
  for (const char* bad : {"", "a1:T:0:1", "zz:T:0:1:2", "a1::0:1:2", "a1:T:x:1:2"}) {
    auto decoded = ReceiptHandle::Decode(bad);
    EXPECT_EQ(ToV2Code(decoded.status()), apache::rocketmq::v2::INVALID_RECEIPT_HANDLE) << bad;
  }
}

}  // namespace
}  // namespace apogee::broker
