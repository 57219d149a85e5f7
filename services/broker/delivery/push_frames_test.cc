#include "services/broker/delivery/push_frames.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace apogee::broker {
namespace {

StoredDelivery Stored(int64_t offset, const std::string& body) {
  StoredDelivery d;
  d.record.set_topic("T");
  d.record.set_queue_id(2);
  d.record.set_queue_offset(offset);
  d.record.mutable_store_time()->set_seconds(100 + offset);
  d.record.mutable_store_time()->set_nanos(5000000);
  d.record.set_body(body);
  d.receipt_handle = "handle-" + std::to_string(offset);
  return d;
}

v2::Message Decoded(const std::string& body) {
  v2::Message m;
  m.mutable_topic()->set_name("T");
  m.mutable_system_properties()->set_message_id("id-" + body.substr(0, 4));
  m.mutable_system_properties()->set_delivery_attempt(2);
  m.mutable_system_properties()->set_receipt_handle("retry-handle");
  m.set_body(body);
  return m;
}

// A stored delivery as the generated code would build it.
pushv1::PushedMessage StoredAsMessage(const StoredDelivery& d) {
  pushv1::PushedMessage out;
  out.set_delivery_attempt(1);
  out.set_receipt_handle(d.receipt_handle);
  out.set_stored_message(d.record.body());
  out.set_topic(d.record.topic());
  out.set_queue_id(d.record.queue_id());
  out.set_queue_offset(d.record.queue_offset());
  *out.mutable_store_time() = d.record.store_time();
  return out;
}

std::string Bytes(const Encoded<pushv1::ConsumeResponse>& frame) {
  return std::string(reinterpret_cast<const char*>(frame.bytes.begin()), frame.bytes.size());
}

pushv1::ConsumeResponse Parsed(const Encoded<pushv1::ConsumeResponse>& frame) {
  pushv1::ConsumeResponse response;
  EXPECT_TRUE(response.ParseFromString(Bytes(frame)));
  EXPECT_TRUE(response.has_deliveries());
  return response;
}

TEST(EncodeDeliveriesTest, WritesWhatTheGeneratedSerializerWrites) {
  std::vector<StoredDelivery> stored;
  stored.push_back(Stored(7, "stored-bytes"));
  StoredDelivery bare;  // no topic, queue 0, offset 0, no store time, empty body
  bare.receipt_handle = "h";
  stored.push_back(bare);
  StoredDelivery before_1970 = Stored(-300, std::string(300, 'z'));  // a two-byte length
  before_1970.record.mutable_store_time()->set_nanos(-1);
  stored.push_back(before_1970);

  PopEngine::Popped popped;
  popped.messages.push_back(Decoded("first decoded"));
  popped.stored = stored;
  pushv1::ConsumeResponse expected;
  *expected.mutable_deliveries()->add_messages() = ToPushedMessage(Decoded("first decoded"));
  for (const StoredDelivery& d : stored) {
    *expected.mutable_deliveries()->add_messages() = StoredAsMessage(d);
  }

  auto frames = EncodeDeliveries(std::move(popped), 1 << 20);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(Bytes(frames[0]), expected.SerializeAsString());

  const pushv1::ConsumeResponse got = Parsed(frames[0]);
  ASSERT_EQ(got.deliveries().messages_size(), 4);
  const pushv1::PushedMessage& m = got.deliveries().messages(1);
  EXPECT_FALSE(m.has_message());
  EXPECT_EQ(m.stored_message(), "stored-bytes");
  EXPECT_EQ(m.topic(), "T");
  EXPECT_EQ(m.queue_id(), 2);
  EXPECT_EQ(m.queue_offset(), 7);
  EXPECT_EQ(m.store_time().seconds(), 107);
  EXPECT_EQ(m.delivery_attempt(), 1);
  EXPECT_EQ(m.receipt_handle(), "handle-7");
  EXPECT_TRUE(got.deliveries().messages(2).has_store_time());  // set, though zero
}

TEST(EncodeDeliveriesTest, NothingPoppedIsNoFrame) {
  EXPECT_TRUE(EncodeDeliveries(PopEngine::Popped(), 1 << 20).empty());
  EXPECT_TRUE(PackFrames({}, 1 << 20).empty());
}

TEST(EncodeDeliveriesTest, FramesCloseBeforeTheLimitInBothForms) {
  const std::string kb(1000, 'x');
  PopEngine::Popped popped;
  popped.messages.push_back(Decoded(kb));
  popped.messages.push_back(Decoded(kb));
  for (int i = 0; i < 3; ++i) popped.stored.push_back(Stored(i, kb));
  popped.stored.push_back(Stored(3, std::string(5000, 'y')));  // over the limit: alone
  auto frames = EncodeDeliveries(std::move(popped), 2500);
  ASSERT_EQ(frames.size(), 4u);
  std::vector<pushv1::ConsumeResponse> parsed;
  for (const auto& frame : frames) parsed.push_back(Parsed(frame));
  const auto& first = parsed[0].deliveries();
  ASSERT_EQ(first.messages_size(), 2);  // the two decoded ones
  EXPECT_TRUE(first.messages(0).has_message());
  EXPECT_EQ(first.messages(0).delivery_attempt(), 2);
  EXPECT_EQ(first.messages(0).receipt_handle(), "retry-handle");
  EXPECT_EQ(parsed[1].deliveries().messages_size(), 2);
  EXPECT_EQ(parsed[2].deliveries().messages_size(), 1);
  ASSERT_EQ(parsed[3].deliveries().messages_size(), 1);
  EXPECT_EQ(parsed[3].deliveries().messages(0).stored_message().size(), 5000u);
  for (const auto& response : parsed) {
    if (response.deliveries().messages_size() > 1) {
      EXPECT_LE(response.deliveries().ByteSizeLong(), 2510u) << "a frame passed its limit";
    }
  }
}

TEST(PackFramesTest, DecodedMessagesGoInFramesUnderTheLimit) {
  const std::string kb(1000, 'x');
  std::vector<v2::Message> messages;
  for (int i = 0; i < 5; ++i) messages.push_back(Decoded(kb));
  auto frames = PackFrames(std::move(messages), 2500);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].size(), 2);
  EXPECT_EQ(frames[1].size(), 2);
  EXPECT_EQ(frames[2].size(), 1);
  EXPECT_EQ(frames[0][0].message().body(), kb);
  EXPECT_EQ(frames[0][0].receipt_handle(), "retry-handle");
}

}  // namespace
}  // namespace apogee::broker
