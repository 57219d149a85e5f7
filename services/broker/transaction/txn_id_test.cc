#include "services/broker/transaction/txn_id.h"

#include "apache/rocketmq/v2/definition.pb.h"
#include "gtest/gtest.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

TEST(TransactionIdTest, RoundTrip) {
  EXPECT_EQ(FormatTransactionId("broker-a", 0x1f40), "broker-a:1f40");
  auto id = ParseTransactionId("broker-a:1f40");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->broker_name, "broker-a");
  EXPECT_EQ(id->half_offset, 0x1f40);
  // Split at the last ':' (a broker name may hold one).
  id = ParseTransactionId("host:10911:0");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->broker_name, "host:10911");
  EXPECT_EQ(id->half_offset, 0);
}

TEST(TransactionIdTest, MalformedIdsAreInvalidTransactionId) {
  for (const char* bad : {"", "nocolon", ":12", "b:", "b:xyz", "b:-1", "b:+1", "b:0x10",
                          "b:ffffffffffffffff", "b:11111111111111111"}) {
    auto id = ParseTransactionId(bad);
    ASSERT_FALSE(id.ok()) << bad;
    apache::rocketmq::v2::Status v2;
    ToV2Status(id.status(), &v2);
    EXPECT_EQ(v2.code(), apache::rocketmq::v2::INVALID_TRANSACTION_ID) << bad;
    if (*bad != '\0') {
      EXPECT_NE(id.status().message().find(bad), std::string::npos) << bad;
    }
  }
  EXPECT_EQ(ParseTransactionId("").status().message(), "transaction_id is empty");
}

}  // namespace
}  // namespace apogee::broker
