#include "services/broker/message/validation.h"

#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "services/broker/message/codec.h"
#include "services/broker/message/message_filter.h"
#include "services/common/naming/names.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

using ::testing::HasSubstr;

// What an official producer sends, with one key and a tag.
v2::Message Valid() {
  v2::Message m;
  const bool parsed = google::protobuf::TextFormat::ParseFromString(
      R"pb(topic { name: "T" }
           system_properties {
             message_id: "0102FC000000011D800B1A46E200000000"
             tag: "TagA"
             keys: "order-42"
           }
           body: "hello")pb",
      &m);
  EXPECT_TRUE(parsed);
  return m;
}

// Through the codec's entry point, as SendMessage calls it.
absl::Status Check(const v2::Message& m) {
  return ValidateMessage(m, 3, MessageLimits{}, absl::Now());
}

TEST(ValidateMessageFieldsTest, AcceptsEveryKnownTypeAndEncodingItServes) {
  for (v2::MessageType type : {v2::MESSAGE_TYPE_UNSPECIFIED, v2::NORMAL, v2::FIFO}) {
    v2::Message m = Valid();
    m.mutable_system_properties()->set_message_type(type);
    m.mutable_system_properties()->set_body_encoding(v2::GZIP);
    EXPECT_TRUE(Check(m).ok()) << v2::MessageType_Name(type) << ": " << Check(m);
  }
}

TEST(ValidateMessageFieldsTest, UnknownMessageTypeIsBadRequestNamingFieldAndValues) {
  v2::Message m = Valid();
  m.mutable_system_properties()->set_message_type(static_cast<v2::MessageType>(99));
  absl::Status s = Check(m);
  EXPECT_EQ(ToV2Code(s), v2::BAD_REQUEST);
  EXPECT_THAT(s.message(), HasSubstr("messages[3].system_properties.message_type is 99, not a "
                                     "MessageType (allowed: MESSAGE_TYPE_UNSPECIFIED=0, NORMAL=1"));

  m.mutable_system_properties()->set_message_type(v2::LITE);
  EXPECT_EQ(ToV2Code(Check(m)), v2::UNSUPPORTED);

  m = Valid();
  m.mutable_system_properties()->set_body_encoding(static_cast<v2::Encoding>(7));
  EXPECT_EQ(ToV2Code(Check(m)), v2::BAD_REQUEST);
  EXPECT_THAT(Check(m).message(), HasSubstr("body_encoding is 7, not a Encoding"));
}

TEST(ValidateMessageFieldsTest, MessageIdFollowsTheIdRule) {
  for (const std::string& bad : {std::string("ab\ncd"), std::string("ab\0cd", 5), std::string(" "),
                                 std::string(), std::string(kMaxMessageIdLength + 1, 'F')}) {
    v2::Message m = Valid();
    m.mutable_system_properties()->set_message_id(bad);
    absl::Status s = Check(m);
    EXPECT_EQ(ToV2Code(s), v2::ILLEGAL_MESSAGE_ID) << s;
    EXPECT_THAT(s.message(), HasSubstr("messages[3].system_properties.message_id"));
  }
  v2::Message m = Valid();
  m.mutable_system_properties()->set_message_id("ab\ncd");
  EXPECT_THAT(Check(m).message(), HasSubstr("invalid character '\\x0a' at 2"));
}

TEST(ValidateMessageFieldsTest, StoreRecordLimitsGetTheProxyCodes) {
  v2::Message m = Valid();
  m.mutable_system_properties()->clear_keys();
  for (int i = 0; i < 10000; ++i) m.mutable_system_properties()->add_keys("k");
  absl::Status s = Check(m);
  EXPECT_EQ(ToV2Code(s), v2::ILLEGAL_MESSAGE_KEY);
  EXPECT_THAT(s.message(), HasSubstr("messages[3] has 10000 keys (max 32)"));

  m = Valid();
  for (int i = 1; i < kMaxMessageKeys; ++i) m.mutable_system_properties()->add_keys("k");
  EXPECT_TRUE(Check(m).ok()) << Check(m);  // exactly at the limit

  m = Valid();
  m.mutable_system_properties()->add_keys(std::string(kMaxMessageKeyLength + 1, 'k'));
  s = Check(m);
  EXPECT_EQ(ToV2Code(s), v2::ILLEGAL_MESSAGE_KEY);
  EXPECT_THAT(s.message(), HasSubstr("keys[1] is 256 bytes (max 255)"));

  m = Valid();
  m.mutable_system_properties()->set_tag(std::string(kMaxMessageTagLength + 1, 't'));
  s = Check(m);
  EXPECT_EQ(ToV2Code(s), v2::ILLEGAL_MESSAGE_TAG);
  EXPECT_THAT(s.message(), HasSubstr("tag is 1025 bytes (max 1024)"));
}

