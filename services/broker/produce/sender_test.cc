#include "services/broker/produce/sender.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

using ::testing::HasSubstr;

v2::Message Message(const std::string& topic, const std::string& id, const std::string& body) {
  v2::Message m;
  m.mutable_topic()->set_name(topic);
  m.mutable_system_properties()->set_message_id(id);
  m.set_body(body);
  return m;
}

TopicConfig Topic(int queues) {
  TopicConfig t;
  t.set_name("T");
  t.set_read_queues(queues);
  t.set_write_queues(queues);
  t.set_permission(nameserver::v1::TOPIC_PERMISSION_READ_WRITE);
  return t;
}

SendOrigin Origin() { return SendOrigin{"T", "10.0.0.9:5555", "127.0.0.1:8081", {}}; }

TEST(CheckSendRequestTest, RefusesAnEmptyCallAndMixedTopics) {
  v2::SendMessageRequest empty;
  EXPECT_EQ(ToV2Code(CheckSendRequest(empty)), v2::MESSAGE_CORRUPTED);

  v2::SendMessageRequest mixed;
  *mixed.add_messages() = Message("A", "id-1", "x");
  *mixed.add_messages() = Message("B", "id-2", "x");
  const absl::Status s = CheckSendRequest(mixed);
  EXPECT_EQ(ToV2Code(s), v2::MESSAGE_CORRUPTED);
  EXPECT_THAT(s.message(), HasSubstr("\"A\" and \"B\""));

  v2::SendMessageRequest one_topic;
  *one_topic.add_messages() = Message("A", "id-1", "x");
  *one_topic.add_messages() = Message("A", "id-2", "x");
  EXPECT_TRUE(CheckSendRequest(one_topic).ok());
}

TEST(PlanSendTest, EncodesGoodMessagesAndNamesTheBadOneByIndex) {
  v2::SendMessageRequest request;
  *request.add_messages() = Message("T", "id-0", "first");
  *request.add_messages() = Message("T", "id-1", "");  // MESSAGE_BODY_EMPTY
  *request.add_messages() = Message("T", "id-2", "third");
  std::atomic<uint32_t> round_robin{0};
  SendPlan plan = PlanSend(request, Topic(4), Origin(), MessageLimits{}, absl::Now(), round_robin);

  ASSERT_EQ(plan.statuses.size(), 3u);
  EXPECT_TRUE(plan.statuses[0].ok());
  EXPECT_EQ(ToV2Code(plan.statuses[1]), v2::MESSAGE_BODY_EMPTY);
  EXPECT_THAT(plan.statuses[1].message(), HasSubstr("messages[1]"));
  EXPECT_TRUE(plan.statuses[2].ok());
  EXPECT_EQ(plan.record_index, (std::vector<int>{0, 2}));
  ASSERT_EQ(plan.records.size(), 2u);
  EXPECT_EQ(plan.body_bytes, 10);
  EXPECT_EQ(plan.records[1].message_id(), "id-2");
  EXPECT_EQ(plan.records[1].topic(), "T");
  // One queue for the send's messages (stored end to end); the stored body
  // is the message with the broker's fields filled in.
  EXPECT_EQ(plan.records[0].queue_id(), plan.records[1].queue_id());
  v2::Message stored;
  ASSERT_TRUE(stored.ParseFromString(plan.records[1].body()));
  EXPECT_EQ(stored.body(), "third");
  EXPECT_EQ(stored.system_properties().store_host(), "127.0.0.1:8081");
  EXPECT_EQ(stored.system_properties().born_host(), "10.0.0.9:5555");
}

TEST(EncodedMessagesTest, FindsEachMessageAsTheClientEncodedIt) {
  v2::SendMessageRequest request;
  *request.add_messages() = Message("T", "id-0", "first");
  *request.add_messages() = Message("T", "id-1", std::string(300, 'x'));  // a 2-byte length
  (*request.mutable_messages(1)->mutable_user_properties())["k"] = "v";
  const std::string bytes = request.SerializeAsString();
  std::vector<absl::string_view> encoded = EncodedMessages(bytes, 2);
  ASSERT_EQ(encoded.size(), 2u);
  EXPECT_EQ(encoded[0], request.messages(0).SerializeAsString());
  EXPECT_EQ(encoded[1], request.messages(1).SerializeAsString());
  // Anything that does not hold exactly the messages given: none found.
  EXPECT_TRUE(EncodedMessages(bytes, 3).empty());
  EXPECT_TRUE(EncodedMessages(bytes.substr(0, bytes.size() - 1), 2).empty());
  EXPECT_TRUE(EncodedMessages("\xff\xff\xff", 0).empty());
  EXPECT_TRUE(EncodedMessages("", 0).empty());
}

