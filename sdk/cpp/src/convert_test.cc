#include "sdk/cpp/src/convert.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk/cpp/src/testing/stored_reference.h"

namespace apogee::sdk {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

Message Valid() {
  Message m;
  m.topic = "T";
  m.body = "x";
  return m;
}

// What the broker reads of EncodeSendEntry(m): the request's one message.
v2::Message Sent(const Message& m, const std::string& id, absl::Time born) {
  const grpc::Slice entry = EncodeSendEntry(m, id, born);
  v2::SendMessageRequest request;
  EXPECT_TRUE(request.ParseFromArray(entry.begin(), static_cast<int>(entry.size())));
  EXPECT_EQ(request.messages_size(), 1);
  return request.messages(0);
}

TEST(ValidateMessageTest, AcceptsAPlainMessage) {
  EXPECT_TRUE(ValidateMessage(Valid(), "message").ok());
}

TEST(ValidateMessageTest, RejectsBadInputNamingFieldAndLimit) {
  Message m = Valid();
  m.topic = "a b";
  EXPECT_THAT(ValidateMessage(m, "message").message(), HasSubstr("message.topic \"a b\""));
  m = Valid();
  m.body.clear();
  EXPECT_THAT(ValidateMessage(m, "message").message(), HasSubstr("message.body is empty"));
  m = Valid();
  m.body.assign(kMaxBodyBytes + 1, 'x');
  EXPECT_THAT(ValidateMessage(m, "message").message(), HasSubstr("4194305 bytes (max 4194304)"));
  m = Valid();
  m.tag = "a|b";
  EXPECT_THAT(ValidateMessage(m, "message").message(), HasSubstr("no '|'"));
  m = Valid();
  m.properties["UNIQ_KEY"] = "x";
  EXPECT_THAT(ValidateMessage(m, "messages[2]").message(),
              HasSubstr("messages[2].properties key \"UNIQ_KEY\" is reserved"));
  m = Valid();
  for (int i = 0; i < 129; ++i) m.properties["p" + std::to_string(i)] = "v";
  EXPECT_THAT(ValidateMessage(m, "message").message(), HasSubstr("129 entries (max 128)"));
  m = Valid();
  m.properties["big"] = std::string(kMaxPropertiesBytes, 'v');
  EXPECT_THAT(ValidateMessage(m, "message").message(), HasSubstr("bytes (max 16384)"));
}

TEST(EncodeSendEntryTest, WritesWhatTheGeneratedSerializerWrites) {
  // Each shape as the generated code would build it (one property at most:
  // the generated serializer writes a map in no fixed order).
  auto expect_same = [](const Message& m, const v2::Message& built) {
    v2::SendMessageRequest request;
    *request.add_messages() = built;
    const grpc::Slice entry = EncodeSendEntry(m, "ID1", absl::FromUnixNanos(100000000005));
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(entry.begin()), entry.size()),
              request.SerializeAsString());
  };
  auto built = [](const Message& m) {
    v2::Message out;
    out.mutable_topic()->set_name(m.topic);
    for (const auto& [key, value] : m.properties) (*out.mutable_user_properties())[key] = value;
    v2::SystemProperties* sp = out.mutable_system_properties();
    if (!m.tag.empty()) sp->set_tag(m.tag);
    for (const std::string& key : m.keys) sp->add_keys(key);
    sp->set_message_id("ID1");
    sp->set_body_encoding(v2::IDENTITY);
    sp->set_message_type(v2::NORMAL);
    sp->mutable_born_timestamp()->set_seconds(100);
    sp->mutable_born_timestamp()->set_nanos(5);
    out.set_body(m.body);
    return out;
  };
  Message plain = Valid();
  expect_same(plain, built(plain));

  Message full = Valid();
  full.tag = "TagA";
  full.keys = {"k1", "", "k3"};
  full.properties["color"] = "red";
  full.body.assign(300, 'b');  // a two-byte length
  expect_same(full, built(full));

  Message fifo = full;
  fifo.message_group = "order-7";
  v2::Message fifo_built = built(fifo);
  fifo_built.mutable_system_properties()->set_message_type(v2::FIFO);
  fifo_built.mutable_system_properties()->set_message_group("order-7");
  expect_same(fifo, fifo_built);

  Message delayed = full;
  delayed.delivery_time = absl::FromUnixSeconds(500);
  v2::Message delayed_built = built(delayed);
  delayed_built.mutable_system_properties()->set_message_type(v2::DELAY);
  delayed_built.mutable_system_properties()->mutable_delivery_timestamp()->set_seconds(500);
  expect_same(delayed, delayed_built);
}

