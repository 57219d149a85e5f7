// The commit log under a misbehaving disk: fsync failures, short writes,
// ENOSPC and crashes that drop unsynced data. Invariant checked throughout:
// a failed append leaves no trace, and nothing acknowledged is lost.
#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "services/store/commitlog/commit_log.h"
#include "services/store/io/fault_injecting_file_system.h"
#include "services/store/io/posix_file_system.h"
#include "services/store/testing/records.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;
using testing::MakeRecord;

class CommitLogFaultTest : public ::testing::Test {
 protected:
  std::unique_ptr<CommitLog> OpenLog(FlushMode mode) {
    auto log = CommitLog::Open(&fs_, &clock_, testing::SmallLogOptions(dir_.path(), mode));
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Appends and expects success; returns where the record went.
  AppendResult MustAppend(CommitLog* log, RecordInput record) {
    auto r = log->Append({std::move(record)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)[0] : AppendResult{};
  }

  // Every record in the log from its start, by body.
  std::vector<std::string> Bodies(CommitLog* log) {
    std::vector<std::string> bodies;
    int64_t offset = log->min_offset();
    while (true) {
      auto chunk = log->ReadChunk(offset, 1 << 16, log->written_offset());
      EXPECT_TRUE(chunk.ok()) << chunk.status();
      if (!chunk.ok() || chunk->records.empty()) return bodies;
      for (const RecordView& r : chunk->records) bodies.emplace_back(r.body());
      offset = chunk->end;
    }
  }

  apogee::testing::TempDir dir_;
  ManualClock clock_;
  FaultInjectingFileSystem fs_{PosixFileSystem::Default()};
};

TEST_F(CommitLogFaultTest, FsyncFailureInSyncModeFailsTheAppendAndLeavesNoTrace) {
  auto log = OpenLog(FlushMode::kSync);
  const AppendResult first = MustAppend(log.get(), MakeRecord("A", 0, "one"));
  fs_.AddFault(Fault(FaultOp::kSync, ".log"));
  auto failed = log->Append({MakeRecord("A", 0, "lost")});
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("sync of the records at commit-log offsets"));
  EXPECT_THAT(failed.status().message(), HasSubstr("injected fault"));
  EXPECT_EQ(log->written_offset(), first.size);
  EXPECT_EQ(log->stats().append_errors, 1);
  EXPECT_EQ(log->stats().flush_errors, 1);

  const AppendResult second = MustAppend(log.get(), MakeRecord("A", 0, "two"));
  EXPECT_EQ(second.commit_offset, first.size);  // the failed record's place is reused
  EXPECT_EQ(second.queue_offset, 1);            // and so is its queue offset
  ASSERT_TRUE(fs_.Crash().ok());
  log = OpenLog(FlushMode::kSync);
  EXPECT_EQ(Bodies(log.get()), (std::vector<std::string>{"one", "two"}));
}

TEST_F(CommitLogFaultTest, ShortWriteIsRolledBack) {
  auto log = OpenLog(FlushMode::kAsync);
  const AppendResult first = MustAppend(log.get(), MakeRecord("A", 0, "one"));
  fs_.AddFault(ShortWrite(10, ".log"));
  EXPECT_FALSE(log->Append({MakeRecord("A", 0, "torn")}).ok());
  EXPECT_EQ(fs_.used_bytes(), first.size);  // the 10 bytes were cut off again
  const AppendResult second = MustAppend(log.get(), MakeRecord("A", 0, "two"));
  EXPECT_EQ(second.commit_offset, first.size);
  log.reset();
  log = OpenLog(FlushMode::kAsync);
  EXPECT_EQ(log->recovery_info().truncated_bytes, 0);
  EXPECT_EQ(Bodies(log.get()), (std::vector<std::string>{"one", "two"}));
}

TEST_F(CommitLogFaultTest, FullDiskFailsAppendsCleanlyAndRecoversWhenSpaceReturns) {
  auto log = OpenLog(FlushMode::kSync);
  MustAppend(log.get(), MakeRecord("A", 0, "one"));
  fs_.SetCapacity(fs_.used_bytes() + 100);
  auto full = log->Append({MakeRecord("A", 0, std::string(500, 'x'))});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.status().message(), HasSubstr("No space left on device"));
  EXPECT_EQ(log->Append({MakeRecord("A", 0, std::string(500, 'y'))}).status().code(),
            absl::StatusCode::kResourceExhausted);
  fs_.SetCapacity(std::nullopt);
  MustAppend(log.get(), MakeRecord("A", 0, "two"));
  log.reset();
  log = OpenLog(FlushMode::kSync);
  EXPECT_EQ(Bodies(log.get()), (std::vector<std::string>{"one", "two"}));
}

