#include "services/broker/limits/request_limits.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/broker/message/codec.h"
#include "services/common/naming/names.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMaxBody = 4 << 20;  // the advertised max_body_size

TEST(InflightBytesTest, RefusesWhatDoesNotFitWithTooManyRequestsNamingTheLimit) {
  InflightBytes inflight(100);
  auto a = inflight.TryAcquire(60);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = inflight.TryAcquire(40);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(inflight.InFlight(), 100);

  auto refused = inflight.TryAcquire(1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ToV2Code(refused.status()), v2::TOO_MANY_REQUESTS);
  EXPECT_THAT(refused.status().message(), HasSubstr("--max_inflight_bytes=100"));
  EXPECT_THAT(refused.status().message(), HasSubstr("100 bytes of requests in flight"));

  // A copy keeps the bytes taken; the last one gives them back.
  InflightBytes::Lease copy = *a;
  a->reset();
  EXPECT_EQ(inflight.InFlight(), 100);
  copy.reset();
  EXPECT_EQ(inflight.InFlight(), 40);
  EXPECT_TRUE(inflight.TryAcquire(60).ok());
}

TEST(FreeMemoryTest, TrimsOnlyWhenEnoughIsFree) {
  EXPECT_FALSE(ReturnFreeMemory(int64_t{1} << 50));  // never that much free
  {
    // 64 small blocks (below the mmap threshold) freed: heap memory.
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < 64; ++i) {
      blocks.emplace_back(new char[64 << 10]);
      blocks.back()[0] = static_cast<char>(i);
    }
  }
#if defined(__GLIBC__) && !defined(ABSL_HAVE_ADDRESS_SANITIZER)  // ASan's allocator is not malloc's
  EXPECT_GT(FreeHeapBytes(), 0);
  EXPECT_TRUE(ReturnFreeMemory(0));
#endif
}

TEST(RequestLimitsTest, FlagsAreCheckedAgainstTheBodyLimitAndEachOther) {
  EXPECT_TRUE(ValidateRequestLimits(RequestLimits{}, kMaxBody).ok());

  RequestLimits small;
  small.max_request_bytes = kMaxBody;  // no room for a max body's properties
  absl::Status s = ValidateRequestLimits(small, kMaxBody);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("--max_request_bytes=", kMaxBody)));

  RequestLimits big;
  big.max_request_bytes = kMaxRequestBytesCeiling + 1;
  EXPECT_FALSE(ValidateRequestLimits(big, kMaxBody).ok());

  RequestLimits inverted;
  inverted.max_inflight_bytes = inverted.max_request_bytes - 1;
  s = ValidateRequestLimits(inverted, kMaxBody);
  EXPECT_THAT(s.message(), HasSubstr("is below --max_request_bytes"));
}

// A message at every limit ValidateMessage enforces.
v2::Message LargestMessage(int64_t body_bytes) {
  v2::Message m;
  m.mutable_topic()->set_name(std::string(kMaxTopicNameLength, 't'));
  m.mutable_topic()->set_resource_namespace(std::string(64, 'n'));
  v2::SystemProperties* sp = m.mutable_system_properties();
  sp->set_message_id(std::string(128, 'I'));
  sp->set_tag(std::string(1000, 'g'));
  for (int k = 0; k < 32; ++k) sp->add_keys(absl::StrCat("key-", k, "-", std::string(90, 'k')));
  sp->set_message_group(std::string(MessageLimits().max_message_group_bytes - 1, 'G'));
  sp->set_trace_context(std::string(512, 'c'));
  sp->set_born_host(std::string(64, 'h'));
  sp->set_message_type(v2::FIFO);
  int64_t property_bytes = static_cast<int64_t>(sp->tag().size()) + 32 * 97;
  for (int p = 0; p < MessageLimits().max_user_properties; ++p) {
    const std::string key = absl::StrCat("p", p);
    const int64_t room =
        MessageLimits().max_properties_bytes - property_bytes - static_cast<int64_t>(key.size());
    const int64_t left = MessageLimits().max_user_properties - p;
    const std::string value(static_cast<size_t>(std::max<int64_t>(0, room / left)), 'v');
    property_bytes += static_cast<int64_t>(key.size() + value.size());
    (*m.mutable_user_properties())[key] = value;
  }
  m.set_body(std::string(static_cast<size_t>(body_bytes), 'b'));
  return m;
}

