#include "services/store/service/read_encoding.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/service/record_codec.h"
#include "services/store/testing/records.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;

std::string Bytes(const grpc::Slice& slice) {
  return std::string(reinterpret_cast<const char*>(slice.begin()), slice.size());
}

StoredRecord Stored(const RecordInput& input, const RecordPosition& position) {
  std::string bytes;
  EncodeRecord(input, position, &bytes);
  return StoredRecord(std::move(bytes));
}

// Records of every shape ToProto distinguishes: all fields set (an empty
// key, the engine's flag bit, NULs in the body), none set, a time before
// 1970, each typed kind (one without a due time), and a version-1 record
// whose tag rides in its body.
std::vector<StoredRecord> EveryShape() {
  std::vector<StoredRecord> out;
  RecordInput full;
  full.topic = "orders";
  full.queue_id = 7;
  full.message_id = "01AB-0000";
  full.keys = {"k1", "", "k3"};
  full.tag = "TagA";
  full.born_timestamp_ms = 1'700'000'000'123;
  full.flags = kBatchContinuesFlag | 5;
  full.body = std::string("bo\0dy", 5);
  out.push_back(Stored(full, RecordPosition{4096, 1'000'000'000'000, 1'700'000'000'999, true}));
  out.push_back(Stored(RecordInput{}, RecordPosition{}));
  RecordInput early;
  early.topic = "t";
  early.born_timestamp_ms = -1'500;
  out.push_back(Stored(early, RecordPosition{1, 2, -1, false}));
  for (int kind = 1; kind <= 8; ++kind) {
    RecordInput typed = full;
    typed.ext.kind = static_cast<RecordKind>(kind);
    typed.ext.subject = 123'456 * kind;
    typed.ext.at_ms = kind == 4 ? 0 : 1'800'000'000'000 + kind;
    typed.ext.count = static_cast<uint32_t>(kind - 1);
    typed.ext.target_queue = kind;
    typed.ext.target_topic = kind == 3 ? "" : "real-topic";
    out.push_back(Stored(typed, RecordPosition{8192 + kind, kind, 1'700'000'001'000, false}));
  }
  RecordInput old;
  old.topic = "legacy";
  old.queue_id = 1;
  old.body = std::string("\x01\x04\x00TagBbody", 11);
  out.push_back(StoredRecord(testing::VersionOneRecord(old, RecordPosition{64, 3, 5, false})));
  return out;
}

QueueRead ReadOf(std::vector<StoredRecord> records, int64_t next, int64_t min, int64_t max) {
  QueueRead queue;
  queue.read.records = std::move(records);
  queue.read.next_offset = next;
  queue.read.min_offset = min;
  queue.read.max_offset = max;
  for (const StoredRecord& record : queue.read.records) {
    absl::StatusOr<RecordFields> fields = FieldsOf(record);
    EXPECT_TRUE(fields.ok()) << fields.status();
    if (fields.ok()) queue.fields.push_back(*fields);
  }
  return queue;
}

// What the service answered before it encoded answers itself.
sv1::ReadResponse AsMessage(const QueueRead& queue) {
  sv1::ReadResponse out;
  for (const StoredRecord& record : queue.read.records) {
    EXPECT_TRUE(ToProto(record, out.add_records()).ok());
  }
  out.set_next_offset(queue.read.next_offset);
  out.set_min_offset(queue.read.min_offset);
  out.set_max_offset(queue.read.max_offset);
  return out;
}

TEST(ReadEncodingTest, EncodesEveryRecordShapeAsTheGeneratedSerializerWould) {
  const QueueRead queue = ReadOf(EveryShape(), 17, 3, 1'000'000'000'001);
  const sv1::ReadResponse expected = AsMessage(queue);
  ASSERT_EQ(expected.records_size(), 12);
  EXPECT_EQ(expected.records(11).tag(), "TagB");  // unpacked from the v1 envelope

  const std::string encoded = Bytes(EncodeReadResponse(queue));
  EXPECT_EQ(encoded, expected.SerializeAsString());
  sv1::ReadResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(encoded));
  EXPECT_EQ(parsed.DebugString(), expected.DebugString());

  // Nothing read, at the queue's start: an empty answer.
  const QueueRead none = ReadOf({}, 0, 0, 0);
  EXPECT_EQ(Bytes(EncodeReadResponse(none)), "");
}

TEST(ReadEncodingTest, EncodesQueueReadsAndTheirErrorsAsTheGeneratedSerializerWould) {
  std::vector<absl::StatusOr<QueueRead>> results;
  results.push_back(ReadOf(EveryShape(), 5, 0, 9));
  results.push_back(absl::OutOfRangeError("offset 3 of q was deleted by retention"));
  results.push_back(ReadOf({}, 0, 0, 0));  // read, nothing there: still a response
  results.push_back(absl::Status(absl::StatusCode::kDataLoss, ""));

  sv1::ReadQueuesResponse expected;
  for (const absl::StatusOr<QueueRead>& result : results) {
    sv1::ReadQueueResult* r = expected.add_results();
    if (result.ok()) {
      *r->mutable_response() = AsMessage(*result);
    } else {
      r->set_code(static_cast<int32_t>(result.status().code()));
      r->set_error(std::string(result.status().message()));
    }
  }
  ASSERT_TRUE(expected.results(2).has_response());

  const std::string encoded = Bytes(EncodeReadQueuesResponse(results));
  EXPECT_EQ(encoded, expected.SerializeAsString());
  sv1::ReadQueuesResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(encoded));
  EXPECT_EQ(parsed.DebugString(), expected.DebugString());
  EXPECT_EQ(Bytes(EncodeReadQueuesResponse({})), "");
}

TEST(ReadEncodingTest, AMalformedVersionOneEnvelopeIsDataLossNamingTheRecord) {
  RecordInput old;
  old.topic = "legacy";
  old.queue_id = 2;
  old.body = std::string("\x01\x09\x00Tag", 6);  // claims a 9-byte tag
  const absl::StatusOr<RecordFields> fields =
      FieldsOf(StoredRecord(testing::VersionOneRecord(old, RecordPosition{128, 4, 5, false})));
  EXPECT_EQ(fields.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(fields.status().message(), HasSubstr("commit offset 128 (legacy/2@4)"));
}

}  // namespace
}  // namespace apogee::store
