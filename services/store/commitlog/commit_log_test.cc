#include "services/store/commitlog/commit_log.h"

#include <filesystem>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "services/store/io/posix_file_system.h"
#include "services/store/testing/records.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;
using testing::MakeRecord;

class CommitLogTest : public ::testing::Test {
 protected:
  CommitLogOptions Options(FlushMode mode = FlushMode::kAsync) {
    return testing::SmallLogOptions(dir_.path(), mode);
  }

  std::unique_ptr<CommitLog> OpenLog(CommitLogOptions options) {
    auto log = CommitLog::Open(PosixFileSystem::Default(), &clock_, std::move(options));
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }

  AppendResult AppendOne(CommitLog* log, RecordInput record) {
    auto result = log->Append({std::move(record)});
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? (*result)[0] : AppendResult{};
  }

  std::string SegmentPath(int64_t start) { return Options().dir + "/" + Segment::FileName(start); }

  apogee::testing::TempDir dir_;
  ManualClock clock_;
};

TEST_F(CommitLogTest, AssignsContiguousCommitOffsetsAndPerQueueOffsets) {
  auto log = OpenLog(Options());
  auto batch = log->Append({MakeRecord("A", 0), MakeRecord("A", 1), MakeRecord("A", 0)});
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_EQ((*batch)[0].commit_offset, 0);
  EXPECT_EQ((*batch)[1].commit_offset, (*batch)[0].size);
  EXPECT_EQ((*batch)[2].commit_offset, (*batch)[1].commit_offset + (*batch)[1].size);
  EXPECT_EQ((*batch)[0].queue_offset, 0);
  EXPECT_EQ((*batch)[1].queue_offset, 0);
  EXPECT_EQ((*batch)[2].queue_offset, 1);
  EXPECT_EQ((*batch)[0].store_timestamp_ms, absl::ToUnixMillis(clock_.Now()));
  EXPECT_EQ(log->written_offset(), (*batch)[2].commit_offset + (*batch)[2].size);
  EXPECT_EQ(log->committed_offset(), log->written_offset());  // async: visible once written

  auto record = log->ReadRecord((*batch)[1].commit_offset);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->view().topic(), "A");
  EXPECT_EQ(record->view().queue_id(), 1);
  EXPECT_EQ(log->stats().appended_records, 3);
}

TEST_F(CommitLogTest, StoreTimestampsNeverGoBackwards) {
  auto log = OpenLog(Options());
  const AppendResult first = AppendOne(log.get(), MakeRecord("A", 0));
  clock_.Advance(absl::Seconds(-10));
  const AppendResult second = AppendOne(log.get(), MakeRecord("A", 0));
  EXPECT_EQ(second.store_timestamp_ms, first.store_timestamp_ms);
}

TEST_F(CommitLogTest, RollsSegmentsWithoutSplittingRecordsOrBatches) {
  auto log = OpenLog(Options());
  std::vector<AppendResult> all;
  for (int i = 0; i < 40; ++i) {
    auto r = log->Append({MakeRecord("A", 0, std::string(150, 'a' + i % 26)),
                          MakeRecord("B", 0, std::string(100, 'z'))});
    ASSERT_TRUE(r.ok()) << r.status();
    all.insert(all.end(), r->begin(), r->end());
  }
  const std::vector<SegmentInfo> segments = log->ListSegments();
  ASSERT_GT(segments.size(), 3u);
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    EXPECT_EQ(segments[i].end, segments[i + 1].start);
    EXPECT_LE(segments[i].end - segments[i].start, 4096);
    EXPECT_EQ(segments[i].path, SegmentPath(segments[i].start));
  }
  EXPECT_TRUE(segments.back().active);
  for (size_t i = 0; i + 1 < all.size(); i += 2) {
    // A batch never straddles segments.
    int64_t seg_a = -1, seg_b = -1;
    for (const SegmentInfo& s : segments) {
      if (all[i].commit_offset >= s.start && all[i].commit_offset < s.end) seg_a = s.start;
      if (all[i + 1].commit_offset >= s.start && all[i + 1].commit_offset < s.end) seg_b = s.start;
    }
    EXPECT_EQ(seg_a, seg_b);
    ASSERT_TRUE(log->ReadRecord(all[i].commit_offset, all[i].size).ok());
  }
}