TEST_F(CommitLogFaultTest, ATailThatCannotBeCutBlocksAppendsUntilRepaired) {
  auto log = OpenLog(FlushMode::kAsync);
  const AppendResult first = MustAppend(log.get(), MakeRecord("A", 0, "one"));
  fs_.AddFault(ShortWrite(10, ".log"));
  fs_.AddFault(Fault(FaultOp::kTruncate, ".log", /*skip=*/0, /*times=*/2));
  EXPECT_FALSE(log->Append({MakeRecord("A", 0, "torn")}).ok());  // rollback fails too
  auto blocked = log->Append({MakeRecord("A", 0, "blocked")});
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(blocked.status().message(), HasSubstr("could not be restored"));
  const AppendResult second = MustAppend(log.get(), MakeRecord("A", 0, "two"));  // repaired
  EXPECT_EQ(second.commit_offset, first.size);
  EXPECT_EQ(Bodies(log.get()), (std::vector<std::string>{"one", "two"}));
}

TEST_F(CommitLogFaultTest, CrashInAsyncModeLosesOnlyWhatWasNotFlushed) {
  auto log = OpenLog(FlushMode::kAsync);
  for (int i = 0; i < 3; ++i) MustAppend(log.get(), MakeRecord("A", 0, "kept"));
  ASSERT_TRUE(log->Flush().ok());
  const int64_t flushed = log->flushed_offset();
  for (int i = 0; i < 3; ++i) MustAppend(log.get(), MakeRecord("A", 0, "unflushed"));
  ASSERT_TRUE(fs_.Crash().ok());
  log = OpenLog(FlushMode::kAsync);
  EXPECT_EQ(log->written_offset(), flushed);
  EXPECT_EQ(Bodies(log.get()), (std::vector<std::string>(3, "kept")));
}

