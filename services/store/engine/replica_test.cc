// The engine's follower operations: appending another store's raw log,
// truncating a divergent tail with the indexes, and metadata snapshots.
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/engine/store.h"
#include "services/store/testing/records.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;

class StoreReplicaTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    Open();
    CreateTopic("T", 2);
  }
};

TEST_F(StoreReplicaTest, ReplicatedRecordsAreIndexedAndReadable) {
  for (int i = 0; i < 20; ++i)
    Append("T", i % 2, "m" + std::to_string(i), {"k" + std::to_string(i)});
  WaitForDispatch();
  // A second store in its own dir copies the raw log.
  StoreOptions options = Options();
  options.data_dir = dir_.path() + "/replica";
  auto replica = Store::Create(options);
  ASSERT_TRUE(replica.ok()) << replica.status();
  ASSERT_TRUE((*replica)->PutTopic({"T", 2, "", 0}).ok());
  const int64_t at = testing::CopyLog(*store_, replica->get(), 500);
  ASSERT_GT(at, 0);
  ASSERT_TRUE((*replica)->WaitForDispatch(at, absl::Seconds(10)));
  EXPECT_EQ((*replica)->GetQueueRange("T", 1)->next_offset, 10);
  auto by_key = (*replica)->LookupByKey("T", "k7");
  ASSERT_TRUE(by_key.ok()) << by_key.status();
  EXPECT_EQ(by_key->front().view().body(), "m7");
}

TEST_F(StoreReplicaTest, AFollowingStoreRefusesLocalAppends) {
  store_->SetFollowing(true, "master m:1, epoch 3");
  auto refused = store_->Append({testing::MakeRecord("T", 0, "x")});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("master m:1, epoch 3"));
  store_->SetFollowing(false);
  EXPECT_TRUE(store_->Append({testing::MakeRecord("T", 0, "x")}).ok());
}

TEST_F(StoreReplicaTest, TruncateDropsIndexesAndQueueOffsetsContinue) {
  std::vector<AppendResult> results;
  for (int i = 0; i < 30; ++i) results.push_back(Append("T", 0, std::string(2000, 'a' + i % 26)));
  WaitForDispatch();
  ASSERT_GT(store_->Stats().log.segments, 1);
  const int64_t end = store_->GetLogOffsets().max;
  const int64_t cut = results[12].commit_offset;
  auto dropped = store_->TruncateLog(cut);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, end - cut);
  EXPECT_EQ(store_->GetLogOffsets().max, cut);
  EXPECT_EQ(store_->GetLogOffsets().dispatched, cut);
  EXPECT_EQ(store_->GetQueueRange("T", 0)->next_offset, 12);
  // A new record takes the next queue offset after what is left and is
  // indexed (the dispatcher restarted from the cut).
  const AppendResult next = Append("T", 0, "after");
  EXPECT_EQ(next.commit_offset, cut);
  EXPECT_EQ(next.queue_offset, 12);
  WaitForDispatch();
  EXPECT_THAT(Bodies("T", 0).back(), "after");
  EXPECT_EQ(Bodies("T", 0).size(), 13u);
  // Survives a reopen.
  Open();
  EXPECT_EQ(store_->GetQueueRange("T", 0)->next_offset, 13);
}

TEST_F(StoreReplicaTest, MetaSnapshotReplacesTopicsGroupsAndOffsets) {
  Append("T", 0, "x");
  WaitForDispatch();
  ASSERT_TRUE(store_->PutGroup("G", "cfg").ok());
  ASSERT_TRUE(store_->CommitOffset("G", "T", 0, 1).ok());
  const int64_t version = store_->meta_version();
  auto snapshot = store_->SnapshotMeta();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->topics.size(), 1u);

  StoreOptions options = Options();
  options.data_dir = dir_.path() + "/replica";
  auto replica = Store::Create(options);
  ASSERT_TRUE(replica.ok());
  ASSERT_TRUE((*replica)->PutTopic({"Stale", 1, "", 0}).ok());
  ASSERT_TRUE((*replica)->PutGroup("Old", "x").ok());
  ASSERT_TRUE((*replica)->ApplyMeta(*snapshot).ok());
  std::vector<std::string> names;
  for (const TopicConfig& t : (*replica)->ListTopics()) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("T"));
  auto groups = (*replica)->ListGroups();
  ASSERT_TRUE(groups.ok());
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].first, "G");
  auto offsets = (*replica)->ListOffsets("G");
  ASSERT_TRUE(offsets.ok());
  ASSERT_EQ(offsets->size(), 1u);
  EXPECT_EQ((*offsets)[0].offset, 1);

  // A deleted topic travels as its tombstone.
  ASSERT_TRUE(store_->DeleteTopic("T").ok());
  EXPECT_GT(store_->meta_version(), version);
  snapshot = store_->SnapshotMeta();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->tombstones.size(), 1u);
  ASSERT_TRUE((*replica)->ApplyMeta(*snapshot).ok());
  EXPECT_TRUE((*replica)->ListTopics().empty());
  auto tombstone = (*replica)->SnapshotMeta();
  ASSERT_TRUE(tombstone.ok());
  ASSERT_EQ(tombstone->tombstones.size(), 1u);
  EXPECT_EQ(tombstone->tombstones[0].second.deleted_below,
            snapshot->tombstones[0].second.deleted_below);
}

}  // namespace
}  // namespace apogee::store