TEST(EncodeSendEntryTest, ManyPropertiesAllArrive) {
  Message m = Valid();
  for (int i = 0; i < 20; ++i) m.properties["p" + std::to_string(i)] = std::to_string(i);
  m.properties["empty"] = "";
  const v2::Message wire = Sent(m, "ID1", absl::FromUnixSeconds(100));
  std::map<std::string, std::string> got(wire.user_properties().begin(),
                                         wire.user_properties().end());
  EXPECT_EQ(got, m.properties);
}

TEST(ConvertTest, RoundTripsThroughV2) {
  Message m = Valid();
  m.tag = "TagA";
  m.keys = {"k1", "k2"};
  m.properties["color"] = "red";
  v2::Message wire = Sent(m, "ID1", absl::FromUnixSeconds(100));
  ReceivedMessage back = FromV2(wire, "broker-a", "127.0.0.1:1");
  EXPECT_EQ(back.topic, "T");
  EXPECT_EQ(back.message_id, "ID1");
  EXPECT_EQ(back.tag, "TagA");
  EXPECT_EQ(back.keys, m.keys);
  EXPECT_EQ(back.properties, m.properties);
  EXPECT_EQ(back.born_time, absl::FromUnixSeconds(100));
  EXPECT_EQ(back.broker, "broker-a");
}

TEST(ConvertTest, AStoredPushedMessageTakesTheBrokersFieldsBesideIt) {
  Message m = Valid();
  m.tag = "TagA";
  m.keys = {"k1"};
  m.properties["color"] = "red";
  m.message_group = "order-7";
  v2::Message wire = Sent(m, "ID1", absl::FromUnixSeconds(100));
  wire.mutable_topic()->set_name("as-sent");  // the field beside it wins
  ::apogee::broker::v1::PushedMessage pushed;
  pushed.set_stored_message(wire.SerializeAsString());
  pushed.set_topic("T");
  pushed.set_queue_id(3);
  pushed.set_queue_offset(42);
  pushed.mutable_store_time()->set_seconds(200);
  pushed.set_delivery_attempt(1);
  pushed.set_receipt_handle("handle-1");
  auto back = FromPushed(pushed, "broker-a", "127.0.0.1:1");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->topic, "T");
  EXPECT_EQ(back->message_id, "ID1");
  EXPECT_EQ(back->tag, "TagA");
  EXPECT_EQ(back->keys, m.keys);
  EXPECT_EQ(back->properties, m.properties);
  EXPECT_EQ(back->body, "x");
  EXPECT_EQ(back->message_group, "order-7");
  EXPECT_EQ(back->queue_id, 3);
  EXPECT_EQ(back->offset, 42);
  EXPECT_EQ(back->born_time, absl::FromUnixSeconds(100));
  EXPECT_EQ(back->store_time, absl::FromUnixSeconds(200));
  EXPECT_EQ(back->delivery_attempt, 1);
  EXPECT_EQ(back->receipt_handle, "handle-1");
  EXPECT_EQ(back->broker, "broker-a");

  pushed.set_stored_message("\xff\xff not a message");
  auto bad = FromPushed(pushed, "broker-a", "127.0.0.1:1");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr("T/3@42 does not parse"));
}

// Both readings of `stored` agree: both fail, or both give every field alike.
void ExpectReadLikeTheGeneratedParser(const std::string& stored, const std::string& what) {
  SCOPED_TRACE(what);
  broker::v1::PushedMessage pushed;
  pushed.set_stored_message(stored);
  pushed.set_topic("T");
  pushed.set_queue_id(3);
  pushed.set_queue_offset(42);
  pushed.mutable_store_time()->set_seconds(200);
  pushed.set_delivery_attempt(2);
  pushed.set_receipt_handle("handle-1");
  const auto want = testing::ParsedThenConverted(pushed, "broker-a", "127.0.0.1:1");
  const auto got = FromPushed(pushed, "broker-a", "127.0.0.1:1");
  ASSERT_EQ(got.ok(), want.ok()) << got.status();
  if (got.ok()) {
    EXPECT_EQ(testing::Difference(*got, *want), "");
  }
}

