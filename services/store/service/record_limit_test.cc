// The store takes every record a broker admits: a body at the advertised
// limit plus the rest of its message (up to kRecordHeadroomBytes), through
// the service's codec and the real engine (commit log + RocksDB).
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/naming/names.h"
#include "services/store/service/record_codec.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kMaxMessageBody = 4u << 20;  // what brokers advertise

class RecordLimitTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    StoreOptions options = Options();
    options.max_body_size = EngineBodyLimit(kMaxMessageBody);  // as apogee-store wires it
    options.segment_size = 16u << 20;
    Open(options);
    CreateTopic("Big", 1);
  }

  static sv1::AppendRecord Record(size_t body_bytes) {
    sv1::AppendRecord r;
    r.set_topic("Big");
    r.set_queue_id(0);
    r.set_message_id("id-1");
    r.set_tag("TagA");
    r.set_body(std::string(body_bytes, 'b'));
    return r;
  }
};

TEST_F(RecordLimitTest, TakesABodyAtTheLimitWithFullHeadroom) {
  const size_t largest = kMaxMessageBody + static_cast<size_t>(kRecordHeadroomBytes);
  EXPECT_EQ(RecordBodyLimit(kMaxMessageBody), largest);
  sv1::AppendRecord record = Record(largest);
  auto input = ToRecordInput(0, &record, RecordBodyLimit(kMaxMessageBody));
  ASSERT_TRUE(input.ok()) << input.status();
  auto appended = store_->Append({*input});
  ASSERT_TRUE(appended.ok()) << appended.status();
  ASSERT_EQ(appended->size(), 1u);
  WaitForDispatch();
  std::vector<std::string> bodies = Bodies("Big", 0);
  ASSERT_EQ(bodies.size(), 1u);
  auto unpacked = UnpackBody(bodies[0]);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  EXPECT_EQ(unpacked->body.size(), largest);
}

TEST_F(RecordLimitTest, RejectsOneByteMoreNamingTheLimit) {
  const size_t limit = RecordBodyLimit(kMaxMessageBody);
  sv1::AppendRecord record = Record(limit + 1);
  auto input = ToRecordInput(0, &record, limit);
  ASSERT_FALSE(input.ok());
  EXPECT_EQ(input.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(input.status().message(), HasSubstr(absl::StrCat("(max ", limit, ")")));
}

}  // namespace
}  // namespace apogee::store
