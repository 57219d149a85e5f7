// Store-level recovery: the commit log is the source of truth and the
// indexes are brought back in line with it on open.
#include "services/store/recovery/recovery.h"

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/commitlog/segment.h"
#include "services/store/testing/records.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RecoveryTest : public testing::StoreHarness {
 protected:
  std::string LogDir() { return Options().data_dir + "/commitlog"; }
  std::string LastSegment() {
    std::string last;
    for (const auto& entry : std::filesystem::directory_iterator(LogDir())) {
      last = std::max(last, entry.path().string());
    }
    return last;
  }
};

TEST_F(RecoveryTest, ReplaysRecordsTheIndexHadNotSeen) {
  Open();
  CreateTopic("T");
  Append("T", 0, "a");
  Append("T", 0, "b");
  store_.reset();
  {  // Records reach the log but not the index (as when the process dies
     // between the append and the dispatch).
    CommitLogOptions o;
    o.dir = LogDir();
    o.segment_size = Options().segment_size;
    o.max_record_size = 8192;
    auto log = CommitLog::Open(&fs_, &clock_, o);
    ASSERT_TRUE(log.ok()) << log.status();
    (*log)->RestoreQueueOffsets({{TopicQueue{"T", 0}, 2}});
    ASSERT_TRUE((*log)->Append({testing::MakeRecord("T", 0, "c")}).ok());
    ASSERT_TRUE((*log)->Append({testing::MakeRecord("T", 1, "d")}).ok());
  }
  Open();
  const RecoveryReport& report = store_->recovery_report();
  EXPECT_LT(report.replayed_from, report.replayed_to);
  EXPECT_EQ(report.replayed_to, store_->GetLogOffsets().max);
  EXPECT_THAT(Bodies("T", 0), ElementsAre("a", "b", "c"));
  EXPECT_THAT(Bodies("T", 1), ElementsAre("d"));
  EXPECT_EQ(Append("T", 1, "e").queue_offset, 1);  // counters restored from the replay
}