std::string Serialized(const v2::Message& m) { return m.SerializeAsString(); }

TEST(FromPushedTest, ReadsStoredMessagesAsTheGeneratedParserDoes) {
  Message m = Valid();
  m.tag = "TagA";
  m.keys = {"k1", "", "k3"};
  m.properties["color"] = "red";
  m.properties["size"] = "";
  m.message_group = "order-7";
  const v2::Message full = Sent(m, "ID1", absl::FromUnixNanos(100000000005));
  ExpectReadLikeTheGeneratedParser(Serialized(full), "every field");
  Message delayed = Valid();
  delayed.delay_level = 2;
  ExpectReadLikeTheGeneratedParser(Serialized(Sent(delayed, "ID2", absl::FromUnixSeconds(100))),
                                   "a delay");
  ExpectReadLikeTheGeneratedParser("", "nothing at all");

  // Fields the SDK does not read, known and unknown, of every wire type.
  v2::Message extra = full;
  extra.mutable_system_properties()->set_born_host("10.0.0.1");
  extra.mutable_system_properties()->set_queue_id(9);
  extra.mutable_system_properties()->mutable_body_digest()->set_checksum("abc");
  std::string bytes = Serialized(extra);
  bytes += std::string("\xa8\x06\x07", 3);                    // field 101, varint 7
  bytes += std::string("\xa9\x06", 2) + std::string(8, 'x');  // field 101, fixed64
  bytes += std::string("\xad\x06", 2) + std::string(4, 'x');  // field 101, fixed32
  bytes += std::string("\xab\x06\x08\x01\xac\x06", 6);        // field 101, a group
  ExpectReadLikeTheGeneratedParser(bytes, "unknown and unread fields");

  // A message field given twice is merged; a string given twice keeps the
  // last; a map key given twice keeps the last value.
  auto part = [](const std::string& word, int64_t seconds, int32_t nanos) {
    v2::Message m;
    m.mutable_system_properties()->set_tag(word);
    m.mutable_system_properties()->add_keys(word);
    m.mutable_system_properties()->mutable_born_timestamp()->set_seconds(seconds);
    m.mutable_system_properties()->mutable_born_timestamp()->set_nanos(nanos);
    (*m.mutable_user_properties())["k"] = word;
    m.set_body(word + " body");
    return Serialized(m);
  };
  ExpectReadLikeTheGeneratedParser(part("first", 50, 0) + part("second", 0, 7),
                                   "fields given twice");

  // A known field number with another wire type is an unknown field.
  ExpectReadLikeTheGeneratedParser(std::string("\x18\x05\x20\x01", 4) + Serialized(full),
                                   "system_properties and body as varints");
}

TEST(FromPushedTest, EveryTruncationFailsOrReadsLikeTheGeneratedParser) {
  Message m = Valid();
  m.tag = "TagA";
  m.keys = {"k1"};
  m.properties["color"] = "red";
  m.delivery_time = absl::FromUnixSeconds(500);
  const std::string bytes = Serialized(Sent(m, "ID1", absl::FromUnixSeconds(100)));
  for (size_t n = 0; n < bytes.size(); ++n) {
    ExpectReadLikeTheGeneratedParser(bytes.substr(0, n), absl::StrCat("first ", n, " bytes"));
  }
  // A length past the end, and a length that does not fit an int.
  ExpectReadLikeTheGeneratedParser(std::string("\x22\x05", 2) + "ab", "body length past the end");
  ExpectReadLikeTheGeneratedParser(std::string("\x22\xff\xff\xff\xff\x0f", 6),
                                   "body length 2^32-1");
  ExpectReadLikeTheGeneratedParser(std::string("\x1a\x80\x80\x80\x80\x08", 6),
                                   "system_properties length 2^31");
  ExpectReadLikeTheGeneratedParser(std::string("\x00\x01", 2), "a zero tag");
  ExpectReadLikeTheGeneratedParser(std::string("\x0c", 1), "an end-group tag");
}