TEST_F(CommitLogTest, ChunksAreTheRawFileBytesFromAnyRecordBoundary) {
  auto log = OpenLog(Options());
  std::vector<AppendResult> all;
  for (int i = 0; i < 30; ++i) all.push_back(AppendOne(log.get(), MakeRecord("A", i % 3)));
  std::string streamed;
  int64_t offset = all[5].commit_offset;
  int records = 0;
  while (true) {
    auto chunk = log->ReadChunk(offset, 300, log->written_offset());
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (chunk->records.empty()) break;
    EXPECT_EQ(chunk->start, offset);
    EXPECT_EQ(chunk->records.front().commit_offset(), offset);
    streamed.append(*chunk->data, 0, chunk->end - chunk->start);
    records += static_cast<int>(chunk->records.size());
    offset = chunk->end;
  }
  EXPECT_EQ(records, 25);
  std::string on_disk;
  for (const SegmentInfo& s : log->ListSegments()) on_disk += testing::ReadFileBytes(s.path);
  EXPECT_EQ(streamed, on_disk.substr(all[5].commit_offset));
}

TEST_F(CommitLogTest, RejectsOversizeRecordsAndBatchesNamingTheLimit) {
  auto log = OpenLog(Options());
  auto big = log->Append({MakeRecord("A", 0, std::string(2000, 'x'))});
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("batch record 0 (topic \"A\") encodes to"));
  EXPECT_THAT(big.status().message(), HasSubstr("bytes (max record size 1024)"));
  std::vector<RecordInput> batch(10, MakeRecord("A", 0, std::string(900, 'x')));
  auto huge = log->Append(batch);
  EXPECT_THAT(huge.status().message(), HasSubstr("(max segment size 4096)"));
  EXPECT_EQ(log->Append({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->written_offset(), 0);
}

TEST_F(CommitLogTest, ReadsOutsideTheLogAreOutOfRange) {
  auto log = OpenLog(Options());
  const AppendResult r = AppendOne(log.get(), MakeRecord("A", 0));
  auto past = log->ReadRecord(r.size);
  EXPECT_EQ(past.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(past.status().message(), HasSubstr("at or past the log's end"));
  auto chunk = log->ReadChunk(r.size, 100, 1 << 20);
  ASSERT_TRUE(chunk.ok());
  EXPECT_TRUE(chunk->records.empty());
  auto middle = log->ReadRecord(3);
  EXPECT_EQ(middle.status().code(), absl::StatusCode::kDataLoss);  // not a record boundary
}

TEST_F(CommitLogTest, ReopenContinuesWhereTheLogEnded) {
  int64_t end = 0;
  {
    auto log = OpenLog(Options());
    for (int i = 0; i < 50; ++i) AppendOne(log.get(), MakeRecord("A", 0, std::string(100, 'q')));
    ASSERT_TRUE(log->Flush().ok());
    end = log->written_offset();
  }
  auto log = OpenLog(Options());
  EXPECT_EQ(log->written_offset(), end);
  EXPECT_EQ(log->recovery_info().truncated_bytes, 0);
  EXPECT_GT(log->recovery_info().segments, 1);
  log->RestoreQueueOffsets({{TopicQueue{"A", 0}, 50}});
  const AppendResult next = AppendOne(log.get(), MakeRecord("A", 0));
  EXPECT_EQ(next.commit_offset, end);
  EXPECT_EQ(next.queue_offset, 50);
}

TEST_F(CommitLogTest, RecoveryTruncatesATornTail) {
  int64_t end = 0;
  std::string last_path;
  {
    auto log = OpenLog(Options());
    for (int i = 0; i < 5; ++i) AppendOne(log.get(), MakeRecord("A", 0));
    end = log->written_offset();
    last_path = log->ListSegments().back().path;
  }
  std::string partial;
  EncodeRecord(MakeRecord("A", 0), RecordPosition{end, 5, 0}, &partial);
  testing::AppendFileBytes(last_path, partial.substr(0, partial.size() / 2));

  auto log = OpenLog(Options());
  EXPECT_EQ(log->written_offset(), end);
  EXPECT_EQ(log->recovery_info().truncated_bytes, static_cast<int64_t>(partial.size() / 2));
  EXPECT_THAT(log->recovery_info().truncation_reason, HasSubstr("truncated"));
  EXPECT_EQ(testing::ReadFileBytes(last_path).size(), static_cast<size_t>(end));
  EXPECT_EQ(AppendOne(log.get(), MakeRecord("A", 0)).commit_offset, end);
}

// A batch is atomic on disk too: if a crash leaves only some of its records
// whole, recovery cuts all of them.
TEST_F(CommitLogTest, RecoveryCutsAPartlyWrittenBatchWhole) {
  int64_t batch_start = 0;
  std::string last_path;
  int64_t segment_start = 0;
  std::vector<AppendResult> batch;
  {
    auto log = OpenLog(Options());
    AppendOne(log.get(), MakeRecord("A", 0, "before"));
    batch_start = log->written_offset();
    auto appended =
        log->Append({MakeRecord("A", 0, "b1"), MakeRecord("A", 1, "b2"), MakeRecord("A", 0, "b3")});
    ASSERT_TRUE(appended.ok()) << appended.status();
    batch = *appended;
    last_path = log->ListSegments().back().path;
    segment_start = log->ListSegments().back().start;
    auto first = log->ReadRecord(batch[0].commit_offset);
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE(first->view().batch_continues());
    EXPECT_EQ(first->view().flags(), MakeRecord("A", 0).flags);  // the bit is the engine's
    auto last = log->ReadRecord(batch[2].commit_offset);
    ASSERT_TRUE(last.ok());
    EXPECT_FALSE(last->view().batch_continues());
  }
  // The crash kept the first two records of the batch whole, not the third.
  std::filesystem::resize_file(last_path,
                               static_cast<uintmax_t>(batch[2].commit_offset - segment_start));

  auto log = OpenLog(Options());
  EXPECT_EQ(log->written_offset(), batch_start);
  EXPECT_THAT(log->recovery_info().truncation_reason, HasSubstr("incomplete"));
  log->RestoreQueueOffsets({{TopicQueue{"A", 0}, 1}, {TopicQueue{"A", 1}, 0}});
  EXPECT_EQ(AppendOne(log.get(), MakeRecord("A", 0)).commit_offset, batch_start);
}

TEST_F(CommitLogTest, RejectsTheEngineFlagBitFromProducers) {
  auto log = OpenLog(Options());
  RecordInput record = MakeRecord("A", 0);
  record.flags = kBatchContinuesFlag;
  auto appended = log->Append({record});
  ASSERT_FALSE(appended.ok());
  EXPECT_THAT(appended.status().message(), HasSubstr("bit 31"));
}

TEST_F(CommitLogTest, RecoveryTruncatesAtTheFirstCorruptRecordUnlessProtected) {
  std::vector<AppendResult> all;
  std::string path;
  {
    auto log = OpenLog(Options());
    for (int i = 0; i < 5; ++i) all.push_back(AppendOne(log.get(), MakeRecord("A", 0)));
    path = log->ListSegments().back().path;
  }
  testing::PatchFileBytes(path, all[3].commit_offset + 70, "X");  // inside record 3's topic

  CommitLogOptions protected_options = Options(FlushMode::kSync);
  protected_options.protected_offset = all[4].commit_offset;
  auto refused = CommitLog::Open(PosixFileSystem::Default(), &clock_, protected_options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(), HasSubstr("CRC32C mismatch"));
  EXPECT_THAT(refused.status().message(), HasSubstr("refusing to truncate acknowledged data"));

  auto log = OpenLog(Options());
  EXPECT_EQ(log->written_offset(), all[3].commit_offset);
  EXPECT_THAT(log->recovery_info().truncation_reason, HasSubstr("CRC32C mismatch"));
  EXPECT_TRUE(log->ReadRecord(all[2].commit_offset).ok());
}

TEST_F(CommitLogTest, CorruptionInASealedSegmentFailsReadsWithDataLoss) {
  std::vector<AppendResult> all;
  {
    auto log = OpenLog(Options());
    for (int i = 0; i < 40; ++i) {
      all.push_back(AppendOne(log.get(), MakeRecord("A", 0, std::string(200, 'r'))));
    }
  }
  testing::PatchFileBytes(SegmentPath(0), all[1].commit_offset + 100, "XX");
  auto log = OpenLog(Options());
  EXPECT_EQ(log->recovery_info().truncated_bytes, 0);  // only the last segment is scanned
  auto bad = log->ReadRecord(all[1].commit_offset, all[1].size);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr(SegmentPath(0)));
  auto good = log->ReadChunk(all[0].commit_offset, 4096, log->written_offset());
  ASSERT_TRUE(good.ok());  // the records before the corrupt one
  EXPECT_EQ(good->records.size(), 1u);
  auto chunk = log->ReadChunk(good->end, 4096, log->written_offset());
  EXPECT_EQ(chunk.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(log->ReadRecord(all[0].commit_offset).ok());
}

TEST_F(CommitLogTest, AGapBetweenSegmentsIsDataLoss) {
  {
    auto log = OpenLog(Options());
    for (int i = 0; i < 40; ++i) AppendOne(log.get(), MakeRecord("A", 0, std::string(200, 'g')));
  }
  testing::AppendFileBytes(SegmentPath(0), "junk");
  auto log = CommitLog::Open(PosixFileSystem::Default(), &clock_, Options());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(log.status().message(), HasSubstr("but the next segment starts at"));
}

TEST_F(CommitLogTest, FlushMakesWrittenDataDurableInAsyncMode) {
  auto log = OpenLog(Options());
  AppendOne(log.get(), MakeRecord("A", 0));
  EXPECT_EQ(log->flushed_offset(), 0);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->flushed_offset(), log->written_offset());
}

TEST_F(CommitLogTest, SyncModeCommitsOnlyAfterTheSyncAndNotifiesTheListener) {
  auto log = OpenLog(Options(FlushMode::kSync));
  std::vector<int64_t> seen;
  log->SetCommitListener([&](int64_t end) { seen.push_back(end); });
  const AppendResult r = AppendOne(log.get(), MakeRecord("A", 0));
  EXPECT_EQ(log->flushed_offset(), r.commit_offset + r.size);
  EXPECT_EQ(log->committed_offset(), log->flushed_offset());
  EXPECT_EQ(seen, std::vector<int64_t>{r.size});
}

TEST_F(CommitLogTest, ConcurrentAppendsGetDistinctOffsetsAndDenseQueueOffsets) {
  auto log = OpenLog(Options(FlushMode::kSync));
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::vector<AppendResult>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = log->Append({MakeRecord("A", 0)});
        ASSERT_TRUE(r.ok()) << r.status();
        results[t].push_back((*r)[0]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<int64_t> commit_offsets, queue_offsets;
  for (const auto& per_thread : results) {
    for (const AppendResult& r : per_thread) {
      commit_offsets.insert(r.commit_offset);
      queue_offsets.insert(r.queue_offset);
    }
  }
  EXPECT_EQ(commit_offsets.size(), kThreads * kPerThread);
  EXPECT_EQ(*queue_offsets.rbegin(), kThreads * kPerThread - 1);
  EXPECT_EQ(queue_offsets.size(), kThreads * kPerThread);
  EXPECT_LE(log->stats().group_commits, kThreads * kPerThread);
}

TEST_F(CommitLogTest, DeletesOnlyWholeSealedSegments) {
  auto log = OpenLog(Options());
  for (int i = 0; i < 40; ++i) AppendOne(log.get(), MakeRecord("A", 0, std::string(200, 'd')));
  const std::vector<SegmentInfo> before = log->ListSegments();
  ASSERT_GE(before.size(), 3u);
  auto deleted = log->DeleteSegmentsBefore(before[1].end - 1);  // only segment 0 ends by then
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1);
  EXPECT_EQ(log->min_offset(), before[1].start);
  EXPECT_EQ(log->ReadRecord(0).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(*PosixFileSystem::Default()->Exists(before[0].path));
  EXPECT_EQ(*log->DeleteSegmentsBefore(log->written_offset() + 100),
            static_cast<int>(before.size()) - 2);
  EXPECT_EQ(log->ListSegments().size(), 1u);  // never the active segment
}

}  // namespace
}  // namespace apogee::store
