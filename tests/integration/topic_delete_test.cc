// Deleting a topic, against real apogee-nameserver, apogee-store and
// apogee-broker processes: a topic created again under the name serves only
// its new messages, to a new group and to a group that consumed the old
// ones, also after a store restart; a delivery in flight across the delete
// cannot be acked; retention reclaims the old segments.
#include <filesystem>
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
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

// APOGEE_*_BIN name the binaries (compile definitions, see CMakeLists.txt).
namespace apogee {
namespace {

using ::apogee::testing::MessageIds;
using Message = ::apache::rocketmq::v2::Message;

constexpr char kTopic[] = "Orders";

std::set<std::string> Numbered(const std::string& prefix, int n) {
  std::set<std::string> ids;
  for (int i = 0; i < n; ++i) ids.insert(absl::StrCat(prefix, "-", i));
  return ids;
}

class TopicDeleteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 64 KiB segments (bodies up to 16 KiB fit) and a 2 s retention checked
    // 5 times a second, so old segments go within the test's time.
    cluster_.set_store_flags({"--segment_size=64KiB", "--max_body_size=16KiB", "--retention=2s",
                              "--retention_check_interval=200ms"});
    absl::Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started;
    admin_ = admin::v1::Admin::NewStub(
        grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
    client_ =
        std::make_unique<testing::V2TestClient>(cluster_.broker_address(), "topic-delete@1@0@it");
  }

  void CreateTopic(const std::string& name) {
    absl::Status created = cluster_.CreateTopic(name, 2);
    ASSERT_TRUE(created.ok()) << created;
  }

  // Sends "<prefix>-i" for i in [0, n) with `size`-byte bodies.
  void Send(const std::string& topic, const std::string& prefix, int n, size_t size) {
    for (int i = 0; i < n; ++i) {
      const std::string id = absl::StrCat(prefix, "-", i);
      absl::Status sent = client_->Send(topic, id, std::string(size, 'x'));
      ASSERT_TRUE(sent.ok()) << id << ": " << sent;
    }
  }

  // Receives (and acks) until `want` came, then polls once more to prove
  // nothing else is left for the group.
  std::set<std::string> ReceiveAll(const std::string& group, size_t want) {
    std::set<std::string> ids =
        MessageIds(client_->ReceiveAtLeast(group, kTopic, static_cast<int>(want), /*ack=*/true));
    auto more = client_->ReceiveOnce(group, kTopic, 32, absl::Milliseconds(500));
    EXPECT_TRUE(more.ok()) << more.status();
    if (more.ok()) {
      for (const std::string& id : MessageIds(*more)) ids.insert(id);
    }
    return ids;
  }

  // The commit-log segment files of the store.
  std::set<std::string> Segments() {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator(cluster_.dir() + "/store-data/commitlog", ec)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  // True when the newest segment is not one of `old` and holds little yet.
  bool FreshSegmentStarted(const std::set<std::string>& old) {
    const std::set<std::string> now = Segments();
    if (now.empty() || old.count(*now.rbegin()) > 0) return false;
    std::error_code ec;
    const auto size =
        std::filesystem::file_size(cluster_.dir() + "/store-data/commitlog/" + *now.rbegin(), ec);
    return !ec && size < 16 * 1024;
  }

  void DeleteTopic(const std::string& name) {
    admin::v1::DeleteTopicRequest request;
    request.set_name(name);
    admin::v1::DeleteTopicResponse response;
    grpc::Status deleted = admin_->DeleteTopic(Context().get(), request, &response);
    ASSERT_TRUE(deleted.ok()) << deleted.error_message();
  }

  // Messages stored in `topic` (every queue); -1 when it does not exist.
  int64_t StoredMessages(const std::string& topic) {
    admin::v1::GetTopicStatsRequest request;
    request.set_name(topic);
    admin::v1::GetTopicStatsResponse response;
    return admin_->GetTopicStats(Context().get(), request, &response).ok() ? response.messages()
                                                                           : -1;
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return context;
  }

  testing::LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::unique_ptr<admin::v1::Admin::Stub> admin_;
  std::unique_ptr<testing::V2TestClient> client_;
};

TEST_F(TopicDeleteTest, RecreatedTopicServesOnlyNewMessagesAndOldSegmentsAreReclaimed) {
  CreateTopic(kTopic);
  Send(kTopic, "old", 40, 4096);  // ~170 KiB: a few segments
  const std::vector<Message> old = client_->ReceiveAtLeast("G", kTopic, 40, /*ack=*/false);
  ASSERT_EQ(MessageIds(old), Numbered("old", 40));
  for (size_t i = 1; i < old.size(); ++i) ASSERT_TRUE(client_->Ack("G", old[i]).ok());
  // old[0] stays in flight (30 s invisible) across the delete.

  DeleteTopic(kTopic);
  const std::set<std::string> old_segments = Segments();
  ASSERT_GE(old_segments.size(), 3u);
  // Fills the segment the old messages end in (so it can age out too) until
  // a fresh one starts: the new messages then sit in a segment that stays
  // active, out of retention's reach however slow the test runs.
  CreateTopic("Filler");
  for (int i = 0; i < 64 && !FreshSegmentStarted(old_segments); ++i) {
    ASSERT_TRUE(client_->Send("Filler", absl::StrCat("filler-", i), std::string(4096, 'f')).ok());
  }
  ASSERT_TRUE(FreshSegmentStarted(old_segments));

  CreateTopic(kTopic);
  // The delivery in flight was dropped with the topic: its handle is dead.
  EXPECT_THAT(client_->Ack("G", old[0]).message(), ::testing::HasSubstr("INVALID_RECEIPT_HANDLE"));
  Send(kTopic, "new", 10, 100);
  EXPECT_EQ(ReceiveAll("G", 10), Numbered("new", 10));  // consumed the old incarnation
  EXPECT_EQ(ReceiveAll("NewGroup", 10), Numbered("new", 10));

  // A store restart replays the log from its checkpoint: nothing old is back.
  absl::Status restarted = cluster_.RestartStore();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_EQ(ReceiveAll("AfterRestart", 10), Numbered("new", 10));

  // Retention reclaims every segment that held the deleted messages.
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        const std::set<std::string> now = Segments();
        for (const std::string& name : old_segments) {
          if (now.count(name) > 0) return false;
        }
        return true;
      },
      absl::Seconds(20)))
      << "old segments left: " << old_segments.size();
  EXPECT_EQ(ReceiveAll("AfterRetention", 10), Numbered("new", 10));
}

TEST_F(TopicDeleteTest, RetriesOfTheDeletedTopicAreNotDelivered) {
  CreateTopic(kTopic);
  Send(kTopic, "old", 3, 100);
  // Received and never acked, invisible for 1 s: the reviver copies them to
  // the group's retry topic, which the group pops before its topics.
  std::set<std::string> received;
  for (int i = 0; i < 30 && received.size() < 3; ++i) {
    auto batch = client_->ReceiveOnce("G", kTopic, 32, absl::Seconds(1), absl::Seconds(1));
    if (batch.ok()) {
      for (const std::string& id : MessageIds(*batch)) received.insert(id);
    }
  }
  ASSERT_EQ(received, Numbered("old", 3));
  ASSERT_TRUE(
      testing::PollUntil([&] { return StoredMessages("%RETRY%G") >= 3; }, absl::Seconds(20)));

  DeleteTopic(kTopic);
  CreateTopic(kTopic);
  Send(kTopic, "new", 2, 100);
  EXPECT_EQ(ReceiveAll("G", 2), Numbered("new", 2));
}

}  // namespace
}  // namespace apogee
