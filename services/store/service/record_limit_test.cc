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
  auto appended = store_->Append({ToRecordInput(&record)});
  ASSERT_TRUE(appended.ok()) << appended.status();
  ASSERT_EQ(appended->size(), 1u);
  WaitForDispatch();
  std::vector<std::string> bodies = Bodies("Big", 0);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0].size(), largest);
}

TEST_F(RecordLimitTest, RejectsOneByteMoreNamingTheLimit) {
  // One layer checks the limits: the engine, whose errors name the field,
  // the size and the limit.
  const size_t limit = RecordBodyLimit(kMaxMessageBody);
  sv1::AppendRecord record = Record(limit + 1);
  auto appended = store_->Append({ToRecordInput(&record)});
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(appended.status().message(),
              HasSubstr(absl::StrCat("batch[0].body of topic \"Big\" queue 0 is ", limit + 1,
                                     " bytes (max ", limit, ")")));

  sv1::AppendRecord tag = Record(1);
  tag.set_tag(std::string(kMaxMessageTagLength + 1, 't'));
  appended = store_->Append({ToRecordInput(&tag)});
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(appended.status().message(), HasSubstr("batch[0].tag is 1025 bytes (max 1024)"));

  sv1::AppendRecord id = Record(1);
  id.set_message_id(std::string(kMaxMessageIdLength + 1, 'i'));
  appended = store_->Append({ToRecordInput(&id)});
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(appended.status().message(), HasSubstr("batch[0].message_id is 129 bytes (max 128)"));
}

}  // namespace
}  // namespace apogee::store
