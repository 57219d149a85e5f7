#include "services/broker/message/codec.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

using ::testing::HasSubstr;

v2::Message Valid() {
  v2::Message m;
  m.mutable_topic()->set_name("T");
  m.mutable_system_properties()->set_message_id("0102FC000000011D800B1A46E200000000");
  m.mutable_system_properties()->set_tag("TagA");
  m.mutable_system_properties()->add_keys("order-42");
  m.set_body("hello");
  (*m.mutable_user_properties())["source"] = "demo";
  return m;
}

v2::Code CodeOf(const v2::Message& m) {
  return ToV2Code(ValidateMessage(m, 0, MessageLimits{}, absl::Now()));
}

TEST(ValidateMessageTest, AcceptsAProducersMessage) { EXPECT_EQ(CodeOf(Valid()), v2::OK); }

TEST(ValidateMessageTest, UsesThePreciseV2Codes) {
  v2::Message m = Valid();
  m.mutable_system_properties()->set_message_id(" ");
  EXPECT_EQ(CodeOf(m), v2::ILLEGAL_MESSAGE_ID);

  m = Valid();
  m.set_body(std::string(4 * 1024 * 1024 + 1, 'x'));
  EXPECT_EQ(CodeOf(m), v2::MESSAGE_BODY_TOO_LARGE);
  EXPECT_THAT(ValidateMessage(m, 2, MessageLimits{}, absl::Now()).message(),
              HasSubstr("messages[2].body is 4194305 bytes (max 4194304)"));

  m = Valid();
  m.clear_body();
  EXPECT_EQ(CodeOf(m), v2::MESSAGE_BODY_EMPTY);

  m = Valid();
  m.mutable_system_properties()->set_tag("a||b");
  EXPECT_EQ(CodeOf(m), v2::ILLEGAL_MESSAGE_TAG);

  m = Valid();
  m.mutable_system_properties()->add_keys("");
  EXPECT_EQ(CodeOf(m), v2::ILLEGAL_MESSAGE_KEY);

  m = Valid();
  m.mutable_system_properties()->set_message_group(std::string(64, 'g'));
  EXPECT_EQ(CodeOf(m), v2::ILLEGAL_MESSAGE_GROUP);

  m = Valid();
  (*m.mutable_user_properties())["UNIQ_KEY"] = "x";
  EXPECT_EQ(CodeOf(m), v2::ILLEGAL_MESSAGE_PROPERTY_KEY);

  m = Valid();
  for (int i = 0; i < 129; ++i) (*m.mutable_user_properties())[absl::StrCat("k", i)] = "v";
  EXPECT_EQ(CodeOf(m), v2::MESSAGE_PROPERTIES_TOO_LARGE);

  m = Valid();
  (*m.mutable_user_properties())["big"] = std::string(17 * 1024, 'v');
  EXPECT_EQ(CodeOf(m), v2::MESSAGE_PROPERTIES_TOO_LARGE);
}

