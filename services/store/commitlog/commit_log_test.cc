#include "services/store/commitlog/commit_log.h"

#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
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

TEST_F(CommitLogTest, ReadsRecordsLaidEndToEndInOneGoUpToTheSegmentEnd) {
  auto log = OpenLog(Options());  // 4 KiB segments
  std::vector<AppendResult> all;
  for (int i = 0; i < 30; ++i) {
    all.push_back(AppendOne(log.get(), MakeRecord("A", i % 2, std::string(200, 'a' + i % 26))));
  }
  ASSERT_GT(log->ListSegments().size(), 1u);
  std::vector<uint32_t> sizes;
  for (const AppendResult& r : all) sizes.push_back(r.size);
  auto first = log->ReadRecords(all[0].commit_offset, sizes);
  ASSERT_TRUE(first.ok()) << first.status();
  // Stops where segment 0 ends; every record is whole and the right one.
  const int64_t segment_end = log->ListSegments()[0].end;
  size_t in_first = 0;
  while (in_first < all.size() && all[in_first].commit_offset < segment_end) ++in_first;
  ASSERT_EQ(first->size(), in_first);
  for (size_t i = 0; i < first->size(); ++i) {
    const RecordView view = (*first)[i].view();
    EXPECT_EQ(view.commit_offset(), all[i].commit_offset);
    EXPECT_EQ(view.body(), std::string(200, 'a' + i % 26));
  }
  // The caller goes on from there.
  auto rest =
      log->ReadRecords(all[in_first].commit_offset, absl::MakeConstSpan(sizes).subspan(in_first));
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ((*rest)[0].view().commit_offset(), all[in_first].commit_offset);
}

TEST_F(CommitLogTest, ReadingRecordsStopsBeforeOneThatDoesNotVerify) {
  std::vector<AppendResult> all;
  {
    auto log = OpenLog(Options());
    // Past segment 0, which recovery then leaves as it is.
    for (int i = 0; i < 40; ++i) {
      all.push_back(AppendOne(log.get(), MakeRecord("A", 0, std::string(200, 'r'))));
    }
  }
  testing::PatchFileBytes(SegmentPath(0), all[2].commit_offset + 100, "XX");
  auto log = OpenLog(Options());
  const std::vector<uint32_t> sizes = {all[0].size, all[1].size, all[2].size, all[3].size};
  auto good = log->ReadRecords(all[0].commit_offset, sizes);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->size(), 2u);  // the two before the damage
  auto bad = log->ReadRecords(all[2].commit_offset, absl::MakeConstSpan(sizes).subspan(2));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr(SegmentPath(0)));
  // A wrong first size is read as ReadRecord would: by the record's own length.
  auto resized = log->ReadRecords(all[0].commit_offset, {all[0].size + 7});
  ASSERT_TRUE(resized.ok()) << resized.status();
  EXPECT_EQ((*resized)[0].view().commit_offset(), all[0].commit_offset);
}

// Recovery of the log's last segments: wherever the damage is, the log
// ends at its last whole, checksummed record (store_recovery fuzz finding 2,
// docs/fuzzing.md).
class CommitLogTailTest : public CommitLogTest {
 protected:
  // Five records in segment 0; the log closed.
  void WriteFive() {
    auto log = OpenLog(Options());
    for (int i = 0; i < 5; ++i) {
      records_.push_back(AppendOne(log.get(), MakeRecord("A", 0, "r" + std::to_string(i))));
    }
    ASSERT_EQ(log->ListSegments().size(), 1u);
  }
  // Lays segment 0 out again as two segments split at `cut`: the second
  // starts where the first ends, as a roll leaves them.
  void SplitAt(int64_t cut) {
    const std::string bytes = testing::ReadFileBytes(SegmentPath(0));
    std::filesystem::resize_file(SegmentPath(0), static_cast<uintmax_t>(cut));
    testing::AppendFileBytes(SegmentPath(cut), bytes.substr(static_cast<size_t>(cut)));
  }
  // Every record below the end reads back and the next append lands there.
  void ExpectWholeLogEndingAt(CommitLog* log, int64_t end, int kept) {
    EXPECT_EQ(log->written_offset(), end);
    for (int i = 0; i < kept; ++i) {
      auto record = log->ReadRecord(records_[i].commit_offset);
      ASSERT_TRUE(record.ok()) << record.status();
      EXPECT_EQ(record->view().body(), "r" + std::to_string(i));
    }
    log->RestoreQueueOffsets({{TopicQueue{"A", 0}, kept}});
    const AppendResult next = AppendOne(log, MakeRecord("A", 0, "next"));
    EXPECT_EQ(next.commit_offset, end);
    auto back = log->ReadRecord(next.commit_offset);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->view().body(), "next");
  }
  std::vector<AppendResult> records_;
};

