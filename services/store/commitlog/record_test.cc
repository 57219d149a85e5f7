#include "services/store/commitlog/record.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/commitlog/segment.h"
#include "services/store/testing/records.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint32_t kMax = 1 << 20;

std::string Encode(const RecordInput& input, int64_t offset) {
  std::string out;
  EncodeRecord(input, RecordPosition{offset, 42, 1'700'000'000'123}, &out);
  return out;
}

TEST(RecordTest, EncodesAndParsesEveryField) {
  const RecordInput input = testing::MakeRecord("TopicA", 3, "payload", {"k1", "", "key-3"});
  const std::string bytes = Encode(input, 4096);
  ASSERT_EQ(bytes.size(), EncodedRecordSize(input));
  auto view = RecordView::Parse(bytes, 4096, kMax);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->length(), bytes.size());
  EXPECT_EQ(view->topic(), "TopicA");
  EXPECT_EQ(view->queue_id(), 3);
  EXPECT_EQ(view->queue_offset(), 42);
  EXPECT_EQ(view->commit_offset(), 4096);
  EXPECT_EQ(view->end_offset(), 4096 + static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(view->store_timestamp_ms(), 1'700'000'000'123);
  EXPECT_EQ(view->born_timestamp_ms(), input.born_timestamp_ms);
  EXPECT_EQ(view->tags_hash(), input.tags_hash);
  EXPECT_EQ(view->flags(), 7u);
  EXPECT_EQ(view->message_id(), input.message_id);
  EXPECT_THAT(view->keys(), ElementsAre("k1", "", "key-3"));
  EXPECT_EQ(view->body(), "payload");
  StoredRecord stored(bytes);
  EXPECT_EQ(stored.view().body(), "payload");
  EXPECT_EQ(stored.view().queue_offset(), 42);
}

TEST(RecordTest, TypedRecordIsVersion3AndNormalStaysVersion2) {
  RecordInput input = testing::MakeRecord("rmq_sys_wheel_timer", 0, "payload", {"k"});
  const std::string plain = Encode(input, 0);
  EXPECT_EQ(static_cast<uint8_t>(plain[8]), kRecordMagic);
  EXPECT_EQ(RecordView::Parse(plain, 0, kMax)->kind(), RecordKind::kNormal);
  input.ext.kind = RecordKind::kTimer;
  input.ext.subject = 77;
  input.ext.at_ms = 1'700'000'005'000;
  input.ext.count = 3;
  input.ext.target_topic = "Orders";
  input.ext.target_queue = 2;
  const std::string bytes = Encode(input, 4096);
  ASSERT_EQ(bytes.size(), EncodedRecordSize(input));
  EXPECT_EQ(bytes.size(), plain.size() + 2 + kRecordExtFixedSize + 6);
  EXPECT_EQ(static_cast<uint8_t>(bytes[8]), kRecordMagicV3);
  auto view = RecordView::Parse(bytes, 4096, kMax);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->version(), 3);
  EXPECT_EQ(view->kind(), RecordKind::kTimer);
  EXPECT_EQ(view->subject(), 77);
  EXPECT_EQ(view->at_ms(), 1'700'000'005'000);
  EXPECT_EQ(view->count(), 3u);
  EXPECT_EQ(view->target_topic(), "Orders");
  EXPECT_EQ(view->target_queue(), 2);
  EXPECT_EQ(view->body(), "payload");
  EXPECT_THAT(view->keys(), ElementsAre("k"));
  EXPECT_EQ(StoredRecord(bytes).view().target_topic(), "Orders");
  for (size_t i = 0; i < bytes.size(); ++i) {  // the CRC covers the extension
    std::string corrupt = bytes;
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x10);
    EXPECT_FALSE(RecordView::Parse(corrupt, 4096, kMax).ok()) << "byte " << i;
  }
}

TEST(RecordTest, UnknownKindIsRefused) {
  RecordInput input = testing::MakeRecord("T", 0, "x");
  input.ext.kind = static_cast<RecordKind>(9);
  EXPECT_THAT(ValidateRecordInput(input).message(), HasSubstr("record kind 9 is unknown"));
}

