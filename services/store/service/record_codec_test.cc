#include "services/store/service/record_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/testing/records.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;

sv1::AppendRecord Record(std::string tag, std::string body) {
  sv1::AppendRecord r;
  r.set_topic("T");
  r.set_queue_id(3);
  r.set_message_id("id-1");
  r.add_keys("k1");
  r.add_keys("k2");
  r.set_tag(std::move(tag));
  *r.mutable_born_time() = FromMillis(1'700'000'000'123);
  r.set_flags(7);
  r.set_body(std::move(body));
  return r;
}

TEST(RecordCodecTest, TagHashIsStableFnv1a) {
  EXPECT_EQ(TagHash(""), 0u);
  // Stored on disk: must never change. FNV-1a 64 of "a".
  EXPECT_EQ(TagHash("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_NE(TagHash("TagA"), TagHash("TagB"));
}

TEST(RecordCodecTest, TagIsARecordFieldNotABodyEnvelope) {
  sv1::AppendRecord in = Record("TagA", std::string("bo\0dy", 5));
  RecordInput record = ToRecordInput(&in);
  EXPECT_EQ(record.topic, "T");
  EXPECT_EQ(record.queue_id, 3);
  EXPECT_EQ(record.message_id, "id-1");
  EXPECT_THAT(record.keys, ::testing::ElementsAre("k1", "k2"));
  EXPECT_EQ(record.tag, "TagA");
  EXPECT_EQ(record.tags_hash, TagHash("TagA"));
  EXPECT_EQ(record.born_timestamp_ms, 1'700'000'000'123);
  EXPECT_EQ(record.flags, 7u);
  EXPECT_EQ(record.body, std::string("bo\0dy", 5));

  std::string bytes;
  EncodeRecord(record, RecordPosition{0, 9, 1'700'000'000'999, false}, &bytes);
  sv1::StoredRecord out;
  ASSERT_TRUE(ToProto(StoredRecord(bytes), &out).ok());
  EXPECT_EQ(out.tag(), "TagA");
  EXPECT_EQ(out.body(), std::string("bo\0dy", 5));
  EXPECT_EQ(out.queue_offset(), 9);
}

TEST(RecordCodecTest, VersionOneRecordsKeepTheirEnvelopedTag) {
  // What the service stored before the record format had a tag field.
  RecordInput old;
  old.topic = "T";
  old.queue_id = 1;
  old.body = std::string("\x01\x04\x00TagBbody", 11);
  const std::string v1 = testing::VersionOneRecord(old, RecordPosition{0, 0, 1, false});
  auto view = RecordView::Parse(v1, 0, 1 << 20);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->version(), 1);
  sv1::StoredRecord out;
  ASSERT_TRUE(ToProto(StoredRecord(v1), &out).ok());
  EXPECT_EQ(out.tag(), "TagB");
  EXPECT_EQ(out.body(), "body");
}

TEST(RecordCodecTest, MalformedEnvelopeIsDataLoss) {
  EXPECT_EQ(UnpackBody("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(UnpackBody(std::string("\x02\x00\x00", 3)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(UnpackBody(std::string("\x01\x05\x00"
                                   "ab",
                                   5))
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

TEST(RecordCodecTest, MillisConversions) {
  EXPECT_EQ(ToMillis(FromMillis(0)), 0);
  EXPECT_EQ(ToMillis(FromMillis(1'234)), 1'234);
  const auto t = FromMillis(-1);
  EXPECT_EQ(t.seconds(), -1);
  EXPECT_EQ(t.nanos(), 999'000'000);
  EXPECT_EQ(ToMillis(t), -1);
}

}  // namespace
}  // namespace apogee::store
