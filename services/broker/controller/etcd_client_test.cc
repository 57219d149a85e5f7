#include "services/broker/controller/etcd_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/broker/controller/testing/etcd_process.h"
#include "services/common/testing/process.h"

namespace apogee::controller {
namespace {

using ::apogee::testing::PollUntil;

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    etcd_ = testing::SharedEtcd();
    ASSERT_NE(etcd_, nullptr);
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr) << "no etcd";
    auto client = EtcdClient::Create(etcd_->endpoint());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    ASSERT_TRUE(client_->DeletePrefix("/t/").ok());
  }

  static testing::EtcdProcess* etcd_;
  std::unique_ptr<EtcdClient> client_;
};

testing::EtcdProcess* EtcdClientTest::etcd_ = nullptr;

TEST_F(EtcdClientTest, PutGetDelete) {
  auto missing = client_->Get("/t/a");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());

  auto rev = client_->Put("/t/a", "one");
  ASSERT_TRUE(rev.ok()) << rev.status();
  auto got = client_->Get("/t/a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->value, "one");
  EXPECT_EQ((*got)->create_revision, *rev);

  ASSERT_TRUE(client_->Put("/t/b", "two").ok());
  ASSERT_TRUE(client_->Put("/u", "outside").ok());
  auto range = client_->GetPrefix("/t/");
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->kvs.size(), 2u);
  EXPECT_EQ(range->kvs[0].key, "/t/a");
  EXPECT_EQ(range->kvs[1].value, "two");
  EXPECT_GE(range->revision, *rev);

  auto deleted = client_->Delete("/t/a");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1);
  EXPECT_FALSE(client_->Get("/t/a")->has_value());
}

TEST_F(EtcdClientTest, TxnComparesCreateRevisionAndValue) {
  // Create-if-absent: the first wins, the second sees the key.
  auto first =
      client_->Txn({EtcdCompare::CreateRevisionEquals("/t/k", 0)}, {EtcdOp::Put("/t/k", "first")});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  auto second = client_->Txn({EtcdCompare::CreateRevisionEquals("/t/k", 0)},
                             {EtcdOp::Put("/t/k", "second")}, {EtcdOp::Put("/t/lost", "yes")});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ((*client_->Get("/t/k"))->value, "first");
  EXPECT_EQ((*client_->Get("/t/lost"))->value, "yes");  // the failure branch ran

  // Compare-and-swap on the value.
  EXPECT_FALSE(
      *client_->Txn({EtcdCompare::ValueEquals("/t/k", "other")}, {EtcdOp::Put("/t/k", "swapped")}));
  EXPECT_TRUE(*client_->Txn({EtcdCompare::ValueEquals("/t/k", "first")},
                            {EtcdOp::Put("/t/k", "swapped"), EtcdOp::Delete("/t/lost")}));
  EXPECT_EQ((*client_->Get("/t/k"))->value, "swapped");
  EXPECT_FALSE(client_->Get("/t/lost")->has_value());
}

TEST_F(EtcdClientTest, LeaseKeepsKeyUntilRevoked) {
  auto lease = client_->LeaseGrant(absl::Seconds(5));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->ttl, absl::Seconds(5));
  ASSERT_TRUE(client_->Put("/t/leased", "v", lease->id).ok());
  EXPECT_EQ((*client_->Get("/t/leased"))->lease, lease->id);

  auto ttl = client_->LeaseKeepAlive(lease->id);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, absl::Seconds(5));

  ASSERT_TRUE(client_->LeaseRevoke(lease->id).ok());
  EXPECT_FALSE(client_->Get("/t/leased")->has_value());
  auto expired = client_->LeaseKeepAlive(lease->id);
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kNotFound) << expired.status();
}

TEST_F(EtcdClientTest, WatchPrefixReportsPutsAndDeletes) {
  absl::Mutex mu;
  std::vector<EtcdEvent> seen;
  auto start = client_->Put("/t/before", "x");
  ASSERT_TRUE(start.ok());
  // From the revision of "/t/before": the watch also replays it.
  auto watch = client_->WatchPrefix(
      "/t/", *start,
      [&](const std::vector<EtcdEvent>& events) {
        absl::MutexLock lock(&mu);
        seen.insert(seen.end(), events.begin(), events.end());
      },
      [](const absl::Status&) {});
  ASSERT_TRUE(client_->Put("/t/w", "1").ok());
  ASSERT_TRUE(client_->Put("/other", "not watched").ok());
  ASSERT_TRUE(client_->Delete("/t/w").ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        absl::MutexLock lock(&mu);
        return seen.size() >= 3;
      },
      absl::Seconds(5)));
  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].kv.key, "/t/before");
  EXPECT_EQ(seen[1].kv.key, "/t/w");
  EXPECT_EQ(seen[1].type, EtcdEvent::Type::kPut);
  EXPECT_EQ(seen[1].kv.value, "1");
  EXPECT_EQ(seen[2].type, EtcdEvent::Type::kDelete);
  EXPECT_FALSE(watch->done());
}

TEST_F(EtcdClientTest, FailsOverToNextEndpoint) {
  auto port = ::apogee::testing::FreeLocalPort();
  ASSERT_TRUE(port.ok());
  // Nothing listens on the first endpoint: UNAVAILABLE, then the next.
  auto client = EtcdClient::Create(absl::StrCat("127.0.0.1:", *port, ";", etcd_->endpoint()));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Put("/t/failover", "ok").ok());
  EXPECT_EQ((*(*client)->Get("/t/failover"))->value, "ok");
}

TEST_F(EtcdClientTest, EveryCallHasADeadline) {
  // A listener that accepts TCP but never speaks HTTP/2: without a deadline
  // the call would hang.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto mute =
      EtcdClient::Create(absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)), absl::Milliseconds(300));
  ASSERT_TRUE(mute.ok());
  const absl::Time start = absl::Now();
  auto got = (*mute)->Get("/t/a");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  close(fd);

  // max_wait caps the call timeout; the injected fault fails without a call.
  EXPECT_EQ(client_->Get("/t/a", absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(client_->Get("/t/a", absl::Milliseconds(500)).ok());
  client_->SetFaultForTesting(absl::UnavailableError("partitioned by test"));
  EXPECT_EQ(client_->Get("/t/a").status().code(), absl::StatusCode::kUnavailable);
  client_->SetFaultForTesting(absl::OkStatus());
  EXPECT_TRUE(client_->Get("/t/a").ok());
}

TEST(EtcdClientParseTest, RejectsBadEndpoints) {
  auto empty = EtcdClient::Create("");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = EtcdClient::Create("127.0.0.1:2379;nohostport");
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("\"nohostport\""), std::string::npos) << bad.status();
  EXPECT_EQ(PrefixRangeEnd("/a/"), "/a0");
}

}  // namespace
}  // namespace apogee::controller