TEST(RecordTest, EveryFlippedBitIsDetected) {
  const std::string bytes = Encode(testing::MakeRecord("T", 0, "abc", {"k"}), 0);
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string corrupt = bytes;
      corrupt[i] = static_cast<char>(corrupt[i] ^ (1 << bit));
      EXPECT_FALSE(RecordView::Parse(corrupt, 0, kMax).ok()) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(RecordTest, TruncatedRecordIsOutOfRangeAndCorruptIsDataLoss) {
  const std::string bytes = Encode(testing::MakeRecord("T", 0, "abcdef"), 100);
  auto truncated = RecordView::Parse(bytes.substr(0, bytes.size() - 1), 100, kMax);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated"));

  auto misplaced = RecordView::Parse(bytes, 200, kMax);
  EXPECT_EQ(misplaced.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(misplaced.status().message(), HasSubstr("stored commit offset is 100"));

  std::string bad_crc = bytes;
  bad_crc.back() ^= 1;
  auto crc = RecordView::Parse(bad_crc, 100, kMax);
  EXPECT_EQ(crc.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(crc.status().message(), HasSubstr("CRC32C mismatch"));

  auto too_long = RecordView::Parse(bytes, 100, 70);
  EXPECT_THAT(too_long.status().message(), HasSubstr("out of range [68, 70]"));
  EXPECT_EQ(RecordView::Parse(std::string(68, '\0'), 0, kMax).status().code(),
            absl::StatusCode::kDataLoss);  // zero-filled tail
}

// Bytes the process encoded itself skip the CRC, nothing else: a record
// not at the expected offset, or cut short, is still refused.
TEST(RecordTest, ParseEncodedHereChecksAllButTheCrc) {
  const std::string bytes = Encode(testing::MakeRecord("T", 0, "abcdef"), 100);
  auto view = RecordView::ParseEncodedHere(bytes, 100, kMax);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->body(), "abcdef");
  EXPECT_EQ(view->end_offset(), 100 + static_cast<int64_t>(bytes.size()));

  std::string flipped_body = bytes;
  flipped_body.back() ^= 1;
  EXPECT_FALSE(RecordView::Parse(flipped_body, 100, kMax).ok());
  EXPECT_EQ(RecordView::ParseEncodedHere(flipped_body, 100, kMax)->body(), "abcdeg");

  EXPECT_EQ(RecordView::ParseEncodedHere(bytes, 200, kMax).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      RecordView::ParseEncodedHere(bytes.substr(0, bytes.size() - 1), 100, kMax).status().code(),
      absl::StatusCode::kOutOfRange);
}

TEST(RecordTest, ValidationNamesTheProblem) {
  RecordInput r = testing::MakeRecord("", 0);
  EXPECT_THAT(ValidateRecordInput(r).message(), HasSubstr("topic length 0"));
  r = testing::MakeRecord("T", -1);
  EXPECT_THAT(ValidateRecordInput(r).message(), HasSubstr("queue id -1"));
  r = testing::MakeRecord("T", 0, "b", {std::string(70000, 'k')});
  EXPECT_THAT(ValidateRecordInput(r).message(), HasSubstr("key is 70000 bytes (max 65535)"));
  EXPECT_TRUE(ValidateRecordInput(testing::MakeRecord("T", 0)).ok());
}

TEST(SegmentTest, FileNamesAreZeroPaddedStartOffsets) {
  EXPECT_EQ(Segment::FileName(0), "00000000000000000000.log");
  EXPECT_EQ(Segment::FileName(1073741824), "00000000001073741824.log");
  EXPECT_EQ(Segment::ParseFileName("00000000001073741824.log"), 1073741824);
  EXPECT_EQ(Segment::ParseFileName("0000000000107374182.log"), std::nullopt);
  EXPECT_EQ(Segment::ParseFileName("0000000000107374182x.log"), std::nullopt);
  EXPECT_EQ(Segment::ParseFileName("00000000001073741824.tmp"), std::nullopt);
}

}  // namespace
}  // namespace apogee::store