TEST_F(CommitLogTailTest, ARecordTornAcrossTheLastSegmentBoundaryIsCutFromTheOneBefore) {
  WriteFive();
  // The last segment starts inside record 3, so it is corrupt from its first
  // byte and the segment before it ends inside a record.
  const int64_t cut = records_[3].commit_offset + 10;
  SplitAt(cut);
  auto log = OpenLog(Options());
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(std::filesystem::exists(SegmentPath(cut)));
  EXPECT_EQ(std::filesystem::file_size(SegmentPath(0)),
            static_cast<uintmax_t>(records_[3].commit_offset));
  const LogRecoveryInfo& info = log->recovery_info();
  EXPECT_EQ(info.segments, 1);
  EXPECT_EQ(info.truncated_bytes,
            records_[4].commit_offset + records_[4].size - records_[3].commit_offset);
  EXPECT_THAT(info.truncation_reason, HasSubstr(SegmentPath(cut)));
  EXPECT_THAT(info.truncation_reason, HasSubstr(SegmentPath(0)));
  EXPECT_THAT(info.truncation_reason,
              HasSubstr(absl::StrCat("record at offset ", records_[3].commit_offset)));
  EXPECT_THAT(info.truncation_reason, HasSubstr("removed " + SegmentPath(cut)));
  ExpectWholeLogEndingAt(log.get(), records_[3].commit_offset, 3);
  const int64_t end = log->written_offset();
  ASSERT_TRUE(log->Flush().ok());
  log.reset();
  // The repair is durable: the next open finds a clean log.
  log = OpenLog(Options());
  EXPECT_EQ(log->recovery_info().truncated_bytes, 0);
  EXPECT_EQ(log->written_offset(), end);
}

TEST_F(CommitLogTailTest, ATornBoundaryBelowTheProtectedOffsetRefusesAndChangesNothing) {
  WriteFive();
  const int64_t cut = records_[3].commit_offset + 10;
  SplitAt(cut);
  CommitLogOptions options = Options(FlushMode::kSync);
  options.protected_offset = records_[4].commit_offset;
  auto refused = CommitLog::Open(PosixFileSystem::Default(), &clock_, options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(), HasSubstr("refusing to truncate acknowledged data"));
  EXPECT_THAT(refused.status().message(), HasSubstr(SegmentPath(0)));
  EXPECT_EQ(std::filesystem::file_size(SegmentPath(0)), static_cast<uintmax_t>(cut));
  EXPECT_TRUE(std::filesystem::exists(SegmentPath(cut)));
}

TEST_F(CommitLogTailTest, AnEmptyLastSegmentKeepsAWholeLogBeforeIt) {
  WriteFive();
  const int64_t end = records_[4].commit_offset + records_[4].size;
  testing::AppendFileBytes(SegmentPath(end), "");  // a crash right after a roll
  auto log = OpenLog(Options());
  EXPECT_EQ(log->recovery_info().truncated_bytes, 0);
  EXPECT_EQ(log->recovery_info().segments, 2);
  EXPECT_EQ(log->recovery_info().scanned_bytes, end);  // the segment before was checked
  ExpectWholeLogEndingAt(log.get(), end, 5);
}

