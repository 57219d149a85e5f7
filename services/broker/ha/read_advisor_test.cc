#include "services/broker/ha/read_advisor.h"

#include "gtest/gtest.h"

namespace apogee::broker::ha {
namespace {

namespace sv1 = ::apogee::store::v1;

constexpr int64_t kLag = 1000;

sv1::GetReplicationStatusResponse Master(int64_t log_end) {
  sv1::GetReplicationStatusResponse s;
  s.set_role(sv1::MASTER);
  s.set_log_end(log_end);
  return s;
}

void AddFollower(sv1::GetReplicationStatusResponse* s, const std::string& replica_id, int64_t acked,
                 bool in_sync) {
  sv1::FollowerStatus* f = s->add_followers();
  f->set_replica_id(replica_id);
  f->set_acked_offset(acked);
  f->set_in_sync(in_sync);
}

TEST(AdviseReadTest, MasterSendsAFarBehindReaderToTheInSyncSlaveHoldingMost) {
  sv1::GetReplicationStatusResponse s = Master(10'000);
  AddFollower(&s, "broker-a/1", 9'000, true);
  AddFollower(&s, "broker-a/2", 10'000, true);
  AddFollower(&s, "broker-a/3", 10'000, false);  // holds all, but out of sync
  auto advice = AdviseRead(s, 0, 100, kLag);
  ASSERT_TRUE(advice.has_value());
  EXPECT_EQ(advice->broker_id, 2);
  EXPECT_EQ(advice->target, Role::kSlave);
}

TEST(AdviseReadTest, MasterKeepsAReaderNearTheHead) {
  sv1::GetReplicationStatusResponse s = Master(10'000);
  AddFollower(&s, "broker-a/1", 10'000, true);
  EXPECT_FALSE(AdviseRead(s, 0, 9'000, kLag).has_value());  // exactly the threshold
  EXPECT_TRUE(AdviseRead(s, 0, 8'999, kLag).has_value());
  EXPECT_FALSE(AdviseRead(s, 0, 0, /*lag_bytes=*/0).has_value());  // disabled
}

TEST(AdviseReadTest, MasterNeverSuggestsAnOutOfSyncUnknownOrShortSlave) {
  sv1::GetReplicationStatusResponse s = Master(10'000);
  EXPECT_FALSE(AdviseRead(s, 0, 0, kLag).has_value());  // no follower
  AddFollower(&s, "broker-a/1", 10'000, false);
  AddFollower(&s, "garbage", 10'000, true);
  AddFollower(&s, "broker-a/2", 500, true);  // lacks what follows the read
  EXPECT_FALSE(AdviseRead(s, 0, 500, kLag).has_value());
}

TEST(AdviseReadTest, AFormerMasterFollowingIsListedUnderTheWritersId) {
  // Broker 1 was promoted; broker 0 follows it and routes list it as id 1.
  sv1::GetReplicationStatusResponse s = Master(10'000);
  AddFollower(&s, "broker-a/0", 10'000, true);
  auto advice = AdviseRead(s, /*self_id=*/1, 0, kLag);
  ASSERT_TRUE(advice.has_value());
  EXPECT_EQ(advice->broker_id, 1);
}

TEST(AdviseReadTest, SlaveSendsAReaderBackToTheMasterNearTheHeadOnly) {
  sv1::GetReplicationStatusResponse s;
  s.set_role(sv1::SLAVE);
  s.set_log_end(10'000);
  s.set_connected(true);
  EXPECT_FALSE(AdviseRead(s, 1, 9'000, kLag).has_value());  // between lag/2 and lag
  auto advice = AdviseRead(s, 1, 9'500, kLag);
  ASSERT_TRUE(advice.has_value());
  EXPECT_EQ(advice->broker_id, 0);
  EXPECT_EQ(advice->target, Role::kMaster);
  s.set_connected(false);  // master gone: stay on the slave
  EXPECT_FALSE(AdviseRead(s, 1, 9'900, kLag).has_value());
}

TEST(ReadAdvisorTest, CachesTheStatusForTheRefreshPeriod) {
  ManualClock clock;
  int calls = 0;
  int64_t log_end = 10'000;
  ReadAdvisor advisor(
      kLag, 0,
      [&]() -> absl::StatusOr<sv1::GetReplicationStatusResponse> {
        ++calls;
        if (log_end < 0) return absl::UnimplementedError("no replication");
        sv1::GetReplicationStatusResponse s = Master(log_end);
        AddFollower(&s, "broker-a/1", log_end, true);
        return s;
      },
      &clock, absl::Milliseconds(200));
  EXPECT_TRUE(advisor.AfterRead(0).has_value());
  EXPECT_TRUE(advisor.MaySuggestSlave());
  log_end = 500;  // not seen until the refresh period ends
  EXPECT_TRUE(advisor.AfterRead(0).has_value());
  EXPECT_EQ(calls, 1);
  clock.Advance(absl::Milliseconds(200));
  EXPECT_FALSE(advisor.AfterRead(0).has_value());
  EXPECT_EQ(calls, 2);
  log_end = -1;
  clock.Advance(absl::Milliseconds(200));
  EXPECT_FALSE(advisor.AfterRead(0).has_value());
  EXPECT_FALSE(advisor.MaySuggestSlave());
  EXPECT_GT(DefaultSlaveReadLagBytes(), 0);
}

}  // namespace
}  // namespace apogee::broker::ha
