#include "services/store/retention/retention.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/dispatch/dispatcher.h"
#include "services/store/io/posix_file_system.h"
#include "services/store/testing/records.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;

class RetentionTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    Open();
    CreateTopic("T", 2);
  }

  // Appends `n` ~1.5 KiB messages to queue 0 (about ten per 16 KiB segment),
  // one clock minute apart.
  std::vector<AppendResult> Fill(int n) {
    std::vector<AppendResult> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(Append("T", 0, std::string(1500, 'a' + i % 26), {absl::StrCat("k", i)}));
      clock_.Advance(absl::Minutes(1));
    }
    EXPECT_TRUE(store_->Flush().ok());
    WaitForDispatch();
    return out;
  }

  StoreOptions WithRetention(absl::Duration retention, double watermark = 1.0) {
    StoreOptions o = Options();
    o.retention.retention = retention;
    o.retention.disk_usage_watermark = watermark;
    return o;
  }
};

TEST_F(RetentionTest, DeletesOnlySegmentsWhoseRecordsAreAllOlderThanRetention) {
  const std::vector<AppendResult> appended = Fill(60);
  Open(WithRetention(absl::Hours(2)));
  auto nothing = store_->RunRetention();
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(nothing->deleted_segments, 0);  // the oldest record is one hour old

  Open(WithRetention(absl::Minutes(30)));
  const int64_t cutoff_ms = absl::ToUnixMillis(clock_.Now() - absl::Minutes(30));
  auto report = store_->RunRetention();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->deleted_segments, 0);
  const int64_t min = store_->GetLogOffsets().min;
  EXPECT_EQ(report->min_offset, min);
  for (const AppendResult& r : appended) {
    if (r.commit_offset < min) {
      EXPECT_LE(r.store_timestamp_ms, cutoff_ms);  // only old data went
    }
    if (r.store_timestamp_ms > cutoff_ms) {
      EXPECT_GE(r.commit_offset, min);  // all new data stayed
    }
  }
  EXPECT_EQ(store_->Stats().retention_deleted_segments, report->deleted_segments);
}

TEST_F(RetentionTest, IndexesAreTrimmedWithTheSegments) {
  const std::vector<AppendResult> appended = Fill(40);
  Append("T", 1, "only-one");
  ASSERT_TRUE(store_->CommitOffset("g", "T", 0, 5).ok());
  Open(WithRetention(absl::Minutes(1)));
  clock_.Advance(absl::Hours(1));
  auto report = store_->RunRetention();
  ASSERT_TRUE(report.ok()) << report.status();
  const int64_t min = store_->GetLogOffsets().min;
  int first_kept = 0;
  while (appended[first_kept].commit_offset < min) ++first_kept;
  ASSERT_GT(first_kept, 0);

  const QueueRange range = *store_->GetQueueRange("T", 0);
  EXPECT_EQ(range.min_offset, first_kept);
  EXPECT_EQ(range.next_offset, 40);
  ReadRequest below;
  below.topic = "T";
  below.offset = first_kept - 1;
  auto read = store_->Read(below);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(read.status().message(), HasSubstr("is below the queue's minimum"));
  EXPECT_EQ(Bodies("T", 0).size(), static_cast<size_t>(40 - first_kept));
  EXPECT_EQ(store_->LookupByKey("T", "k0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->LookupByKey("T", absl::StrCat("k", first_kept)).ok());
  EXPECT_EQ(*store_->LookupOffsetByTime("T", 0, 0), first_kept);
  EXPECT_EQ(store_->FetchOffset("g", "T", 0)->offset, 5);  // offsets are not retention's business
  EXPECT_EQ(Bodies("T", 1).size(), 1u);                    // in the active segment
  Open(WithRetention(absl::Minutes(1)));                   // and all of it survives a reopen
  EXPECT_EQ(store_->GetQueueRange("T", 0)->min_offset, first_kept);
}

TEST_F(RetentionTest, DiskAboveTheWatermarkDeletesOldestSegmentsRegardlessOfAge) {
  Fill(60);
  Open(WithRetention(absl::Hours(72), 0.85));
  const uint64_t used = fs_.used_bytes();
  fs_.SetCapacity(used + used / 20);  // ~95% full
  auto report = store_->RunRetention();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->disk_pressure);
  EXPECT_GT(report->deleted_segments, 0);
  EXPECT_LE(fs_.used_bytes(), 0.85 * (used + used / 20));
  EXPECT_GT(store_->GetLogOffsets().min, 0);
}

TEST_F(RetentionTest, AFullDiskAcceptsAppendsAgainOnceRetentionFreesSpace) {
  Fill(40);
  Open(WithRetention(absl::Hours(72), 0.85));
  fs_.SetCapacity(fs_.used_bytes() + 100);
  auto full = store_->Append({testing::MakeRecord("T", 0, std::string(1500, 'z'))});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(store_->RunRetention().ok());
  const AppendResult r = Append("T", 0, std::string(1500, 'z'));
  EXPECT_EQ(r.queue_offset, 40);  // the failed append did not take an offset
  EXPECT_EQ(Bodies("T", 0).back(), std::string(1500, 'z'));
}

TEST_F(RetentionTest, TheBackgroundTaskRunsPasses) {
  Fill(30);
  StoreOptions o = WithRetention(absl::Minutes(1));
  o.retention.check_interval = absl::Milliseconds(5);
  clock_.Advance(absl::Hours(1));
  Open(o);
  EXPECT_TRUE(apogee::testing::PollUntil(
      [&] { return store_->Stats().retention_deleted_segments > 0; }, absl::Seconds(10)));
}

// Retention against a log whose indexes lag: nothing undispatched goes.
class RetentionGuardTest : public ::testing::Test {
 protected:
  apogee::testing::TempDir dir_;
  ManualClock clock_;
};

TEST_F(RetentionGuardTest, NeverDeletesASegmentTheIndexesHaveNotSeen) {
  auto log =
      CommitLog::Open(PosixFileSystem::Default(), &clock_, testing::SmallLogOptions(dir_.path()));
  ASSERT_TRUE(log.ok());
  auto index = IndexStore::Open({dir_.path() + "/index"});
  ASSERT_TRUE(index.ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((*log)->Append({testing::MakeRecord("T", 0, std::string(300, 'x'))}).ok());
  }
  ASSERT_TRUE((*log)->Flush().ok());
  clock_.Advance(absl::Hours(100));
  RetentionOptions options;
  options.disk_usage_watermark = 1.0;
  auto report =
      RunRetention(log->get(), index->get(), PosixFileSystem::Default(), &clock_, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->deleted_segments, 0);  // all expired, none dispatched

  Dispatcher dispatcher(log->get(), index->get());
  ASSERT_TRUE(dispatcher.CatchUp().ok());
  report = RunRetention(log->get(), index->get(), PosixFileSystem::Default(), &clock_, options);
  ASSERT_TRUE(report.ok());
  EXPECT_GT(report->deleted_segments, 0);
  EXPECT_EQ((*log)->ListSegments().size(), 1u);  // everything but the active segment
  auto first = (*log)->ReadRecord((*log)->min_offset());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*index)->GetQueueRange({"T", 0})->min_offset, first->view().queue_offset());
}

}  // namespace
}  // namespace apogee::store
