// The whole store on a misbehaving disk. The invariant: an acknowledged
// message survives any fault and any crash; a failed append is never served.
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/engine/store.h"
#include "services/store/testing/records.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeRecord;

class StoreFaultTest : public testing::StoreHarness {
 protected:
  void OpenWithTopic(FlushMode mode) {
    Open(mode);
    CreateTopic("T", 4);
  }
  absl::StatusOr<std::vector<AppendResult>> TryAppend(int32_t queue, const std::string& body) {
    return store_->Append({MakeRecord("T", queue, body)});
  }
};

TEST_F(StoreFaultTest, FsyncFailureInSyncModeIsNeitherAcknowledgedNorServed) {
  OpenWithTopic(FlushMode::kSync);
  Append("T", 0, "one");
  fs_.AddFault(Fault(FaultOp::kSync, "commitlog"));
  auto failed = TryAppend(0, "failed");
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("injected fault"));
  EXPECT_EQ(Append("T", 0, "two").queue_offset, 1);
  EXPECT_THAT(Bodies("T", 0), ElementsAre("one", "two"));
  EXPECT_EQ(store_->Stats().log.append_errors, 1);
  Crash();
  OpenWithTopic(FlushMode::kSync);
  EXPECT_THAT(Bodies("T", 0), ElementsAre("one", "two"));
}

TEST_F(StoreFaultTest, ShortWriteLeavesNoGarbageAfterACrash) {
  OpenWithTopic(FlushMode::kAsync);
  Append("T", 1, "one");
  fs_.AddFault(ShortWrite(20, "commitlog"));
  EXPECT_FALSE(TryAppend(1, "torn").ok());
  Append("T", 1, "two");
  ASSERT_TRUE(store_->Flush().ok());
  Crash();
  OpenWithTopic(FlushMode::kAsync);
  EXPECT_EQ(store_->recovery_report().log.truncated_bytes, 0);
  EXPECT_THAT(Bodies("T", 1), ElementsAre("one", "two"));
}

TEST_F(StoreFaultTest, DiskFullFailsAppendsCleanlyAndRecoversWhenSpaceReturns) {
  OpenWithTopic(FlushMode::kSync);
  Append("T", 2, "one");
  fs_.SetCapacity(fs_.used_bytes() + 50);
  for (int i = 0; i < 3; ++i) {
    auto full = TryAppend(2, std::string(200, 'f'));
    EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(full.status().message(), HasSubstr("No space left on device"));
  }
  EXPECT_THAT(Bodies("T", 2), ElementsAre("one"));  // reads keep working
  fs_.SetCapacity(std::nullopt);
  EXPECT_EQ(Append("T", 2, "two").queue_offset, 1);
  Crash();
  OpenWithTopic(FlushMode::kSync);
  EXPECT_THAT(Bodies("T", 2), ElementsAre("one", "two"));
}

TEST_F(StoreFaultTest, ReadErrorsAreReportedNotMasked) {
  OpenWithTopic(FlushMode::kAsync);
  Append("T", 0, "one");
  WaitForDispatch();
  fs_.AddFault(Fault(FaultOp::kRead, "commitlog"));
  ReadRequest request;
  request.topic = "T";
  auto read = store_->Read(request);
  EXPECT_FALSE(read.ok());
  EXPECT_THAT(read.status().message(), HasSubstr("injected fault"));
  EXPECT_THAT(Bodies("T", 0), ElementsAre("one"));  // the fault fired once
}

TEST_F(StoreFaultTest, AsyncFlushFailureIsVisibleAndRetried) {
  OpenWithTopic(FlushMode::kAsync);
  Append("T", 0, "one");
  fs_.AddFault(Fault(FaultOp::kSync, "commitlog"));
  EXPECT_FALSE(store_->Flush().ok());
  const StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.log.flush_errors, 1);
  EXPECT_LT(stats.log.flushed_offset, stats.log.written_offset);
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(store_->GetLogOffsets().flushed, store_->GetLogOffsets().max);
}

// Many appends under random fsync errors, short writes and full disks, with
// crashes in between: exactly the acknowledged messages survive, in order.
TEST_F(StoreFaultTest, RandomFaultsAndCrashesNeverLoseAcknowledgedMessages) {
  OpenWithTopic(FlushMode::kSync);
  std::mt19937 rng(20240601);
  std::vector<std::vector<std::string>> acked(4);
  int failures = 0;
  for (int round = 0; round < 150; ++round) {
    const int32_t queue = round % 4;
    const std::string body = absl::StrCat("m", round, std::string(rng() % 900, '.'));
    switch (rng() % 6) {
      case 0:
        fs_.AddFault(Fault(FaultOp::kSync, "commitlog"));
        break;
      case 1:
        fs_.AddFault(ShortWrite(rng() % 100, "commitlog"));
        break;
      case 2:
        fs_.SetCapacity(fs_.used_bytes() + rng() % 200);
        break;
      default:
        break;
    }
    auto r = TryAppend(queue, body);
    fs_.ClearFaults();
    fs_.SetCapacity(std::nullopt);
    if (r.ok()) {
      EXPECT_EQ((*r)[0].queue_offset, static_cast<int64_t>(acked[queue].size()));
      acked[queue].push_back(body);
    } else {
      ++failures;
    }
    if (round % 50 == 49) {
      Crash();
      OpenWithTopic(FlushMode::kSync);
    }
  }
  EXPECT_GT(failures, 20);
  for (int32_t q = 0; q < 4; ++q) EXPECT_EQ(Bodies("T", q), acked[q]) << "queue " << q;
}

}  // namespace
}  // namespace apogee::store