TEST(RecordHeadroomTest, ABodyOfExactlyTheLimitWithFullPropertiesIsAdmitted) {
  v2::Message m = LargestMessage(kMaxBody);
  ASSERT_TRUE(ValidateMessage(m, 0, MessageLimits{}, absl::Now()).ok());
  store::v1::AppendRecord record =
      ToStoreRecord(m, m.topic().name(), 0, "broker.example.com:8081", "10.0.0.1:50000");
  EXPECT_TRUE(CheckRecordHeadroom(record, kMaxBody, 0).ok());
  // Within what the store keeps for it (record_limit_test: the store takes
  // kMaxBody + kRecordHeadroomBytes).
  EXPECT_LE(static_cast<int64_t>(record.body().size()), kMaxBody + kMaxSendHeadroomBytes);
}

TEST(RecordHeadroomTest, OneByteOverTheBodyLimitIsBodyTooLargeFromTheBroker) {
  v2::Message m = LargestMessage(kMaxBody + 1);
  absl::Status s = ValidateMessage(m, 3, MessageLimits{}, absl::Now());
  EXPECT_EQ(ToV2Code(s), v2::MESSAGE_BODY_TOO_LARGE);
  EXPECT_THAT(s.message(), HasSubstr("messages[3].body is 4194305 bytes (max 4194304)"));
}

TEST(RecordHeadroomTest, WhatTheStoreCouldNotTakeIsPropertiesTooLarge) {
  v2::Message m = LargestMessage(16);
  // Not bounded by ValidateMessage: a huge trace context.
  m.mutable_system_properties()->set_trace_context(std::string(kMaxSendHeadroomBytes, 'c'));
  store::v1::AppendRecord record = ToStoreRecord(m, m.topic().name(), 0, "b:1", "c:2");
  absl::Status s = CheckRecordHeadroom(record, 16, 5);
  EXPECT_EQ(ToV2Code(s), v2::MESSAGE_PROPERTIES_TOO_LARGE);
  EXPECT_THAT(s.message(), HasSubstr("messages[5] carries"));
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("(properties, keys, ids, trace context; max ",
                                                  kMaxSendHeadroomBytes, ")")));
}

// The worst case is many tiny messages: per message the record repeats
// topic, id and keys and adds hosts and times.
std::vector<store::v1::AppendRecord> TinyRecords(int n, v2::SendMessageRequest* request) {
  std::vector<store::v1::AppendRecord> records;
  for (int i = 0; i < n; ++i) {
    v2::Message* m = request->add_messages();
    m->mutable_topic()->set_name("T");
    m->mutable_system_properties()->set_message_id(absl::StrCat(i));
    m->set_body("b");
    records.push_back(ToStoreRecord(*m, "T", 0, "255.255.255.255:65535", "255.255.255.255:65535"));
  }
  return records;
}

TEST(RequestLimitsTest, RecordsOfADefaultSizedRequestFitOneStoreAppend) {
  v2::SendMessageRequest request;
  std::vector<store::v1::AppendRecord> records = TinyRecords(1000, &request);
  store::v1::AppendRequest append;
  for (auto& r : records) *append.add_records() = r;
  const double ratio =
      static_cast<double>(append.ByteSizeLong()) / static_cast<double>(request.ByteSizeLong());
  EXPECT_LT(ratio * static_cast<double>(RequestLimits().max_request_bytes), kMaxStoreAppendBytes)
      << "records are " << ratio << " times their request";
  EXPECT_TRUE(CheckAppendSize(records).ok());
}

TEST(RequestLimitsTest, RecordsBeyondOneStoreAppendAreRefusedNamingTheLimit) {
  v2::SendMessageRequest request;
  std::vector<store::v1::AppendRecord> records = TinyRecords(100, &request);
  int64_t bytes = 0;
  for (const auto& r : records) bytes += static_cast<int64_t>(r.ByteSizeLong());
  EXPECT_TRUE(CheckAppendSize(records, bytes).ok());
  absl::Status s = CheckAppendSize(records, bytes - 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ToV2Code(s), v2::PAYLOAD_TOO_LARGE);  // not TOO_MANY_REQUESTS: a retry cannot help
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("100 messages make ", bytes,
                                                  " bytes of store records (max ", bytes - 1)));
}

}  // namespace
}  // namespace apogee::broker
