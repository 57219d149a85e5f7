// Admin API integration tests: real apogee-nameserver, apogee-store and
// apogee-broker processes; messages produced and consumed with the v2 API,
// then inspected and moved with apogee.admin.v1.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/clock/proto_time.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

// APOGEE_*_BIN name the binaries (compile definitions, see CMakeLists.txt).
namespace apogee {
namespace {

namespace av1 = ::apogee::admin::v1;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::apogee::testing::V2TestClient;
using ::testing::HasSubstr;
using Message = ::apache::rocketmq::v2::Message;

std::set<std::string> Ids(const std::vector<Message>& messages) {
  std::set<std::string> ids;
  for (const Message& m : messages) ids.insert(m.system_properties().message_id());
  return ids;
}

std::set<std::string> Numbered(const std::string& prefix, int from, int to) {
  std::set<std::string> ids;
  for (int i = from; i < to; ++i) ids.insert(absl::StrCat(prefix, "-", i));
  return ids;
}

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started;
    admin_ = av1::Admin::NewStub(
        grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
    client_ = std::make_unique<V2TestClient>(cluster_.broker_address(), "admin-test@1@0@it");
  }

  void CreateTopic(const std::string& name, int queues) {
    absl::Status created = cluster_.CreateTopic(name, queues);
    ASSERT_TRUE(created.ok()) << created;
  }

  // Sends "<prefix>-i" for i in [from, to), key "k-<prefix>-i".
  void SendRange(const std::string& topic, const std::string& prefix, int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string id = absl::StrCat(prefix, "-", i);
      absl::Status sent =
          client_->Send(topic, id, absl::StrCat("body of ", id), absl::StrCat("k-", id), "TagA");
      ASSERT_TRUE(sent.ok()) << sent;
    }
  }