TEST(ConvertTest, AMessageGroupMakesAFifoMessage) {
  Message m = Valid();
  m.message_group = "order-7";
  v2::Message wire = Sent(m, "ID1", absl::FromUnixSeconds(100));
  EXPECT_EQ(wire.system_properties().message_type(), v2::FIFO);
  EXPECT_EQ(FromV2(wire, "b", "e").message_group, "order-7");
  EXPECT_EQ(Sent(Valid(), "ID1", absl::FromUnixSeconds(100)).system_properties().message_type(),
            v2::NORMAL);
  m.message_group = " ";
  EXPECT_THAT(ValidateMessage(m, "message").message(), HasSubstr("message.message_group is blank"));
  m.message_group = "order-7";
  m.delay_level = 1;
  EXPECT_THAT(ValidateMessage(m, "message").message(),
              HasSubstr("a FIFO message cannot be delayed"));
}

TEST(ConvertTest, FiltersBecomeV2FilterExpressions) {
  std::map<std::string, FilterExpression> subscriptions;
  subscriptions["T"] = "TagA||TagB";  // a string is a tag expression
  v2::FilterExpression tags = ToV2Filter(subscriptions["T"]);
  EXPECT_EQ(tags.type(), v2::TAG);
  EXPECT_EQ(tags.expression(), "TagA||TagB");
  EXPECT_EQ(ToV2Filter(FilterExpression()).expression(), "*");
  EXPECT_EQ(ToV2Filter(FilterExpression::Tag("")).expression(), "*");
  v2::FilterExpression sql = ToV2Filter(FilterExpression::Sql("a > 5"));
  EXPECT_EQ(sql.type(), v2::SQL);
  EXPECT_EQ(sql.expression(), "a > 5");
  EXPECT_EQ(ToV2Filter(FilterExpression::Sql("")).expression(), "");  // the broker refuses it
}

TEST(ConvertTest, DelayLevelAndDeliveryTimeBecomeADelayMessage) {
  Message m = Valid();
  m.delay_level = 3;  // 10 s
  v2::Message wire = Sent(m, "ID1", absl::FromUnixSeconds(100));
  EXPECT_EQ(wire.system_properties().message_type(), v2::DELAY);
  EXPECT_EQ(wire.system_properties().delivery_timestamp().seconds(), 110);
  EXPECT_EQ(FromV2(wire, "b", "e").delivery_time, absl::FromUnixSeconds(110));
  m.delay_level = 18;
  EXPECT_EQ(
      Sent(m, "ID1", absl::FromUnixSeconds(100)).system_properties().delivery_timestamp().seconds(),
      100 + 7200);
  m = Valid();
  m.delivery_time = absl::FromUnixSeconds(500);
  EXPECT_EQ(
      Sent(m, "ID1", absl::FromUnixSeconds(100)).system_properties().delivery_timestamp().seconds(),
      500);
  EXPECT_FALSE(Sent(Valid(), "ID1", absl::FromUnixSeconds(100))
                   .system_properties()
                   .has_delivery_timestamp());
  m.delay_level = 2;
  EXPECT_THAT(ValidateMessage(m, "message").message(), HasSubstr("both delay_level and"));
  m = Valid();
  m.delay_level = 19;
  EXPECT_THAT(ValidateMessage(m, "message").message(),
              HasSubstr("message.delay_level 19 is out of range [1, 18]"));
}

TEST(ConvertTest, MessageIdsAreUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewMessageId());
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(NewMessageId().size(), 32u);
}

TEST(ConvertTest, MessageIdsAreVersionProcessTimeAndCounterInHex) {
  const std::string a = NewMessageId();
  const std::string b = NewMessageId();
  EXPECT_THAT(a, MatchesRegex("01[0-9A-F]{30}"));
  EXPECT_EQ(a.substr(0, 10), b.substr(0, 10));    // one process
  EXPECT_LE(a.substr(10, 14), b.substr(10, 14));  // time does not go back
  const uint64_t counter_a = std::stoull(a.substr(24), nullptr, 16);
  const uint64_t counter_b = std::stoull(b.substr(24), nullptr, 16);
  EXPECT_EQ((counter_a + 1) & 0xFFFFFFFF, counter_b);
}

// The store keeps one index entry for ids that differ only in their last
// two digits: ids issued in a row share the rest, 256 at a time.
TEST(ConvertTest, MessageIdsIssuedInARowShareAllButTheirLastTwoDigits) {
  std::set<std::string> buckets;
  for (int i = 0; i < 1024; ++i) buckets.insert(NewMessageId().substr(0, 30));
  // 1024 ids span 4 blocks of 256, or 5 when they start inside one.
  EXPECT_LE(buckets.size(), 5u);
  EXPECT_GE(buckets.size(), 4u);
}

}  // namespace
}  // namespace apogee::sdk
