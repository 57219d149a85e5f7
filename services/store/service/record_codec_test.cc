#include "services/store/service/record_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

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

TEST(RecordCodecTest, EnvelopeRoundTripsTagAndBody) {
  sv1::AppendRecord in = Record("TagA", std::string("bo\0dy", 5));
  auto record = ToRecordInput(0, &in, 1024);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->topic, "T");
  EXPECT_EQ(record->queue_id, 3);
  EXPECT_EQ(record->message_id, "id-1");
  EXPECT_THAT(record->keys, ::testing::ElementsAre("k1", "k2"));
  EXPECT_EQ(record->tags_hash, TagHash("TagA"));
  EXPECT_EQ(record->born_timestamp_ms, 1'700'000'000'123);
  EXPECT_EQ(record->flags, 7u);

  auto unpacked = UnpackBody(record->body);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  EXPECT_EQ(unpacked->tag, "TagA");
  EXPECT_EQ(unpacked->body, std::string("bo\0dy", 5));
}

TEST(RecordCodecTest, EmptyTagAndBody) {
  sv1::AppendRecord in = Record("", "");
  auto record = ToRecordInput(0, &in, 1024);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->tags_hash, 0u);
  auto unpacked = UnpackBody(record->body);
  ASSERT_TRUE(unpacked.ok());
  EXPECT_EQ(unpacked->tag, "");
  EXPECT_EQ(unpacked->body, "");
}

TEST(RecordCodecTest, LimitsNameTheInput) {
  sv1::AppendRecord big = Record("t", std::string(1025, 'x'));
  auto r = ToRecordInput(5, &big, 1024);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("batch[5].body of topic \"T\" queue 3 is 1025 bytes (max 1024)"));

  sv1::AppendRecord tag = Record(std::string(kMaxTagLength + 1, 't'), "b");
  r = ToRecordInput(0, &tag, 1024);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("batch[0].tag is 1025 bytes (max 1024)"));
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