  // A failed call: its code and a fragment of its message.
  static void ExpectError(const grpc::Status& s, grpc::StatusCode code,
                          const std::string& fragment) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(fragment));
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return context;
  }

  av1::GetGroupProgressResponse Progress(const std::string& group, const std::string& topic) {
    av1::GetGroupProgressRequest request;
    request.set_group(group);
    request.set_topic(topic);
    av1::GetGroupProgressResponse response;
    grpc::Status s = admin_->GetGroupProgress(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  grpc::Status Reset(const av1::ResetOffsetRequest& request, av1::ResetOffsetResponse* response) {
    return admin_->ResetOffset(Context().get(), request, response);
  }

  grpc::Status GetMessage(const std::string& id, const std::string& topic,
                          av1::GetMessageResponse* response) {
    av1::GetMessageRequest request;
    request.set_message_id(id);
    request.set_topic(topic);
    return admin_->GetMessage(Context().get(), request, response);
  }

  // The latest store time among `ids` (looked up by id).
  absl::Time LatestStoreTime(const std::set<std::string>& ids) {
    absl::Time latest = absl::InfinitePast();
    for (const std::string& id : ids) {
      av1::GetMessageResponse response;
      EXPECT_TRUE(GetMessage(id, "", &response).ok()) << id;
      for (const av1::MessageView& m : response.messages()) {
        latest = std::max(latest, FromProtoTimestamp(m.store_time()));
      }
    }
    return latest;
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::unique_ptr<av1::Admin::Stub> admin_;
  std::unique_ptr<V2TestClient> client_;
};

TEST_F(AdminTest, TopicStatsCountMessagesPerQueue) {
  CreateTopic("Stats", 2);
  SendRange("Stats", "s", 0, 6);
  av1::GetTopicStatsRequest request;
  request.set_name("Stats");
  av1::GetTopicStatsResponse stats;
  ASSERT_TRUE(admin_->GetTopicStats(Context().get(), request, &stats).ok());
  EXPECT_EQ(stats.name(), "Stats");
  ASSERT_EQ(stats.queues_size(), 2);
  int64_t total = 0;
  for (const av1::QueueStats& q : stats.queues()) {
    EXPECT_EQ(q.min_offset(), 0);
    total += q.max_offset() - q.min_offset();
    EXPECT_EQ(q.has_last_store_time(), q.max_offset() > 0) << "queue " << q.queue_id();
  }
  EXPECT_EQ(total, 6);
  EXPECT_EQ(stats.messages(), 6);

  request.set_name("NoSuchTopic");
  ExpectError(admin_->GetTopicStats(Context().get(), request, &stats), grpc::StatusCode::NOT_FOUND,
              "NoSuchTopic");
}

TEST_F(AdminTest, GroupProgressShowsLagAndInFlightUntilConsumed) {
  CreateTopic("Lagging", 2);
  SendRange("Lagging", "l", 0, 5);
  av1::GetGroupProgressResponse before = Progress("laggers", "Lagging");
  EXPECT_EQ(before.group(), "laggers");
  EXPECT_EQ(before.consume_mode(), av1::CONSUME_MODE_CLUSTERING);
  ASSERT_EQ(before.queues_size(), 2);
  EXPECT_EQ(before.lag(), 5) << "a new group starts from the earliest message";
  for (const av1::QueueProgress& q : before.queues()) {
    EXPECT_FALSE(q.has_last_consume_time());
    EXPECT_EQ(q.lag(), q.max_offset() - q.committed_offset());
  }

  // Delivered, not acked: still lagging, and in flight.
  std::vector<Message> got = client_->ReceiveAtLeast("laggers", "Lagging", 5, /*ack=*/false);
  ASSERT_EQ(Ids(got), Numbered("l", 0, 5));
  av1::GetGroupProgressResponse delivered = Progress("laggers", "Lagging");
  int64_t in_flight = 0;
  for (const av1::QueueProgress& q : delivered.queues()) in_flight += q.in_flight();
  EXPECT_EQ(in_flight, 5);
  EXPECT_EQ(delivered.lag(), 5);

  const absl::Time acked_after = absl::Now() - absl::Seconds(1);
  for (const Message& m : got) ASSERT_TRUE(client_->Ack("laggers", m).ok());
  av1::GetGroupProgressResponse after = Progress("laggers", "Lagging");
  EXPECT_EQ(after.lag(), 0);
  for (const av1::QueueProgress& q : after.queues()) {
    EXPECT_EQ(q.committed_offset(), q.max_offset());
    EXPECT_EQ(q.in_flight(), 0);
    if (q.max_offset() > 0) {
      ASSERT_TRUE(q.has_last_consume_time()) << "queue " << q.queue_id();
      EXPECT_GE(FromProtoTimestamp(q.last_consume_time()), acked_after);
    }
  }
  // Without a topic: every topic the group has progress on.
  av1::GetGroupProgressResponse all = Progress("laggers", "");
  EXPECT_GE(all.queues_size(), 1);
  for (const av1::QueueProgress& q : all.queues()) EXPECT_EQ(q.topic(), "Lagging");

  av1::GetGroupProgressRequest bad;
  bad.set_group("bad group");
  av1::GetGroupProgressResponse ignored;
  ExpectError(admin_->GetGroupProgress(Context().get(), bad, &ignored),
              grpc::StatusCode::INVALID_ARGUMENT, "bad group");
}

TEST_F(AdminTest, ResetToTimeMakesTheGroupReconsumeFromThatTime) {
  CreateTopic("Replay", 2);
  SendRange("Replay", "old", 0, 4);
  ASSERT_EQ(Ids(client_->ReceiveAtLeast("replayers", "Replay", 4, true)), Numbered("old", 0, 4));
  // Store times have millisecond resolution: let the clock move past the
  // old messages before sending the new ones.
  const absl::Time old_latest = LatestStoreTime(Numbered("old", 0, 4));
  ASSERT_TRUE(PollUntil([&] { return absl::Now() > old_latest + absl::Milliseconds(5); },
                        absl::Seconds(5), absl::Milliseconds(1)));
  const absl::Time reset_to = absl::Now();
  SendRange("Replay", "new", 0, 3);
  ASSERT_EQ(Ids(client_->ReceiveAtLeast("replayers", "Replay", 3, true)), Numbered("new", 0, 3));
  EXPECT_EQ(Progress("replayers", "Replay").lag(), 0);

  av1::ResetOffsetRequest request;
  request.set_group("replayers");
  request.set_topic("Replay");
  *request.mutable_to_time() = ToProtoTimestamp(reset_to);
  av1::ResetOffsetResponse response;
  grpc::Status s = Reset(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.changes_size(), 2);
  int64_t rewound = 0;
  for (const av1::OffsetChange& c : response.changes()) {
    EXPECT_LE(c.new_offset(), c.old_offset());
    rewound += c.old_offset() - c.new_offset();
  }
  EXPECT_EQ(rewound, 3);
  EXPECT_EQ(Progress("replayers", "Replay").lag(), 3);

  // Delivery resumes from the reset point at once: the new messages again,
  // none of the old ones.
  std::vector<Message> again = client_->ReceiveAtLeast("replayers", "Replay", 3, true);
  EXPECT_EQ(Ids(again), Numbered("new", 0, 3));
  auto more = client_->ReceiveOnce("replayers", "Replay", 32, absl::Seconds(1));
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty());
}

TEST_F(AdminTest, ResetToOffsetIsClampedAndDropsInFlight) {
  CreateTopic("Rewind", 1);
  SendRange("Rewind", "r", 0, 4);
  std::vector<Message> pending = client_->ReceiveAtLeast("rewinders", "Rewind", 4, false);
  ASSERT_EQ(pending.size(), 4u);

  av1::ResetOffsetRequest request;
  request.set_group("rewinders");
  request.set_topic("Rewind");
  request.set_to_offset(2);
  request.add_queue_ids(0);
  av1::ResetOffsetResponse response;
  grpc::Status s = Reset(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.changes_size(), 1);
  EXPECT_EQ(response.changes(0).new_offset(), 2);
  // The deliveries in flight were dropped: their handles no longer ack.
  EXPECT_FALSE(client_->Ack("rewinders", pending[0]).ok());
  std::vector<Message> again = client_->ReceiveAtLeast("rewinders", "Rewind", 2, true);
  EXPECT_EQ(Ids(again), Numbered("r", 2, 4));

  request.set_to_offset(1000);  // past the end: clamped to max
  s = Reset(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.changes(0).old_offset(), 4);
  EXPECT_EQ(response.changes(0).new_offset(), 4);

  // Bad input: errors name the input and the limit.
  request.clear_queue_ids();
  request.add_queue_ids(5);
  ExpectError(Reset(request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "queue_ids entry 5 is out of range for topic \"Rewind\" (allowed: 0..0)");
  request.clear_queue_ids();
  request.clear_target();
  ExpectError(Reset(request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "to_time or to_offset");
  request.set_to_offset(-1);
  ExpectError(Reset(request, &response), grpc::StatusCode::INVALID_ARGUMENT, "to_offset=-1");
  request.set_topic("Missing");
  request.set_to_offset(0);
  ExpectError(Reset(request, &response), grpc::StatusCode::NOT_FOUND, "Missing");
}

TEST_F(AdminTest, BroadcastingResetMovesEveryMember) {
  CreateTopic("Bulletin", 1);
  av1::CreateGroupRequest create;
  create.mutable_group()->set_name("listeners");
  create.mutable_group()->set_consume_mode(av1::CONSUME_MODE_BROADCASTING);
  av1::CreateGroupResponse created;
  ASSERT_TRUE(admin_->CreateGroup(Context().get(), create, &created).ok());
  SendRange("Bulletin", "b", 0, 3);
  V2TestClient member_a(cluster_.broker_address(), "member-a@1@0@x");
  V2TestClient member_b(cluster_.broker_address(), "member-b@2@0@y");
  for (V2TestClient* member : {&member_a, &member_b}) {
    ASSERT_EQ(Ids(member->ReceiveAtLeast("listeners", "Bulletin", 3, true)), Numbered("b", 0, 3));
  }
  av1::GetGroupProgressResponse progress = Progress("listeners", "Bulletin");
  EXPECT_EQ(progress.consume_mode(), av1::CONSUME_MODE_BROADCASTING);
  ASSERT_EQ(progress.queues_size(), 2) << "one queue, two members";
  EXPECT_NE(progress.queues(0).progress_key(), progress.queues(1).progress_key());
  EXPECT_EQ(progress.lag(), 0);

  av1::ResetOffsetRequest request;
  request.set_group("listeners");
  request.set_topic("Bulletin");
  request.set_to_offset(0);
  av1::ResetOffsetResponse response;
  grpc::Status s = Reset(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.changes_size(), 2);
  for (V2TestClient* member : {&member_a, &member_b}) {
    EXPECT_EQ(Ids(member->ReceiveAtLeast("listeners", "Bulletin", 3, true)), Numbered("b", 0, 3));
  }
}

TEST_F(AdminTest, MessagesByIdKeyAndTime) {
  CreateTopic("Lookup", 2);
  const absl::Time before = absl::Now() - absl::Seconds(1);
  SendRange("Lookup", "q", 0, 5);

  av1::GetMessageResponse got;
  ASSERT_TRUE(GetMessage("q-3", "", &got).ok());
  ASSERT_EQ(got.messages_size(), 1);
  const av1::MessageView& view = got.messages(0);
  EXPECT_EQ(view.topic(), "Lookup");
  EXPECT_EQ(view.message_id(), "q-3");
  EXPECT_EQ(view.body(), "body of q-3");
  EXPECT_EQ(view.tag(), "TagA");
  EXPECT_THAT(view.keys(), ::testing::ElementsAre("k-q-3"));
  EXPECT_EQ(view.properties().at("origin"), "v2_test_client");
  EXPECT_GE(FromProtoTimestamp(view.store_time()), before);
  EXPECT_FALSE(view.born_host().empty());

  // An unknown topic filter, an unknown id: NOT_FOUND naming them.
  ExpectError(GetMessage("q-3", "Stats", &got), grpc::StatusCode::NOT_FOUND, "Stats");
  ExpectError(GetMessage("never-sent", "", &got), grpc::StatusCode::NOT_FOUND, "never-sent");

  av1::FindMessagesRequest find;
  find.set_topic("Lookup");
  find.set_key("k-q-1");
  av1::FindMessagesResponse found;
  grpc::Status s = admin_->FindMessages(Context().get(), find, &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(found.messages_size(), 1);
  EXPECT_EQ(found.messages(0).message_id(), "q-1");
  EXPECT_FALSE(found.truncated());

  find.clear_key();
  *find.mutable_from() = ToProtoTimestamp(before);
  s = admin_->FindMessages(Context().get(), find, &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::set<std::string> ids;
  for (const av1::MessageView& m : found.messages()) ids.insert(m.message_id());
  EXPECT_EQ(ids, Numbered("q", 0, 5));
  find.set_max_messages(2);
  s = admin_->FindMessages(Context().get(), find, &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(found.messages_size(), 2);
  EXPECT_TRUE(found.truncated());
  *find.mutable_to() = ToProtoTimestamp(before);  // empty range
  ExpectError(admin_->FindMessages(Context().get(), find, &found),
              grpc::StatusCode::INVALID_ARGUMENT, "is empty");
  find.clear_to();
  find.set_max_messages(5000);
  ExpectError(admin_->FindMessages(Context().get(), find, &found),
              grpc::StatusCode::INVALID_ARGUMENT,
              "max_messages=5000 is out of range (allowed: 1..1000");
  find.set_max_messages(0);
  find.clear_from();
  ExpectError(admin_->FindMessages(Context().get(), find, &found),
              grpc::StatusCode::INVALID_ARGUMENT, "neither key nor from");
}

TEST_F(AdminTest, BrokerStatusAndConfig) {
  CreateTopic("Status", 1);
  SendRange("Status", "st", 0, 2);
  av1::GetBrokerStatusResponse status;
  ASSERT_TRUE(PollUntil(
      [&] {
        status.Clear();
        grpc::Status s = admin_->GetBrokerStatus(Context().get(), {}, &status);
        return s.ok() && status.nameservers_size() == 1 && status.nameservers(0).registered();
      },
      absl::Seconds(10)));
  EXPECT_EQ(status.cluster_name(), "DefaultCluster");
  EXPECT_EQ(status.broker_name(), "broker-a");
  EXPECT_EQ(status.broker_id(), 0);
  EXPECT_EQ(status.endpoint(), cluster_.broker_address());
  EXPECT_FALSE(status.version().empty());
  EXPECT_LE(FromProtoTimestamp(status.start_time()), absl::Now());
  EXPECT_GT(FromProtoTimestamp(status.start_time()), absl::Now() - absl::Minutes(5));
  EXPECT_GE(status.topics(), 1);
  EXPECT_EQ(status.nameservers(0).address(), cluster_.nameserver_address());
  EXPECT_GE(status.store().at("appended_records"), 2);
  EXPECT_GT(status.store().at("commit_log_max_offset"), 0);

  av1::GetBrokerConfigResponse config;
  grpc::Status s = admin_->GetBrokerConfig(Context().get(), {}, &config);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(config.config().at("broker_name"), "broker-a");
  EXPECT_EQ(config.config().at("max_delivery_attempts"), "3");  // LocalCluster's flag
  EXPECT_EQ(config.config().at("min_invisible_time"), "1s");
  EXPECT_EQ(config.config().count("flagfile"), 0u) << "absl's own flags are not the broker's";
}

}  // namespace
}  // namespace apogee
