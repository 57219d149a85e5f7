#include "services/store/replication/epoch_history.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class EpochHistoryTest : public ::testing::Test {
 protected:
  std::string Path() const { return dir_.path() + "/epochs"; }
  std::unique_ptr<EpochHistory> Open() {
    auto history = EpochHistory::Open(Path());
    EXPECT_TRUE(history.ok()) << history.status();
    return history.ok() ? std::move(*history) : nullptr;
  }
  apogee::testing::TempDir dir_;
};

TEST_F(EpochHistoryTest, EmptyHistoryIsEpochZeroFromTheStart) {
  auto history = Open();
  EXPECT_EQ(history->Latest(), (EpochEntry{0, 0}));
  EXPECT_EQ(history->EndOf(0, 500), (EpochEntry{0, 500}));
  EXPECT_EQ(history->EndOf(7, 500), (EpochEntry{0, 500}));
}

TEST_F(EpochHistoryTest, AppendPersistsAcrossReopen) {
  {
    auto history = Open();
    ASSERT_TRUE(history->Append({1, 0}).ok());
    ASSERT_TRUE(history->Append({2, 1000}).ok());
    ASSERT_TRUE(history->Append({2, 1000}).ok());  // the same entry again: no-op
  }
  auto reopened = Open();
  EXPECT_THAT(reopened->entries(), ElementsAre(EpochEntry{1, 0}, EpochEntry{2, 1000}));
  EXPECT_EQ(reopened->Latest(), (EpochEntry{2, 1000}));
}

TEST_F(EpochHistoryTest, AppendRejectsGoingBack) {
  auto history = Open();
  ASSERT_TRUE(history->Append({3, 100}).ok());
  EXPECT_EQ(history->Append({3, 200}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(history->Append({2, 200}).code(), absl::StatusCode::kInvalidArgument);
  const absl::Status lower_offset = history->Append({4, 50});
  EXPECT_THAT(lower_offset.message(), HasSubstr("does not follow epoch 3 at offset 100"));
  EXPECT_THAT(history->entries(), ElementsAre(EpochEntry{3, 100}));
}

TEST_F(EpochHistoryTest, EndOfAnEpochIsTheNextEpochsStart) {
  auto history = Open();
  ASSERT_TRUE(history->Append({1, 0}).ok());
  ASSERT_TRUE(history->Append({2, 1000}).ok());
  ASSERT_TRUE(history->Append({5, 1800}).ok());
  EXPECT_EQ(history->EndOf(1, 2500), (EpochEntry{1, 1000}));
  EXPECT_EQ(history->EndOf(2, 2500), (EpochEntry{2, 1800}));
  EXPECT_EQ(history->EndOf(5, 2500), (EpochEntry{5, 2500}));
  // An epoch the history skipped: the largest one below answers.
  EXPECT_EQ(history->EndOf(3, 2500), (EpochEntry{2, 1800}));
  // Later than anything known: the latest epoch's end.
  EXPECT_EQ(history->EndOf(9, 2500), (EpochEntry{5, 2500}));
}

TEST_F(EpochHistoryTest, EpochsBeforeTheFirstEntryEndWhereItStarts) {
  auto history = Open();
  ASSERT_TRUE(history->Append({1, 700}).ok());  // epoch 0 wrote [0, 700)
  EXPECT_EQ(history->EndOf(0, 900).start_offset, 700);
}

TEST_F(EpochHistoryTest, ReplaceAndTruncate) {
  auto history = Open();
  ASSERT_TRUE(history->Replace({{1, 0}, {2, 1000}, {4, 3000}}).ok());
  ASSERT_TRUE(history->TruncateFrom(3000).ok());
  EXPECT_THAT(history->entries(), ElementsAre(EpochEntry{1, 0}, EpochEntry{2, 1000}));
  ASSERT_TRUE(history->TruncateFrom(0).ok());  // keeps the first entry
  EXPECT_THAT(history->entries(), ElementsAre(EpochEntry{1, 0}));
  EXPECT_EQ(history->Replace({{2, 0}, {1, 10}}).code(), absl::StatusCode::kInvalidArgument);
  auto reopened = Open();
  EXPECT_THAT(reopened->entries(), ElementsAre(EpochEntry{1, 0}));
}

TEST_F(EpochHistoryTest, MalformedFileNamesTheLine) {
  {
    std::ofstream out(Path());
    out << "apogee-epoch-history v1\n1 0\ntwo 100\n";
  }
  auto history = EpochHistory::Open(Path());
  ASSERT_FALSE(history.ok());
  EXPECT_EQ(history.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(history.status().message(), HasSubstr("line 3 \"two 100\""));
}

}  // namespace
}  // namespace apogee::store