TEST(PlanSendTest, AMessageIsStoredAsTheClientEncodedIt) {
  // The body field first, an order protobuf never writes: only the client's
  // own bytes start that way.
  v2::Message body_first;
  body_first.set_body("first");
  v2::Message rest = Message("T", "id-0", "");
  rest.mutable_system_properties()->set_tag("TagA");
  const std::string client = body_first.SerializeAsString() + rest.SerializeAsString();
  ASSERT_LT(client.size(), 128u);  // a one-byte length below
  const std::string bytes = std::string(1, '\x0A') + static_cast<char>(client.size()) + client;
  v2::SendMessageRequest request;
  ASSERT_TRUE(request.ParseFromString(bytes));
  SendOrigin origin = Origin();
  origin.encoded = EncodedMessages(bytes, 1);
  ASSERT_EQ(origin.encoded.size(), 1u);
  EXPECT_EQ(origin.encoded[0], client);

  std::atomic<uint32_t> round_robin{0};
  SendPlan plan = PlanSend(request, Topic(4), origin, MessageLimits{}, absl::Now(), round_robin);
  ASSERT_EQ(plan.records.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(plan.records[0].body(), client));
  v2::Message stored;
  ASSERT_TRUE(stored.ParseFromString(plan.records[0].body()));
  EXPECT_EQ(stored.body(), "first");
  EXPECT_EQ(stored.system_properties().tag(), "TagA");
  EXPECT_EQ(stored.system_properties().store_host(), "127.0.0.1:8081");
  // Without it the message is encoded again, in field order.
  SendPlan again = PlanSend(request, Topic(4), Origin(), MessageLimits{}, absl::Now(), round_robin);
  ASSERT_EQ(again.records.size(), 1u);
  EXPECT_FALSE(absl::StartsWith(again.records[0].body(), client));
  v2::Message reencoded;
  ASSERT_TRUE(reencoded.ParseFromString(again.records[0].body()));
  EXPECT_EQ(reencoded.SerializeAsString(), stored.SerializeAsString());
}

