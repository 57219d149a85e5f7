// Store::DeleteTopic: a deleted topic's messages leave the indexes at once,
// stay gone across restarts and index rebuilds, a topic created again under
// the name starts empty at a fresh queue offset, and retention reclaims the
// old segments.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/engine/store.h"
#include "services/store/testing/records.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeRecord;

class TopicDeleteTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    Open();
    CreateTopic("T", 2);
    CreateTopic("Other", 1);
  }

  // Five messages on queue 0 and three on queue 1 of the old incarnation of
  // "T" (with keys), one on "Other", and group "g" committed on both.
  void FillOldIncarnation() {
    for (int i = 0; i < 5; ++i) Append("T", 0, "old-0-" + std::to_string(i), {"k"});
    for (int i = 0; i < 3; ++i) Append("T", 1, "old-1-" + std::to_string(i), {"k"});
    Append("Other", 0, "other", {"k"});
    WaitForDispatch();
    ASSERT_TRUE(store_->CommitOffset("g", "T", 0, 4).ok());
    ASSERT_TRUE(store_->CommitOffset("g", "Other", 0, 1).ok());
  }

  void ExpectFreshAtBase(int64_t base) {
    for (int32_t q = 0; q < 2; ++q) {
      auto range = store_->GetQueueRange("T", q);
      ASSERT_TRUE(range.ok()) << range.status();
      EXPECT_EQ(range->min_offset, base) << "queue " << q;
      EXPECT_EQ(range->next_offset, base) << "queue " << q;
    }
  }
};