TEST(ValidateFilterTypeTest, UnknownTypeIsIllegalFilterExpression) {
  v2::FilterExpression e;
  e.set_expression("TagA");
  for (v2::FilterType type : {v2::FILTER_TYPE_UNSPECIFIED, v2::TAG}) {
    e.set_type(type);
    EXPECT_TRUE(MessageFilter::Parse(e).ok());
  }
  e.set_type(static_cast<v2::FilterType>(42));
  auto parsed = MessageFilter::Parse(e);
  EXPECT_EQ(ToV2Code(parsed.status()), v2::ILLEGAL_FILTER_EXPRESSION);
  EXPECT_THAT(parsed.status().message(),
              HasSubstr("filter_expression.type is 42, not a FilterType (allowed: "
                        "FILTER_TYPE_UNSPECIFIED=0, TAG=1, SQL=2)"));
}

TEST(ValidateClientTypeTest, UnknownTypeIsUnrecognizedClientType) {
  EXPECT_TRUE(ValidateClientType("client_type", v2::CLIENT_TYPE_UNSPECIFIED).ok());
  EXPECT_TRUE(ValidateClientType("client_type", v2::SIMPLE_CONSUMER).ok());
  absl::Status s = ValidateClientType("heartbeat.client_type", 99);
  EXPECT_EQ(ToV2Code(s), v2::UNRECOGNIZED_CLIENT_TYPE);
  EXPECT_THAT(s.message(), HasSubstr("heartbeat.client_type is 99, not a ClientType"));
}

TEST(ValidateQueryOffsetPolicyTest, UnknownPolicyIsBadRequest) {
  EXPECT_TRUE(ValidateQueryOffsetPolicy(v2::TIMESTAMP).ok());
  absl::Status s = ValidateQueryOffsetPolicy(9);
  EXPECT_EQ(ToV2Code(s), v2::BAD_REQUEST);
  EXPECT_THAT(s.message(), HasSubstr("query_offset_policy is 9, not a QueryOffsetPolicy (allowed: "
                                     "BEGINNING=0, END=1, TIMESTAMP=2)"));
}

TEST(FromStoreAppendErrorTest, RewritesTheStoresRecordIndexToTheClientsMessageIndex) {
  // Records 0 and 1 came from messages 2 and 5 (messages 0, 1, 3, 4 failed
  // the broker's own checks).
  absl::Status s = FromStoreAppendError(
      absl::InvalidArgumentError("batch[1].keys[0] is 300 bytes (max 255)"), {2, 5});
  EXPECT_EQ(ToV2Code(s), v2::BAD_REQUEST);
  EXPECT_EQ(s.message(),
            "messages[5] was refused by the store (a limit the broker does not check yet): "
            "keys[0] is 300 bytes (max 255)");
  EXPECT_THAT(
      FromStoreAppendError(absl::InvalidArgumentError("append batch is empty"), {0}).message(),
      HasSubstr("a message was refused by the store (a limit the broker does not check "
                "yet): append batch is empty"));
  EXPECT_THAT(FromStoreAppendError(absl::InvalidArgumentError("batch[7].x"), {0}).message(),
              HasSubstr(": batch[7].x"));
  const absl::Status unavailable = absl::UnavailableError("store append stream ended");
  EXPECT_EQ(FromStoreAppendError(unavailable, {0}), unavailable);
}

}  // namespace
}  // namespace apogee::broker

namespace apogee::broker {
namespace {

TEST(FromStoreAppendErrorTest, SyncReplicationTimeoutIsSlavePersistenceTimeout) {
  absl::Status s = FromStoreAppendError(absl::AbortedError("1 of 2 in-sync replicas acked"), {0},
                                        "min_insync_replicas=2 replication_timeout=3s");
  EXPECT_EQ(ToV2Code(s), apache::rocketmq::v2::SLAVE_PERSISTENCE_TIMEOUT);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("min_insync_replicas=2 replication_timeout=3s"));
  EXPECT_THAT(s.message(), ::testing::HasSubstr("1 of 2 in-sync replicas acked"));
}

}  // namespace
}  // namespace apogee::broker