TEST(ValidateMessageTest, DelayedMessageRules) {
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  MessageLimits limits;
  limits.max_delivery_delay = absl::Hours(1);
  auto check = [&](const v2::Message& m) { return ValidateMessage(m, 0, limits, now); };
  auto at = [](v2::Message* m, absl::Time t) {
    m->mutable_system_properties()->mutable_delivery_timestamp()->set_seconds(
        absl::ToUnixSeconds(t));
  };
  v2::Message m = Valid();
  at(&m, now + absl::Minutes(59));
  EXPECT_TRUE(check(m).ok());  // type derived: DELAY
  m.mutable_system_properties()->set_message_type(v2::DELAY);
  EXPECT_TRUE(check(m).ok());

  at(&m, now + absl::Minutes(61));
  EXPECT_EQ(ToV2Code(check(m)), v2::ILLEGAL_DELIVERY_TIME);
  EXPECT_THAT(check(m).message(), HasSubstr("--max_delivery_delay=1h"));

  m = Valid();
  m.mutable_system_properties()->set_message_type(v2::DELAY);
  EXPECT_EQ(ToV2Code(check(m)), v2::ILLEGAL_DELIVERY_TIME);  // no timestamp

  m = Valid();  // delayed FIFO
  at(&m, now + absl::Seconds(5));
  m.mutable_system_properties()->set_message_group("g1");
  EXPECT_EQ(ToV2Code(check(m)), v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  EXPECT_THAT(check(m).message(), HasSubstr("a FIFO message cannot be delayed"));

  m = Valid();
  at(&m, now + absl::Seconds(5));
  m.mutable_system_properties()->set_message_type(v2::NORMAL);
  EXPECT_EQ(ToV2Code(check(m)), v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);

  nameserver::v1::TopicConfig delay_topic;
  delay_topic.set_name("D");
  delay_topic.set_message_type(nameserver::v1::TOPIC_MESSAGE_TYPE_DELAY);
  m = Valid();
  at(&m, now + absl::Seconds(5));
  EXPECT_TRUE(CheckMessageType(m, delay_topic).ok());
  EXPECT_EQ(ToV2Code(CheckMessageType(Valid(), delay_topic)),
            v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
}

TEST(ValidateMessageTest, TypedTopicRejectsOtherTypes) {
  nameserver::v1::TopicConfig fifo;
  fifo.set_name("F");
  fifo.set_message_type(nameserver::v1::TOPIC_MESSAGE_TYPE_FIFO);
  v2::Message m = Valid();
  m.mutable_system_properties()->set_message_type(v2::NORMAL);
  EXPECT_EQ(ToV2Code(CheckMessageType(m, fifo)), v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  m.mutable_system_properties()->set_message_type(v2::FIFO);
  EXPECT_TRUE(CheckMessageType(m, fifo).ok());
  // No type but a message group: a FIFO message.
  m.mutable_system_properties()->clear_message_type();
  m.mutable_system_properties()->set_message_group("order-1");
  EXPECT_TRUE(CheckMessageType(m, fifo).ok());
  m.mutable_system_properties()->clear_message_group();
  absl::Status normal = CheckMessageType(m, fifo);
  EXPECT_EQ(ToV2Code(normal), v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  EXPECT_THAT(normal.message(), HasSubstr("message type NORMAL does not match topic \"F\""));
}

TEST(MessageTypeTest, DerivedTypeAndAutoCreatedTopicType) {
  v2::SystemProperties sp;
  EXPECT_EQ(MessageTypeOf(sp), v2::NORMAL);
  sp.set_message_group("g");
  EXPECT_EQ(MessageTypeOf(sp), v2::FIFO);
  sp.clear_message_group();
  sp.mutable_delivery_timestamp()->set_seconds(1);
  EXPECT_EQ(MessageTypeOf(sp), v2::DELAY);
  sp.set_message_type(v2::TRANSACTION);  // an explicit type wins
  EXPECT_EQ(MessageTypeOf(sp), v2::TRANSACTION);

  namespace nsv1 = ::apogee::nameserver::v1;
  EXPECT_EQ(TopicTypeFor(v2::NORMAL), nsv1::TOPIC_MESSAGE_TYPE_NORMAL);
  EXPECT_EQ(TopicTypeFor(v2::FIFO), nsv1::TOPIC_MESSAGE_TYPE_FIFO);
  EXPECT_EQ(TopicTypeFor(v2::DELAY), nsv1::TOPIC_MESSAGE_TYPE_DELAY);
  EXPECT_EQ(TopicTypeFor(v2::TRANSACTION), nsv1::TOPIC_MESSAGE_TYPE_TRANSACTION);
  EXPECT_EQ(TopicTypeFor(v2::MESSAGE_TYPE_UNSPECIFIED), nsv1::TOPIC_MESSAGE_TYPE_NORMAL);
}

TEST(CodecTest, StoredRecordComesBackAsTheDeliveredMessage) {
  store::v1::AppendRecord appended = ToStoreRecord(Valid(), "T", 2, "10.0.0.1:8081", "1.2.3.4");
  EXPECT_EQ(appended.topic(), "T");
  EXPECT_EQ(appended.queue_id(), 2);
  EXPECT_EQ(appended.tag(), "TagA");
  EXPECT_EQ(appended.keys(0), "order-42");

  store::v1::StoredRecord stored;
  stored.set_topic("T");
  stored.set_queue_id(2);
  stored.set_queue_offset(7);
  stored.set_body(appended.body());
  stored.mutable_store_time()->set_seconds(1700000000);
  auto m = FromStoreRecord(stored);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->topic().name(), "T");
  EXPECT_EQ(m->body(), "hello");
  EXPECT_EQ(m->system_properties().message_id(), "0102FC000000011D800B1A46E200000000");
  EXPECT_EQ(m->system_properties().queue_offset(), 7);
  EXPECT_EQ(m->system_properties().delivery_attempt(), 1);
  EXPECT_EQ(m->system_properties().born_host(), "1.2.3.4");
  EXPECT_EQ(m->system_properties().store_host(), "10.0.0.1:8081");
  EXPECT_FALSE(m->system_properties().has_body_digest());  // only v2 delivery adds it
  EXPECT_EQ(m->user_properties().at("source"), "demo");
  SetBodyDigest(&*m);
  EXPECT_EQ(m->system_properties().body_digest().type(), v2::MD5);
  EXPECT_EQ(m->system_properties().body_digest().checksum(), "5D41402ABC4B2A76B9719D911017C592");
}

// The record body is the client's bytes plus the broker's fields (no copy);
// a send carrying delivery-only fields is copied and cleared instead. Both
// must read back as the same stored message.
TEST(CodecTest, BodyWithAppendedBrokerFieldsReadsAsTheClearedCopy) {
  v2::Message plain = Valid();
  v2::Message with_delivery_fields = Valid();
  v2::SystemProperties* sp = with_delivery_fields.mutable_system_properties();
  sp->set_receipt_handle("handle");
  sp->set_queue_offset(5);
  sp->set_delivery_attempt(3);
  v2::Message fast, slow;
  ASSERT_TRUE(
      fast.ParseFromString(ToStoreRecord(plain, "T", 0, "10.0.0.1:8081", "1.2.3.4").body()));
  ASSERT_TRUE(slow.ParseFromString(
      ToStoreRecord(with_delivery_fields, "T", 0, "10.0.0.1:8081", "1.2.3.4").body()));
  EXPECT_EQ(fast.SerializeAsString(), slow.SerializeAsString());
  EXPECT_FALSE(fast.system_properties().has_receipt_handle());
  EXPECT_FALSE(slow.system_properties().has_queue_offset());
  EXPECT_EQ(fast.system_properties().store_host(), "10.0.0.1:8081");
  EXPECT_EQ(fast.system_properties().born_host(), "1.2.3.4");
  EXPECT_EQ(fast.system_properties().message_type(), v2::NORMAL);
  EXPECT_EQ(fast.system_properties().message_id(), "0102FC000000011D800B1A46E200000000");

  // What the client set itself is kept.
  v2::Message own = Valid();
  own.mutable_system_properties()->set_born_host("192.168.1.9");
  own.mutable_system_properties()->set_message_type(v2::FIFO);
  v2::Message read;
  ASSERT_TRUE(read.ParseFromString(ToStoreRecord(own, "T", 0, "b:1", "c:2").body()));
  EXPECT_EQ(read.system_properties().born_host(), "192.168.1.9");
  EXPECT_EQ(read.system_properties().message_type(), v2::FIFO);
  EXPECT_EQ(read.system_properties().store_host(), "b:1");
}

TEST(CodecTest, RetryCopyIsDeliveredUnderItsOriginalTopicWithAttempt) {
  v2::Message original = Valid();
  (*original.mutable_user_properties())[kPropRetryTopic] = "T";
  (*original.mutable_user_properties())[kPropReconsumeTimes] = "2";
  store::v1::StoredRecord stored;
  stored.set_topic("%RETRY%G");
  stored.set_body(original.SerializeAsString());
  auto m = FromStoreRecord(stored);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->topic().name(), "T");
  EXPECT_EQ(m->system_properties().delivery_attempt(), 3);
  EXPECT_EQ(m->user_properties().count(kPropRetryTopic), 0u);
  EXPECT_EQ(m->user_properties().count(kPropReconsumeTimes), 0u);
}

}  // namespace
}  // namespace apogee::broker