TEST_F(CommitLogFaultTest, CrashInSyncModeKeepsEveryAcknowledgedRecordAcrossRolls) {
  auto log = OpenLog(FlushMode::kSync);
  std::vector<std::thread> threads;
  std::atomic<int> acked{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 30; ++i) {
        if (log->Append({MakeRecord("A", 0, std::string(300, 's'))}).ok()) ++acked;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_GT(log->ListSegments().size(), 2u);
  ASSERT_TRUE(fs_.Crash().ok());
  log = OpenLog(FlushMode::kSync);
  EXPECT_EQ(acked.load(), 60);
  EXPECT_EQ(Bodies(log.get()).size(), 60u);
}

// Appends that arrive while a sync runs are written at once and all made
// durable by the next sync (pipelined group commit).
TEST_F(CommitLogFaultTest, AppendsWrittenDuringASyncShareTheNextSync) {
  auto log = OpenLog(FlushMode::kSync);
  absl::Notification leader_syncing, release;
  FaultRule hold = Fault(FaultOp::kSync, ".log");
  hold.error = absl::OkStatus();
  hold.times = 1;
  hold.hook = [&] {
    leader_syncing.Notify();
    release.WaitForNotification();
  };
  fs_.AddFault(hold);
  std::thread leader([&] { MustAppend(log.get(), MakeRecord("A", 0)); });
  leader_syncing.WaitForNotification();
  constexpr int kFollowers = 6;
  std::atomic<int> acked{0};
  std::vector<std::thread> followers;
  for (int i = 0; i < kFollowers; ++i) {
    followers.emplace_back([&] {
      MustAppend(log.get(), MakeRecord("A", 1));
      ++acked;
    });
  }
  // Written while the leader's sync is held, but not acknowledged.
  ASSERT_TRUE(apogee::testing::PollUntil(
      [&] { return log->stats().appended_records == kFollowers + 1; }, absl::Seconds(10)));
  EXPECT_EQ(acked.load(), 0);
  EXPECT_EQ(log->flushed_offset(), 0);
  const int syncs_before = fs_.syncs();
  release.Notify();
  leader.join();
  for (std::thread& t : followers) t.join();
  EXPECT_EQ(acked.load(), kFollowers);
  // The held sync, then one for every follower however many groups they
  // were written in.
  EXPECT_EQ(fs_.syncs() - syncs_before, 2);
  EXPECT_EQ(log->flushed_offset(), log->written_offset());
}

// A failed sync fails every group written since the last good sync, even
// those written while it ran, and restores their queue offsets.
TEST_F(CommitLogFaultTest, FailedSyncFailsEveryGroupWrittenSinceTheLastGoodOne) {
  auto log = OpenLog(FlushMode::kSync);
  const AppendResult first = MustAppend(log.get(), MakeRecord("A", 0, "kept"));
  absl::Notification leader_syncing, release;
  FaultRule fail = Fault(FaultOp::kSync, ".log");
  fail.times = 1;
  fail.hook = [&] {
    leader_syncing.Notify();
    release.WaitForNotification();
  };
  fs_.AddFault(fail);
  std::atomic<int> failures{0};
  auto append = [&] {
    if (!log->Append({MakeRecord("A", 0, "doomed")}).ok()) ++failures;
  };
  std::thread leader(append);
  leader_syncing.WaitForNotification();
  constexpr int kFollowers = 4;
  std::vector<std::thread> followers;
  for (int i = 0; i < kFollowers; ++i) followers.emplace_back(append);
  ASSERT_TRUE(apogee::testing::PollUntil(
      [&] { return log->stats().appended_records == kFollowers + 2; }, absl::Seconds(10)));
  release.Notify();
  leader.join();
  for (std::thread& t : followers) t.join();
  EXPECT_EQ(failures.load(), kFollowers + 1);
  EXPECT_EQ(log->written_offset(), first.size);

  const AppendResult next = MustAppend(log.get(), MakeRecord("A", 0, "after"));
  EXPECT_EQ(next.commit_offset, first.size);
  EXPECT_EQ(next.queue_offset, 1);
  ASSERT_TRUE(fs_.Crash().ok());
  log = OpenLog(FlushMode::kSync);
  EXPECT_EQ(Bodies(log.get()), (std::vector<std::string>{"kept", "after"}));
}

TEST_F(CommitLogFaultTest, FailedRollIsRetriedByTheNextAppend) {
  auto log = OpenLog(FlushMode::kAsync);
  for (int i = 0; i < 7; ++i) MustAppend(log.get(), MakeRecord("A", 0, std::string(500, 'r')));
  fs_.AddFault(Fault(FaultOp::kSyncDir, "commitlog"));
  auto failed = log->Append({MakeRecord("A", 0, std::string(500, 'x'))});
  ASSERT_FALSE(failed.ok());
  const int64_t end = log->written_offset();
  const AppendResult next = MustAppend(log.get(), MakeRecord("A", 0, std::string(500, 'n')));
  EXPECT_EQ(next.commit_offset, end);
  EXPECT_EQ(log->ListSegments().size(), 2u);
  EXPECT_EQ(log->ListSegments().back().start, end);
}

TEST_F(CommitLogFaultTest, FlushFailureIsReportedAndRetried) {
  auto log = OpenLog(FlushMode::kAsync);
  MustAppend(log.get(), MakeRecord("A", 0));
  fs_.AddFault(Fault(FaultOp::kSync, ".log"));
  EXPECT_FALSE(log->Flush().ok());
  EXPECT_EQ(log->flushed_offset(), 0);
  EXPECT_EQ(log->stats().flush_errors, 1);
  EXPECT_THAT(log->stats().last_error, HasSubstr("injected fault"));
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->flushed_offset(), log->written_offset());
}

}  // namespace
}  // namespace apogee::store