TEST(PlanSendTest, EachSendTakesTheNextQueueForAllItsMessages) {
  v2::SendMessageRequest request;
  for (int i = 0; i < 5; ++i)
    *request.add_messages() = Message("T", "id-" + std::to_string(i), "x");
  std::atomic<uint32_t> round_robin{0};
  std::vector<int32_t> queues_by_send;
  for (int send = 0; send < 4; ++send) {
    SendPlan plan =
        PlanSend(request, Topic(4), Origin(), MessageLimits{}, absl::Now(), round_robin);
    ASSERT_EQ(plan.records.size(), 5u);
    for (const auto& r : plan.records) EXPECT_EQ(r.queue_id(), plan.records[0].queue_id());
    queues_by_send.push_back(plan.records[0].queue_id());
  }
  EXPECT_EQ(queues_by_send, (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(PlanSendTest, OneMessageGroupGoesToOneQueue) {
  v2::SendMessageRequest request;
  for (int i = 0; i < 16; ++i) {
    v2::Message m = Message("T", "id-" + std::to_string(i), "x");
    m.mutable_system_properties()->set_message_group("order-7");
    *request.add_messages() = std::move(m);
  }
  std::atomic<uint32_t> round_robin{0};
  SendPlan plan = PlanSend(request, Topic(8), Origin(), MessageLimits{}, absl::Now(), round_robin);
  std::set<int32_t> queues;
  for (const auto& r : plan.records) queues.insert(r.queue_id());
  EXPECT_EQ(plan.records.size(), 16u);
  EXPECT_EQ(queues.size(), 1u);
  EXPECT_EQ(round_robin.load(), 0u);  // FIFO sends do not move the round robin
}

v2::SendMessageRequest ThreeWithBadMiddle(SendPlan* plan) {
  v2::SendMessageRequest request;
  *request.add_messages() = Message("T", "id-0", "a");
  *request.add_messages() = Message("T", "id-1", "");
  *request.add_messages() = Message("T", "id-2", "c");
  std::atomic<uint32_t> round_robin{0};
  *plan = PlanSend(request, Topic(1), Origin(), MessageLimits{}, absl::Now(), round_robin);
  return request;
}

TEST(AnswerSendTest, StoredMessagesGetTheirOffsetsInRequestOrder) {
  SendPlan plan;
  const v2::SendMessageRequest request = ThreeWithBadMiddle(&plan);
  std::vector<store::v1::AppendResult> results(2);
  results[0].set_queue_offset(40);
  results[1].set_queue_offset(41);
  v2::SendMessageResponse response;
  const absl::Status top = AnswerSend(request, std::move(plan), results, "", &response);

  EXPECT_EQ(ToV2Code(top), v2::MULTIPLE_RESULTS);
  ASSERT_EQ(response.entries_size(), 3);
  EXPECT_EQ(response.entries(0).status().code(), v2::OK);
  EXPECT_EQ(response.entries(0).offset(), 40);
  EXPECT_EQ(response.entries(0).message_id(), "id-0");
  EXPECT_EQ(response.entries(1).status().code(), v2::MESSAGE_BODY_EMPTY);
  EXPECT_EQ(response.entries(2).status().code(), v2::OK);
  EXPECT_EQ(response.entries(2).offset(), 41);
}

TEST(AnswerSendTest, SyncReplicationTimeoutIsSlavePersistenceTimeoutNamingThePolicy) {
  SendPlan plan;
  const v2::SendMessageRequest request = ThreeWithBadMiddle(&plan);
  v2::SendMessageResponse response;
  const absl::Status top =
      AnswerSend(request, std::move(plan), absl::AbortedError("2 of 1 in-sync replicas"),
                 "min_insync_replicas=2 replication_timeout=3s", &response);
  EXPECT_EQ(ToV2Code(top), v2::MULTIPLE_RESULTS);
  EXPECT_EQ(response.entries(0).status().code(), v2::SLAVE_PERSISTENCE_TIMEOUT);
  EXPECT_THAT(response.entries(0).status().message(), HasSubstr("min_insync_replicas=2"));
  EXPECT_EQ(response.entries(1).status().code(), v2::MESSAGE_BODY_EMPTY);
  EXPECT_EQ(response.entries(2).status().code(), v2::SLAVE_PERSISTENCE_TIMEOUT);
}

TEST(AnswerSendTest, StoreRefusalNamesTheClientsMessageNotTheRecord) {
  SendPlan plan;
  const v2::SendMessageRequest request = ThreeWithBadMiddle(&plan);
  v2::SendMessageResponse response;
  // Record 1 of the append is messages[2] of the call.
  const absl::Status top =
      AnswerSend(request, std::move(plan),
                 absl::InvalidArgumentError("batch[1].keys has 40 keys (max 32)"), "", &response);
  EXPECT_EQ(ToV2Code(top), v2::MULTIPLE_RESULTS);
  EXPECT_EQ(response.entries(2).status().code(), v2::BAD_REQUEST);
  EXPECT_THAT(response.entries(2).status().message(), HasSubstr("messages[2]"));
}

TEST(AnswerSendTest, OneStatusForACallWhoseMessagesAgree) {
  v2::SendMessageRequest request;
  *request.add_messages() = Message("T", "id-0", "a");
  std::atomic<uint32_t> round_robin{0};
  SendPlan plan = PlanSend(request, Topic(1), Origin(), MessageLimits{}, absl::Now(), round_robin);
  v2::SendMessageResponse response;
  const absl::Status top = AnswerSend(
      request, std::move(plan), absl::UnavailableError("store append stream ended"), "", &response);
  EXPECT_EQ(top.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(response.entries(0).status().code(), ToV2Code(top));
}

}  // namespace
}  // namespace apogee::broker
