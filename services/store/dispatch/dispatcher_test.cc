#include "services/store/dispatch/dispatcher.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "services/store/io/posix_file_system.h"
#include "services/store/testing/records.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;
using testing::MakeRecord;

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log =
        CommitLog::Open(PosixFileSystem::Default(), &clock_, testing::SmallLogOptions(dir_.path()));
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    auto index = IndexStore::Open({dir_.path() + "/index"});
    ASSERT_TRUE(index.ok()) << index.status();
    index_ = std::move(*index);
  }

  std::vector<AppendResult> Append(int n, const std::string& topic = "A", int32_t queue = 0) {
    std::vector<AppendResult> out;
    for (int i = 0; i < n; ++i) {
      auto r = log_->Append({MakeRecord(topic, queue, std::string(200, 'x'))});
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) out.push_back((*r)[0]);
    }
    return out;
  }

  apogee::testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<CommitLog> log_;
  std::unique_ptr<IndexStore> index_;
};

TEST_F(DispatcherTest, CatchUpIndexesEverythingCommittedAcrossSegments) {
  const std::vector<AppendResult> appended = Append(30);
  ASSERT_GT(log_->ListSegments().size(), 2u);
  Dispatcher dispatcher(log_.get(), index_.get(), {/*max_batch_bytes=*/1000});
  ASSERT_TRUE(dispatcher.CatchUp().ok());
  EXPECT_EQ(dispatcher.dispatched_offset(), log_->written_offset());
  EXPECT_EQ(index_->dispatched_offset(), log_->written_offset());
  EXPECT_EQ(index_->GetQueueRange({"A", 0})->next_offset, 30);
  auto entries = index_->ReadConsumeQueue({"A", 0}, 0, 100);
  ASSERT_EQ(entries->size(), 30u);
  for (size_t i = 0; i < appended.size(); ++i) {
    EXPECT_EQ((*entries)[i].commit_offset, appended[i].commit_offset);
  }
}

TEST_F(DispatcherTest, BackgroundThreadFollowsCommitsAndReportsAdvances) {
  Dispatcher dispatcher(log_.get(), index_.get());
  absl::Mutex mu;
  std::map<TopicQueue, int64_t> seen;
  dispatcher.SetListener([&](const std::vector<QueueAdvance>& advances) {
    absl::MutexLock lock(&mu);
    for (const QueueAdvance& a : advances) seen[a.queue] = a.next_offset;
  });
  log_->SetCommitListener([&](int64_t end) { dispatcher.OnCommitted(end); });
  dispatcher.Start();
  Append(3, "A", 0);
  Append(2, "A", 1);
  ASSERT_TRUE(dispatcher.WaitForDispatched(log_->written_offset(), absl::Seconds(10)));
  EXPECT_EQ(index_->GetQueueRange({"A", 1})->next_offset, 2);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen[(TopicQueue{"A", 0})], 3);
  EXPECT_EQ(seen[(TopicQueue{"A", 1})], 2);
}

TEST_F(DispatcherTest, ACorruptRecordStopsDispatchAndIsReported) {
  const std::vector<AppendResult> appended = Append(30);
  const std::string first_segment = log_->ListSegments().front().path;
  testing::PatchFileBytes(first_segment, appended[2].commit_offset + 100, "!!");
  Dispatcher dispatcher(log_.get(), index_.get());
  const absl::Status s = dispatcher.CatchUp();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("CRC32C mismatch"));
  EXPECT_EQ(index_->dispatched_offset(), appended[2].commit_offset);  // the good prefix

  log_->SetCommitListener([&](int64_t end) { dispatcher.OnCommitted(end); });
  dispatcher.Start();
  Append(1);
  ASSERT_TRUE(
      apogee::testing::PollUntil([&] { return !dispatcher.last_error().ok(); }, absl::Seconds(10)));
  EXPECT_EQ(dispatcher.last_error().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(dispatcher.WaitForDispatched(log_->written_offset(), absl::Milliseconds(1)));
}

}  // namespace
}  // namespace apogee::store