TEST_F(RecoveryTest, IndexAheadOfTheLogAfterAnAsyncCrashIsCutBack) {
  Open(FlushMode::kAsync);
  CreateTopic("T");
  Append("T", 0, "kept-1");
  Append("T", 0, "kept-2");
  ASSERT_TRUE(store_->Flush().ok());
  const int64_t flushed = store_->GetLogOffsets().flushed;
  RecordInput lost = testing::MakeRecord("T", 0, "lost", {"k"});
  ASSERT_TRUE(store_->Append({lost}).ok());
  WaitForDispatch();  // the index has seen "lost"; the disk will not keep it
  Crash();

  Open(FlushMode::kAsync);
  EXPECT_EQ(store_->recovery_report().index_truncated_from, flushed);
  EXPECT_EQ(store_->GetQueueRange("T", 0)->next_offset, 2);
  EXPECT_EQ(store_->LookupById(lost.message_id).status().code(), absl::StatusCode::kNotFound);
  RecordInput next = testing::MakeRecord("T", 0, "next");
  auto r = store_->Append({next});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].queue_offset, 2);  // the lost record's offset is reused
  EXPECT_THAT(Bodies("T", 0), ElementsAre("kept-1", "kept-2", "next"));
  // The stale id entry of "lost" points at "next" now, and is not served.
  EXPECT_EQ(store_->LookupById(lost.message_id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->LookupByKey("T", "k").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RecoveryTest, SyncModeCrashKeepsEveryAcknowledgedMessage) {
  Open(FlushMode::kSync);
  CreateTopic("T");
  std::vector<std::thread> threads;
  std::atomic<int> acked{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (store_->Append({testing::MakeRecord("T", t, std::string(900, 'a' + t))}).ok()) {
          ++acked;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  Crash();
  Open(FlushMode::kSync);
  EXPECT_EQ(acked.load(), 60);
  for (int q = 0; q < 3; ++q) EXPECT_EQ(Bodies("T", q).size(), 20u) << "queue " << q;
}

TEST_F(RecoveryTest, TornTailIsTruncatedAndNeverServed) {
  Open();
  CreateTopic("T");
  Append("T", 0, "a");
  const AppendResult b = Append("T", 0, "b");
  store_.reset();
  std::string torn;
  EncodeRecord(testing::MakeRecord("T", 0, "torn"), RecordPosition{b.commit_offset + b.size, 2, 0},
               &torn);
  testing::AppendFileBytes(LastSegment(), torn.substr(0, torn.size() - 3));
  Open();
  EXPECT_EQ(store_->recovery_report().log.truncated_bytes, static_cast<int64_t>(torn.size() - 3));
  EXPECT_THAT(Bodies("T", 0), ElementsAre("a", "b"));
  EXPECT_EQ(Append("T", 0, "c").commit_offset, b.commit_offset + b.size);
}

TEST_F(RecoveryTest, CorruptAcknowledgedDataInSyncModeRefusesToOpen) {
  Open(FlushMode::kSync);
  CreateTopic("T");
  Append("T", 0, "a");
  const AppendResult b = Append("T", 0, "bbbbbbbb");
  Append("T", 0, "c");
  store_.reset();
  testing::PatchFileBytes(LastSegment(), b.commit_offset + b.size - 2, "XX");
  auto store = Store::Create(Options(FlushMode::kSync));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("refusing to truncate acknowledged data"));
}

// store_recovery fuzz finding 2 (docs/fuzzing.md): the last segment starts
// inside the previous segment's last record, so it is corrupt from its first
// byte. Recovery cuts that record from the previous segment: the store opens,
// with its index kept or rebuilt, serves the whole records and appends after them.
TEST_F(RecoveryTest, ARecordTornAcrossTheLastSegmentBoundaryIsCutAndTheStoreOpens) {
  Open();
  CreateTopic("T");
  Append("T", 0, "a");
  Append("T", 0, "b");
  const AppendResult c = Append("T", 0, "ccccccccccccccccccccccccc");
  WaitForDispatch();
  store_.reset();
  const std::string first = LastSegment();
  const std::string bytes = testing::ReadFileBytes(first);
  const int64_t cut = c.commit_offset + c.size / 2;
  ASSERT_EQ(bytes.size(), static_cast<size_t>(c.commit_offset + c.size));  // one segment from 0
  std::filesystem::resize_file(first, static_cast<uintmax_t>(cut));
  testing::AppendFileBytes(LogDir() + "/" + Segment::FileName(cut),
                           bytes.substr(static_cast<size_t>(cut)));

  // In sync mode c was acknowledged as durable: refuse rather than drop it.
  auto refused = Store::Create(Options(FlushMode::kSync));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(), HasSubstr("refusing to truncate acknowledged data"));

  Open();  // async: c was never flushed, so losing it is what a crash allows
  const RecoveryReport& report = store_->recovery_report();
  EXPECT_EQ(report.index_truncated_from, c.commit_offset);
  EXPECT_THAT(report.log.truncation_reason, HasSubstr(Segment::FileName(cut)));
  EXPECT_THAT(report.log.truncation_reason,
              HasSubstr(absl::StrCat("record at offset ", c.commit_offset)));
  EXPECT_THAT(Bodies("T", 0), ElementsAre("a", "b"));
  const AppendResult d = Append("T", 0, "d");
  EXPECT_EQ(d.commit_offset, c.commit_offset);
  EXPECT_EQ(d.queue_offset, 2);

  StoreOptions rebuild = Options();
  rebuild.rebuild_indexes = true;
  Open(rebuild);
  EXPECT_THAT(Bodies("T", 0), ElementsAre("a", "b", "d"));
}

TEST_F(RecoveryTest, IndexesAreRebuiltFromTheLogKeepingOffsetsAndConfigs) {
  Open();
  CreateTopic("T");
  for (int i = 0; i < 20; ++i) Append("T", i % 2, std::string(1500, 'a' + i), {"key"});
  WaitForDispatch();
  ASSERT_TRUE(store_->CommitOffset("g", "T", 0, 3).ok());
  StoreOptions rebuild = Options();
  rebuild.rebuild_indexes = true;
  Open(rebuild);
  EXPECT_TRUE(store_->recovery_report().index_rebuilt);
  EXPECT_EQ(store_->recovery_report().replayed_to, store_->GetLogOffsets().max);
  EXPECT_EQ(Bodies("T", 0).size(), 10u);
  EXPECT_EQ(store_->LookupByKey("T", "key", 100)->size(), 20u);
  EXPECT_EQ(store_->FetchOffset("g", "T", 0)->offset, 3);

  // Losing the whole RocksDB directory loses configs and offsets (they live
  // only there) but the messages come back from the log.
  store_.reset();
  std::filesystem::remove_all(Options().data_dir + "/index");
  Open();
  EXPECT_TRUE(store_->recovery_report().index_rebuilt);
  CreateTopic("T");
  EXPECT_EQ(Bodies("T", 1).size(), 10u);
  EXPECT_EQ(Append("T", 1, "next").queue_offset, 10);
}

TEST_F(RecoveryTest, ASegmentDeletedBeforeTheIndexWasTrimmedIsTrimmedOnOpen) {
  Open();
  CreateTopic("T");
  for (int i = 0; i < 30; ++i) Append("T", 0, std::string(1500, 'x'));
  WaitForDispatch();
  store_.reset();
  std::filesystem::remove(LogDir() + "/00000000000000000000.log");  // retention, then a crash
  Open();
  const QueueRange range = *store_->GetQueueRange("T", 0);
  EXPECT_GT(range.min_offset, 0);
  EXPECT_EQ(range.next_offset, 30);
  EXPECT_EQ(Bodies("T", 0).size(), static_cast<size_t>(30 - range.min_offset));
  ReadRequest below;
  below.topic = "T";
  below.offset = 0;
  EXPECT_EQ(store_->Read(below).status().code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace apogee::store
