#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "services/store/io/fault_injecting_file_system.h"
#include "services/store/io/posix_file_system.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string ReadAll(FileSystem* fs, const std::string& path) {
  auto file = fs->OpenForRead(path);
  EXPECT_TRUE(file.ok()) << file.status();
  std::string scratch(1 << 16, '\0');
  auto data = (*file)->Read(0, scratch.size(), scratch.data());
  EXPECT_TRUE(data.ok()) << data.status();
  return std::string(*data);
}

class PosixFileSystemTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  FileSystem* fs_ = PosixFileSystem::Default();
  std::string Path(const std::string& name) { return JoinPath(dir_.path(), name); }
};

TEST_F(PosixFileSystemTest, AppendsReadsTruncatesAndLists) {
  ASSERT_TRUE(fs_->CreateDirs(Path("a/b")).ok());
  auto file = fs_->OpenForAppend(Path("a/b/f"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("hello ").ok());
  ASSERT_TRUE((*file)->Append("world").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  EXPECT_EQ(ReadAll(fs_, Path("a/b/f")), "hello world");
  ASSERT_TRUE((*file)->Truncate(5).ok());
  ASSERT_TRUE((*file)->Append("!").ok());
  EXPECT_EQ(ReadAll(fs_, Path("a/b/f")), "hello!");
  EXPECT_EQ(*fs_->FileSize(Path("a/b/f")), 6u);
  ASSERT_TRUE(fs_->SyncDir(Path("a/b")).ok());
  EXPECT_THAT(*fs_->ListDir(Path("a")), UnorderedElementsAre("b"));
  EXPECT_TRUE(*fs_->Exists(Path("a/b/f")));
  ASSERT_TRUE(fs_->DeleteFile(Path("a/b/f")).ok());
  EXPECT_FALSE(*fs_->Exists(Path("a/b/f")));
  auto space = fs_->GetDiskSpace(dir_.path());
  ASSERT_TRUE(space.ok());
  EXPECT_GT(space->total_bytes, 0u);
}

TEST_F(PosixFileSystemTest, ReadPastEndIsShortAndErrorsNameThePath) {
  auto file = fs_->OpenForAppend(Path("f"));
  ASSERT_TRUE((*file)->Append("abc").ok());
  auto reader = fs_->OpenForRead(Path("f"));
  char scratch[16];
  EXPECT_EQ(*(*reader)->Read(1, 16, scratch), "bc");
  EXPECT_EQ(*(*reader)->Read(10, 16, scratch), "");
  auto missing = fs_->OpenForRead(Path("missing"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(Path("missing")));
}

class FaultInjectingFileSystemTest : public PosixFileSystemTest {
 protected:
  FaultInjectingFileSystem faulty_{PosixFileSystem::Default()};
};

TEST_F(FaultInjectingFileSystemTest, ShortWriteKeepsPrefixAndFails) {
  auto file = faulty_.OpenForAppend(Path("f"));
  faulty_.AddFault(ShortWrite(3));
  const absl::Status s = (*file)->Append("abcdef");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(ReadAll(fs_, Path("f")), "abc");
  EXPECT_TRUE((*file)->Append("XY").ok());  // the rule fired once
  EXPECT_EQ(ReadAll(fs_, Path("f")), "abcXY");
  EXPECT_EQ(faulty_.faults_fired(), 1);
}

TEST_F(FaultInjectingFileSystemTest, SkipAndTimesSelectWhichOperationsFail) {
  auto file = faulty_.OpenForAppend(Path("seg.log"));
  faulty_.AddFault(Fault(FaultOp::kSync, "seg", /*skip=*/1, /*times=*/2));
  EXPECT_TRUE((*file)->Sync().ok());
  EXPECT_FALSE((*file)->Sync().ok());
  EXPECT_FALSE((*file)->Sync().ok());
  EXPECT_TRUE((*file)->Sync().ok());
  auto other = faulty_.OpenForAppend(Path("other"));
  faulty_.AddFault(Fault(FaultOp::kSync, "seg", /*skip=*/0, /*times=*/-1));
  EXPECT_TRUE((*other)->Sync().ok());
  EXPECT_FALSE((*file)->Sync().ok());
  faulty_.ClearFaults();
  EXPECT_TRUE((*file)->Sync().ok());
}

TEST_F(FaultInjectingFileSystemTest, FullDiskWritesWhatFitsAndReportsEnospc) {
  auto file = faulty_.OpenForAppend(Path("f"));
  ASSERT_TRUE((*file)->Append("12345").ok());
  faulty_.SetCapacity(8);
  EXPECT_EQ(faulty_.GetDiskSpace(dir_.path())->available_bytes, 3u);
  const absl::Status s = (*file)->Append("abcdef");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("No space left on device"));
  EXPECT_EQ(ReadAll(fs_, Path("f")), "12345abc");
  ASSERT_TRUE((*file)->Truncate(5).ok());
  EXPECT_EQ(faulty_.used_bytes(), 5u);
  faulty_.SetCapacity(std::nullopt);
  EXPECT_TRUE((*file)->Append("abcdef").ok());
}

TEST_F(FaultInjectingFileSystemTest, CrashDropsUnsyncedBytesAndUnsyncedFiles) {
  ASSERT_TRUE(faulty_.CreateDirs(Path("d")).ok());
  auto kept = faulty_.OpenForAppend(Path("d/kept"));
  ASSERT_TRUE((*kept)->Append("synced").ok());
  ASSERT_TRUE((*kept)->Sync().ok());
  ASSERT_TRUE(faulty_.SyncDir(Path("d")).ok());
  ASSERT_TRUE((*kept)->Append("-lost").ok());
  auto lost = faulty_.OpenForAppend(Path("d/new"));
  ASSERT_TRUE((*lost)->Append("x").ok());
  ASSERT_TRUE((*lost)->Sync().ok());  // data synced, but the directory entry is not

  ASSERT_TRUE(faulty_.Crash().ok());
  EXPECT_EQ(ReadAll(fs_, Path("d/kept")), "synced");
  EXPECT_FALSE(*fs_->Exists(Path("d/new")));
  const absl::Status stale = (*kept)->Append("more");
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.message(), HasSubstr("simulated crash"));
  auto reopened = faulty_.OpenForAppend(Path("d/kept"));
  EXPECT_TRUE((*reopened)->Append("!").ok());
  EXPECT_EQ(ReadAll(fs_, Path("d/kept")), "synced!");
}

}  // namespace
}  // namespace apogee::store
