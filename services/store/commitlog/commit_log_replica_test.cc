// The follower side of the commit log: AppendRaw (another log's bytes, CRC
// checked) and TruncateTo (cutting a divergent tail).
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "services/store/commitlog/commit_log.h"
#include "services/store/io/posix_file_system.h"
#include "services/store/testing/records.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;
using testing::MakeRecord;

class CommitLogReplicaTest : public ::testing::Test {
 protected:
  std::unique_ptr<CommitLog> OpenLog(const std::string& name, FlushMode mode = FlushMode::kAsync) {
    auto log = CommitLog::Open(PosixFileSystem::Default(), &clock_,
                               testing::SmallLogOptions(dir_.path() + "/" + name, mode));
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Copies `from` into `to` chunk by chunk, as the replication stream does.
  void Copy(const CommitLog& from, CommitLog* to) {
    while (to->written_offset() < from.written_offset()) {
      auto chunk = from.ReadChunk(to->written_offset(), 700, from.written_offset());
      ASSERT_TRUE(chunk.ok()) << chunk.status();
      // ReadChunk's buffer may hold a partial record past chunk->end.
      auto end = to->AppendRaw(chunk->start,
                               absl::string_view(*chunk->data)
                                   .substr(0, static_cast<size_t>(chunk->end - chunk->start)));
      ASSERT_TRUE(end.ok()) << end.status();
      ASSERT_EQ(*end, chunk->end);
    }
  }

  std::string AllBytes(const CommitLog& log) {
    std::string out;
    int64_t at = log.min_offset();
    while (at < log.written_offset()) {
      auto c = log.ReadChunk(at, 1 << 20, log.written_offset());
      EXPECT_TRUE(c.ok()) << c.status();
      if (!c.ok()) break;
      out += c->data->substr(0, static_cast<size_t>(c->end - c->start));
      at = c->end;
    }
    return out;
  }

  apogee::testing::TempDir dir_;
  ManualClock clock_;
};

TEST_F(CommitLogReplicaTest, RawCopyIsByteIdenticalAcrossSegments) {
  auto master = OpenLog("master");
  auto replica = OpenLog("replica", FlushMode::kSync);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(master->Append({MakeRecord("A", i % 2, std::string(120, 'a' + i % 26))}).ok());
  }
  Copy(*master, replica.get());
  EXPECT_EQ(replica->written_offset(), master->written_offset());
  EXPECT_EQ(replica->flushed_offset(), master->written_offset());  // sync: on disk
  EXPECT_GT(replica->ListSegments().size(), 1u);
  EXPECT_TRUE(AllBytes(*replica) == AllBytes(*master));
  // Queue counters follow the record headers: a local append continues them.
  auto next = replica->Append({MakeRecord("A", 1)});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)[0].queue_offset, 15);
  // And the copy survives a reopen (recovery accepts it).
  const int64_t end = replica->written_offset();
  replica.reset();
  replica = OpenLog("replica", FlushMode::kSync);
  EXPECT_EQ(replica->written_offset(), end);
  EXPECT_EQ(replica->recovery_info().truncated_bytes, 0);
}

TEST_F(CommitLogReplicaTest, CorruptChunkIsRefusedWhole) {
  auto master = OpenLog("master");
  auto replica = OpenLog("replica");
  ASSERT_TRUE(master->Append({MakeRecord("A", 0), MakeRecord("A", 0), MakeRecord("A", 0)}).ok());
  auto chunk = master->ReadChunk(0, 1 << 20, master->written_offset());
  ASSERT_TRUE(chunk.ok());
  ASSERT_EQ(chunk->records.size(), 3u);
  std::string bad = *chunk->data;
  bad[bad.size() - 3] ^= 0x40;  // inside the last record's body
  auto refused = replica->AppendRaw(0, bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrCat("record at offset ", chunk->records[2].commit_offset())));
  EXPECT_EQ(replica->written_offset(), 0);  // nothing of it written

  // A chunk cut inside a record, or not at the log end, is refused too.
  auto torn = replica->AppendRaw(0, absl::string_view(*chunk->data).substr(0, 100));
  EXPECT_EQ(torn.status().code(), absl::StatusCode::kDataLoss);
  auto misplaced =
      replica->AppendRaw(chunk->records[1].commit_offset(),
                         absl::string_view(*chunk->data)
                             .substr(static_cast<size_t>(chunk->records[1].commit_offset())));
  EXPECT_EQ(misplaced.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(replica->written_offset(), 0);
  EXPECT_TRUE(replica->AppendRaw(0, *chunk->data).ok());
}

TEST_F(CommitLogReplicaTest, TruncateDropsTheTailAcrossSegments) {
  auto log = OpenLog("log");
  std::vector<AppendResult> all;
  for (int i = 0; i < 40; ++i) {
    auto r = log->Append({MakeRecord("A", 0, std::string(150, 'x'))});
    ASSERT_TRUE(r.ok());
    all.push_back((*r)[0]);
  }
  ASSERT_GT(log->ListSegments().size(), 2u);
  const int64_t end = log->written_offset();
  const int64_t cut = all[10].commit_offset;  // in an early segment
  // Not a record boundary: refused, nothing changes.
  EXPECT_FALSE(log->TruncateTo(cut + 1).ok());
  EXPECT_EQ(log->written_offset(), end);

  auto dropped = log->TruncateTo(cut);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, end - cut);
  EXPECT_EQ(log->written_offset(), cut);
  EXPECT_EQ(log->ListSegments().back().end, cut);
  EXPECT_TRUE(log->ListSegments().back().active);
  EXPECT_FALSE(log->ReadRecord(cut).ok());
  EXPECT_TRUE(log->ReadRecord(all[9].commit_offset).ok());

  // Appends continue at the cut, with the queue counters reset by the caller.
  log->ResetQueueOffsets({{TopicQueue{"A", 0}, 10}});
  auto next = log->Append({MakeRecord("A", 0)});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)[0].commit_offset, cut);
  EXPECT_EQ((*next)[0].queue_offset, 10);
  const int64_t new_end = log->written_offset();
  log.reset();
  log = OpenLog("log");
  EXPECT_EQ(log->written_offset(), new_end);
  EXPECT_EQ(log->recovery_info().truncated_bytes, 0);
}

TEST_F(CommitLogReplicaTest, TruncateAtASegmentStartKeepsThatSegmentEmpty) {
  auto log = OpenLog("log");
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(log->Append({MakeRecord("A", 0, std::string(150, 'x'))}).ok());
  }
  const std::vector<SegmentInfo> segments = log->ListSegments();
  ASSERT_GT(segments.size(), 1u);
  const int64_t cut = segments[1].start;
  ASSERT_TRUE(log->TruncateTo(cut).ok());
  EXPECT_EQ(log->ListSegments().size(), 2u);
  EXPECT_EQ(log->written_offset(), cut);
  EXPECT_TRUE(log->Append({MakeRecord("A", 0)}).ok());
  EXPECT_EQ(log->TruncateTo(log->written_offset() + 1).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*log->TruncateTo(log->written_offset()), 0);
}

}  // namespace
}  // namespace apogee::store