TEST_F(TopicDeleteTest, DeleteEmptiesQueuesOffsetsAndLookupsAtOnce) {
  FillOldIncarnation();
  auto old_id = store_->LookupByKey("T", "k");
  ASSERT_TRUE(old_id.ok());
  const std::string message_id(old_id->front().view().message_id());

  const int64_t deleted_at = store_->GetLogOffsets().max;
  ASSERT_TRUE(store_->DeleteTopic("T").ok());
  EXPECT_EQ(store_->GetTopic("T").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Append({MakeRecord("T", 0)}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->LookupById(message_id).status().code(), absl::StatusCode::kNotFound);
  auto offsets = store_->ListOffsets("");
  ASSERT_TRUE(offsets.ok());
  ASSERT_EQ(offsets->size(), 1u);  // only "Other"'s survives
  EXPECT_EQ((*offsets)[0].topic, "Other");
  EXPECT_EQ(store_->Stats().queues, 1);

  // Created again: empty, every queue at the highest offset the old one
  // reached (5), so an offset kept from before never points at new data.
  CreateTopic("T", 2);
  ExpectFreshAtBase(5);
  // Where the new incarnation begins: records below it are the old one's.
  EXPECT_EQ(store_->GetTopic("T")->incarnation_start, deleted_at);
  EXPECT_EQ(store_->GetTopic("Other")->incarnation_start, 0);
  EXPECT_EQ(store_->ListTopics().back().incarnation_start, deleted_at);
  EXPECT_EQ(store_->FetchOffset("g", "T", 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->LookupByKey("T", "k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store_->LookupOffsetByTime("T", 0, 0), 5);
  ReadRequest below;
  below.topic = "T";
  below.offset = 4;
  EXPECT_THAT(store_->Read(below).status().message(), HasSubstr("below the queue's minimum 5"));

  EXPECT_EQ(Append("T", 1, "new-1", {"k"}).queue_offset, 5);
  EXPECT_THAT(Bodies("T", 0), IsEmpty());
  EXPECT_THAT(Bodies("T", 1), ElementsAre("new-1"));
  EXPECT_THAT(Bodies("Other", 0), ElementsAre("other"));
  ASSERT_EQ(store_->LookupByKey("T", "k")->size(), 1u);
  EXPECT_TRUE(store_->CommitOffset("g", "T", 1, 6).ok());
}

TEST_F(TopicDeleteTest, DeletedMessagesStayGoneAfterRestartAndIndexRebuild) {
  FillOldIncarnation();
  ASSERT_TRUE(store_->DeleteTopic("T").ok());
  CreateTopic("T", 2);
  Append("T", 0, "new-0");

  Open();  // replays from the checkpoint
  EXPECT_THAT(Bodies("T", 0), ElementsAre("new-0"));
  EXPECT_THAT(Bodies("T", 1), IsEmpty());
  EXPECT_EQ(store_->GetQueueRange("T", 1)->min_offset, 5);

  StoreOptions rebuild = Options();
  rebuild.rebuild_indexes = true;  // replays the whole log, old records included
  Open(rebuild);
  EXPECT_TRUE(store_->recovery_report().index_rebuilt);
  EXPECT_THAT(Bodies("T", 0), ElementsAre("new-0"));
  EXPECT_THAT(Bodies("T", 1), IsEmpty());
  EXPECT_EQ(store_->GetQueueRange("T", 0)->min_offset, 5);
  EXPECT_EQ(store_->GetQueueRange("T", 1)->next_offset, 5);
  EXPECT_THAT(Bodies("Other", 0), ElementsAre("other"));
  // New appends continue both queues from where the new incarnation is.
  EXPECT_EQ(Append("T", 0, "new-0b").queue_offset, 6);
  EXPECT_EQ(Append("T", 1, "new-1").queue_offset, 5);
}

TEST_F(TopicDeleteTest, RecordsNotYetIndexedAtDeleteAreNeverIndexed) {
  // A crash before the dispatcher caught up: the index must not pick the
  // deleted topic's tail up from the log on the way back.
  for (int i = 0; i < 20; ++i) Append("T", i % 2, std::string(500, 'o'));
  ASSERT_TRUE(store_->DeleteTopic("T").ok());
  ASSERT_TRUE(store_->Flush().ok());
  Crash();
  Open();
  EXPECT_EQ(store_->GetTopic("T").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Stats().queues, 0);
  CreateTopic("T", 2);
  ExpectFreshAtBase(10);
  EXPECT_EQ(Append("T", 0, "new").queue_offset, 10);
  EXPECT_THAT(Bodies("T", 0), ElementsAre("new"));
}

TEST_F(TopicDeleteTest, DeletingAgainKeepsOffsetsMovingForward) {
  FillOldIncarnation();
  ASSERT_TRUE(store_->DeleteTopic("T").ok());
  Open();  // the queue base comes back from the tombstone
  CreateTopic("T", 3);
  EXPECT_EQ(Append("T", 2, "second").queue_offset, 5);
  ASSERT_TRUE(store_->DeleteTopic("T").ok());
  CreateTopic("T", 2);
  ExpectFreshAtBase(6);
  EXPECT_THAT(Bodies("T", 0), IsEmpty());
}

TEST_F(TopicDeleteTest, RetentionReclaimsTheDeletedTopicsSegments) {
  // 16 KiB segments: 24 KiB of old messages fill the first segment.
  for (int i = 0; i < 24; ++i) Append("T", i % 2, std::string(1000, 'o'));
  const int64_t old_end = store_->GetLogOffsets().max;
  ASSERT_TRUE(store_->DeleteTopic("T").ok());
  clock_.Advance(absl::Hours(73));  // past the 72 h retention
  CreateTopic("T", 2);
  for (int i = 0; i < 20; ++i) Append("T", 0, "new-" + std::to_string(i));
  for (int i = 0; i < 16; ++i) Append("Other", 0, std::string(1000, 'n'));  // seals the segment
  ASSERT_TRUE(store_->Flush().ok());
  WaitForDispatch();

  auto report = store_->RunRetention();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GE(report->deleted_segments, 1);
  // The segment that held only the deleted topic's messages is gone; the
  // one its messages end in also holds new ones and stays.
  EXPECT_EQ(report->deleted_segments, 1);
  EXPECT_GT(report->min_offset, 0);
  EXPECT_LT(report->min_offset, old_end);
  EXPECT_EQ(store_->GetLogOffsets().min, report->min_offset);
  const std::vector<std::string> bodies = Bodies("T", 0);
  ASSERT_EQ(bodies.size(), 20u);
  EXPECT_EQ(bodies.front(), "new-0");
  EXPECT_EQ(store_->GetQueueRange("T", 0)->min_offset, 12);
  EXPECT_TRUE(store_->Stats().last_retention_error.ok());
  Open();  // nothing of the deleted topic comes back from what is left
  EXPECT_EQ(Bodies("T", 0).size(), 20u);
  EXPECT_THAT(Bodies("T", 1), IsEmpty());
}

}  // namespace
}  // namespace apogee::store