TEST_F(CommitLogTailTest, AnEmptyLastSegmentAfterATornOneCutsTheTornOne) {
  WriteFive();
  const int64_t cut = records_[2].commit_offset + 3;
  std::filesystem::resize_file(SegmentPath(0), static_cast<uintmax_t>(cut));
  testing::AppendFileBytes(SegmentPath(cut), "");
  auto log = OpenLog(Options());
  EXPECT_FALSE(std::filesystem::exists(SegmentPath(cut)));
  EXPECT_THAT(log->recovery_info().truncation_reason, HasSubstr(SegmentPath(cut) + " is empty"));
  ExpectWholeLogEndingAt(log.get(), records_[2].commit_offset, 2);
}

TEST_F(CommitLogTailTest, ALastSegmentCorruptFromItsFirstByteAfterAWholeOneIsEmptied) {
  WriteFive();
  const int64_t cut = records_[3].commit_offset;  // a record boundary
  SplitAt(cut);
  testing::PatchFileBytes(SegmentPath(cut), 0, "XXXX");
  auto log = OpenLog(Options());
  EXPECT_TRUE(std::filesystem::exists(SegmentPath(cut)));
  EXPECT_EQ(std::filesystem::file_size(SegmentPath(cut)), 0u);
  EXPECT_EQ(std::filesystem::file_size(SegmentPath(0)), static_cast<uintmax_t>(cut));
  ExpectWholeLogEndingAt(log.get(), cut, 3);
}

TEST_F(CommitLogTailTest, TwoSegmentsWithoutAWholeRecordAreBothRemoved) {
  WriteFive();
  const std::string bytes = testing::ReadFileBytes(SegmentPath(0));
  const int64_t first = records_[1].commit_offset + 5;
  const int64_t second = records_[2].commit_offset + 5;
  std::filesystem::resize_file(SegmentPath(0), static_cast<uintmax_t>(first));
  testing::AppendFileBytes(SegmentPath(first), bytes.substr(static_cast<size_t>(first),
                                                            static_cast<size_t>(second - first)));
  testing::AppendFileBytes(SegmentPath(second), bytes.substr(static_cast<size_t>(second)));
  auto log = OpenLog(Options());
  EXPECT_FALSE(std::filesystem::exists(SegmentPath(first)));
  EXPECT_FALSE(std::filesystem::exists(SegmentPath(second)));
  ExpectWholeLogEndingAt(log.get(), records_[1].commit_offset, 1);
}

TEST_F(CommitLogTailTest, AZeroFilledTailIsCut) {
  WriteFive();
  const int64_t end = records_[4].commit_offset + records_[4].size;
  testing::AppendFileBytes(SegmentPath(0), std::string(512, '\0'));  // preallocated, never written
  auto log = OpenLog(Options());
  EXPECT_EQ(log->recovery_info().truncated_bytes, 512);
  EXPECT_THAT(log->recovery_info().truncation_reason,
              HasSubstr(absl::StrCat("record at offset ", end)));
  EXPECT_EQ(std::filesystem::file_size(SegmentPath(0)), static_cast<uintmax_t>(end));
  ExpectWholeLogEndingAt(log.get(), end, 5);
}

TEST_F(CommitLogTailTest, ACorruptRecordInTheMiddleOfTheLastSegmentCutsFromThere) {
  WriteFive();
  SplitAt(records_[1].commit_offset);
  testing::PatchFileBytes(SegmentPath(records_[1].commit_offset),
                          records_[3].commit_offset - records_[1].commit_offset + 70, "Z");
  auto log = OpenLog(Options());
  EXPECT_TRUE(std::filesystem::exists(SegmentPath(records_[1].commit_offset)));
  EXPECT_THAT(log->recovery_info().truncation_reason,
              HasSubstr(SegmentPath(records_[1].commit_offset)));
  ExpectWholeLogEndingAt(log.get(), records_[3].commit_offset, 3);
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
