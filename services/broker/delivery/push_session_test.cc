#include "services/broker/delivery/push_session.h"

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

TEST(PackFramesTest, AStoredDeliveryKeepsItsBodyAndGetsTheRecordsFieldsBeside) {
  PopEngine::Popped popped;
  popped.stored.push_back(Stored(7, "stored-bytes"));
  auto frames = PackFrames(std::move(popped), 1 << 20);
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].size(), 1);
  const pushv1::PushedMessage& m = frames[0][0];
  EXPECT_FALSE(m.has_message());
  EXPECT_EQ(m.stored_message(), "stored-bytes");
  EXPECT_EQ(m.topic(), "T");
  EXPECT_EQ(m.queue_id(), 2);
  EXPECT_EQ(m.queue_offset(), 7);
  EXPECT_EQ(m.store_time().seconds(), 107);
  EXPECT_EQ(m.delivery_attempt(), 1);
  EXPECT_EQ(m.receipt_handle(), "handle-7");
}

TEST(PackFramesTest, FramesCloseBeforeTheLimitInBothForms) {
  const std::string kb(1000, 'x');
  PopEngine::Popped popped;
  popped.messages.push_back(Decoded(kb));
  popped.messages.push_back(Decoded(kb));
  for (int i = 0; i < 3; ++i) popped.stored.push_back(Stored(i, kb));
  popped.stored.push_back(Stored(3, std::string(5000, 'y')));  // over the limit: alone
  auto frames = PackFrames(std::move(popped), 2500);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].size(), 2);  // the two decoded ones
  EXPECT_TRUE(frames[0][0].has_message());
  EXPECT_EQ(frames[0][0].delivery_attempt(), 2);
  EXPECT_EQ(frames[0][0].receipt_handle(), "retry-handle");
  EXPECT_EQ(frames[1].size(), 2);
  EXPECT_EQ(frames[2].size(), 1);
  EXPECT_EQ(frames[3].size(), 1);
  EXPECT_EQ(frames[3][0].stored_message().size(), 5000u);
  for (const auto& frame : frames) {
    int64_t bytes = 0;
    for (const pushv1::PushedMessage& m : frame) bytes += static_cast<int64_t>(m.ByteSizeLong());
    if (frame.size() > 1) {
      EXPECT_LE(bytes, 2600) << "a frame passed its limit";
    }
  }
}

}  // namespace
}  // namespace apogee::broker
