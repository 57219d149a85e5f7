// The whole store on a misbehaving disk. The invariant: an acknowledged
// message survives any fault and any crash; a failed append is never served.
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/engine/store.h"
#include "services/store/index/index_store.h"
#include "services/store/testing/fault_rocks_env.h"
#include "services/store/testing/records.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using testing::FaultRocksEnv;
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

// RocksDB 7.8 (built with assertions) aborted when its WAL was synced after
// a WAL append had failed: the periodic flush or the shutdown's sync, once
// the disk was full (issue 12). The sync must fail instead, and closing must
// be clean.
TEST_F(StoreFaultTest, IndexWalSyncAfterAFailedIndexWriteFailsWithoutAborting) {
  FaultRocksEnv rocks(&fs_);
  IndexOptions options;
  options.path = dir_.path() + "/index";
  options.env = rocks.env();
  auto index = IndexStore::Open(options);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_TRUE((*index)->CommitOffset("G", {"T", 0}, 1, 0).ok());
  ASSERT_TRUE((*index)->SyncWal().ok());
  fs_.SetCapacity(fs_.used_bytes());
  const absl::Status full = (*index)->CommitOffset("G", {"T", 0}, 2, 0);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  const absl::Status sync = (*index)->SyncWal();
  EXPECT_EQ(sync.code(), absl::StatusCode::kResourceExhausted) << sync;
  EXPECT_THAT(sync.message(), HasSubstr("sync index WAL"));
  index->reset();  // closes RocksDB with its WAL writer in the failed state
  fs_.SetCapacity(std::nullopt);
  index = IndexStore::Open(options);
  ASSERT_TRUE(index.ok()) << index.status();
  auto offset = (*index)->FetchOffset("G", {"T", 0});
  ASSERT_TRUE(offset.ok()) << offset.status();
  EXPECT_EQ(offset->offset, 1);
}

// The whole disk fills up (commit log and index share it), then the store
// shuts down as on SIGTERM: no abort, and every acknowledged message is
// there after a restart with space back.
TEST_F(StoreFaultTest, ShutdownAfterTheDiskFilledUpKeepsEveryAcknowledgedMessage) {
  FaultRocksEnv rocks(&fs_);
  StoreOptions options = Options(FlushMode::kSync);
  options.index_env = rocks.env();
  Open(options);
  CreateTopic("T", 4);
  fs_.SetCapacity(fs_.used_bytes() + (64 << 10));
  std::vector<std::vector<std::string>> acked(4);
  int full = 0;
  for (int i = 0; i < 2000 && full < 10; ++i) {
    const int32_t queue = i % 4;
    const std::string body = absl::StrCat("m", i, std::string(700, '.'));
    auto r = TryAppend(queue, body);
    if (r.ok()) {
      acked[queue].push_back(body);
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
      ++full;
    }
  }
  ASSERT_EQ(full, 10) << "the disk never filled up";
  // The index writes after the log: fill what the log's failed appends left.
  fs_.SetCapacity(fs_.used_bytes());
  EXPECT_FALSE(store_->CommitOffset("G", "T", 0, 0).ok());
  EXPECT_FALSE(store_->Flush().ok());
  store_.reset();  // what SIGTERM runs: flush, dispatch the rest, sync, close
  fs_.SetCapacity(std::nullopt);
  Open(options);
  for (int32_t q = 0; q < 4; ++q) {
    EXPECT_FALSE(acked[q].empty());
    EXPECT_EQ(Bodies("T", q), acked[q]) << "queue " << q;
  }
  EXPECT_EQ(Append("T", 0, "after").queue_offset, static_cast<int64_t>(acked[0].size()));
  store_.reset();  // before `rocks`
}

}  // namespace
}  // namespace apogee::store
