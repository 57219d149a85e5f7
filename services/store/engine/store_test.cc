#include "services/store/engine/store.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/testing/fault_rocks_env.h"
#include "services/store/testing/records.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeRecord;

class StoreTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    Open();
    CreateTopic("T", 4);
  }

  absl::StatusOr<ReadResult> ReadQueue(int32_t queue, int64_t offset, int max_messages = 32,
                                       int64_t max_bytes = 1 << 20) {
    ReadRequest r;
    r.topic = "T";
    r.queue_id = queue;
    r.offset = offset;
    r.max_messages = max_messages;
    r.max_bytes = max_bytes;
    return store_->Read(r);
  }
};

TEST_F(StoreTest, AppendedMessagesAreReadBackInQueueOrder) {
  auto batch =
      store_->Append({MakeRecord("T", 0, "a"), MakeRecord("T", 1, "b"), MakeRecord("T", 0, "c")});
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ((*batch)[2].queue_offset, 1);
  WaitForDispatch();
  auto result = ReadQueue(0, 0);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->records.size(), 2u);
  EXPECT_EQ(result->records[0].view().body(), "a");
  EXPECT_EQ(result->records[1].view().body(), "c");
  EXPECT_EQ(result->records[1].view().queue_offset(), 1);
  EXPECT_EQ(result->records[1].view().commit_offset(), (*batch)[2].commit_offset);
  EXPECT_EQ(result->next_offset, 2);
  EXPECT_EQ(result->min_offset, 0);
  EXPECT_EQ(result->max_offset, 2);
  EXPECT_EQ(store_->GetQueueRange("T", 1)->next_offset, 1);
  EXPECT_EQ(store_->GetQueueRange("T", 3)->next_offset, 0);
  const LogOffsets offsets = store_->GetLogOffsets();
  EXPECT_EQ(offsets.max, (*batch)[2].commit_offset + (*batch)[2].size);
  EXPECT_EQ(offsets.dispatched, offsets.max);
}

TEST_F(StoreTest, ReadStopsAtMaxMessagesAndMaxBytesButReturnsAtLeastOne) {
  for (int i = 0; i < 10; ++i) Append("T", 0, std::string(1000, 'a' + i));
  WaitForDispatch();
  EXPECT_EQ(ReadQueue(0, 0, 3)->records.size(), 3u);
  EXPECT_EQ(ReadQueue(0, 0, 32, 2500)->records.size(), 2u);
  auto one = ReadQueue(0, 4, 32, 10);
  ASSERT_EQ(one->records.size(), 1u);
  EXPECT_EQ(one->records[0].view().body()[0], 'e');
  EXPECT_EQ(one->next_offset, 5);
}

TEST_F(StoreTest, BatchesReadInRunsComeBackWholeAndInOrder) {
  StoreOptions options = Options();
  options.segment_size = 8 << 20;
  options.max_body_size = 64 << 10;
  Open(options);
  CreateTopic("T", 4);
  // 40 records of 40 KiB end to end (longer than one read's run), one of
  // queue 1 between, then 5 small ones end to end again.
  std::vector<RecordInput> big;
  for (int i = 0; i < 40; ++i)
    big.push_back(MakeRecord("T", 0, std::string(40 << 10, 'a' + i % 26)));
  ASSERT_TRUE(store_->Append(big).ok());
  Append("T", 1, "other queue");
  std::vector<RecordInput> small;
  for (int i = 0; i < 5; ++i) small.push_back(MakeRecord("T", 0, absl::StrCat("small-", i)));
  ASSERT_TRUE(store_->Append(small).ok());
  WaitForDispatch();
  auto all = ReadQueue(0, 0, 100, 8 << 20);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->records.size(), 45u);
  for (int i = 0; i < 45; ++i) {
    const RecordView view = all->records[static_cast<size_t>(i)].view();
    EXPECT_EQ(view.queue_offset(), i);
    EXPECT_EQ(view.body(),
              i < 40 ? std::string(40 << 10, 'a' + i % 26) : absl::StrCat("small-", i - 40));
  }
  // Within the limits: a run stops at max_messages and at max_bytes.
  EXPECT_EQ(ReadQueue(0, 3, 7, 8 << 20)->records.size(), 7u);
  auto bytes = ReadQueue(0, 0, 100, 100 << 10);
  ASSERT_EQ(bytes->records.size(), 2u);
  EXPECT_EQ(bytes->next_offset, 2);
}

TEST_F(StoreTest, ReadAtTheEndIsEmptyAndOutsideTheRangeNamesTheRange) {
  Append("T", 0, "a");
  WaitForDispatch();
  auto at_end = ReadQueue(0, 1);
  ASSERT_TRUE(at_end.ok());
  EXPECT_TRUE(at_end->records.empty());
  EXPECT_EQ(at_end->next_offset, 1);
  auto past = ReadQueue(0, 2);
  EXPECT_EQ(past.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(past.status().message(),
              HasSubstr("queue offset 2 of topic \"T\" queue 0 is past the queue's end 1 "
                        "(retained range [0, 1))"));
  auto negative = ReadQueue(0, -1);
  EXPECT_THAT(negative.status().message(), HasSubstr("is below the queue's minimum 0"));
  EXPECT_THAT(ReadQueue(0, 0, 0).status().message(),
              HasSubstr("max_messages 0 is out of range [1, 1024]"));
}

TEST_F(StoreTest, BadInputGetsErrorsNamingTheInputAndTheLimit) {
  auto unknown = store_->Append({MakeRecord("Nope", 0)});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("batch[0].topic \"Nope\" does not exist"));
  auto queue = store_->Append({MakeRecord("T", 0), MakeRecord("T", 4)});
  EXPECT_EQ(queue.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(queue.status().message(),
              HasSubstr("batch[1].queue 4 of topic \"T\" is out of range [0, 4)"));
  auto big = store_->Append({MakeRecord("T", 0, std::string(5000, 'x'))});
  EXPECT_THAT(big.status().message(),
              HasSubstr("batch[0].body of topic \"T\" queue 0 is 5000 bytes (max 4096)"));
  auto bad_name = store_->Append({MakeRecord("a b", 0)});
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_name.status().message(), HasSubstr("batch[0].topic"));
  RecordInput many_keys = MakeRecord("T", 0);
  many_keys.keys.assign(33, "k");
  EXPECT_THAT(store_->Append({many_keys}).status().message(), HasSubstr("33 keys (max 32)"));
  EXPECT_EQ(store_->GetLogOffsets().max, 0);  // nothing of a rejected batch is stored
  EXPECT_THAT(store_->GetQueueRange("T", 7).status().message(), HasSubstr("[0, 4)"));
  EXPECT_THAT(store_->PutTopic({"U", 0, ""}).message(),
              HasSubstr("queue_count 0 is out of range [1, 1024]"));
}

TEST_F(StoreTest, TagFilterSkipsMessagesWithoutReadingThem) {
  for (int i = 0; i < 6; ++i) {
    RecordInput r = MakeRecord("T", 0, absl::StrCat("m", i));
    r.tags_hash = i % 3 == 0 ? 42 : 7;
    ASSERT_TRUE(store_->Append({r}).ok());
  }
  WaitForDispatch();
  ReadRequest request;
  request.topic = "T";
  request.offset = 1;
  request.tag_filter = [](uint64_t tags_hash) { return tags_hash == 42; };
  auto result = store_->Read(request);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->records.size(), 1u);
  EXPECT_EQ(result->records[0].view().body(), "m3");
  EXPECT_EQ(result->next_offset, 6);  // skipped to the end
}

TEST_F(StoreTest, LooksUpByIdKeyAndTime) {
  RecordInput a = MakeRecord("T", 0, "a", {"order-1"});
  ASSERT_TRUE(store_->Append({a}).ok());
  clock_.Advance(absl::Seconds(10));
  const absl::Time later = clock_.Now();
  Append("T", 0, "b", {"order-1", "user-2"});
  WaitForDispatch();

  auto by_id = store_->LookupById(a.message_id);
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  ASSERT_EQ(by_id->size(), 1u);
  EXPECT_EQ((*by_id)[0].view().body(), "a");
  EXPECT_THAT(store_->LookupById("missing").status().message(),
              HasSubstr("no message with id \"missing\""));

  auto by_key = store_->LookupByKey("T", "order-1");
  ASSERT_TRUE(by_key.ok());
  ASSERT_EQ(by_key->size(), 2u);
  EXPECT_EQ((*by_key)[1].view().body(), "b");
  EXPECT_EQ(store_->LookupByKey("T", "user-2")->size(), 1u);
  EXPECT_EQ(store_->LookupByKey("T", "nope").status().code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(*store_->LookupOffsetByTime("T", 0, absl::ToUnixMillis(later) - 1), 1);
  EXPECT_EQ(*store_->LookupOffsetByTime("T", 0, 0), 0);
  EXPECT_EQ(*store_->LookupOffsetByTime("T", 0, absl::ToUnixMillis(later) + 1), 2);
  EXPECT_EQ(*store_->LookupOffsetByTime("T", 2, 0), 0);  // never written

  auto at = store_->ReadAt((*by_id)[0].view().commit_offset());
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(at->view().body(), "a");
}

TEST_F(StoreTest, ConsumerOffsetsAreCheckedAndPersisted) {
  for (int i = 0; i < 3; ++i) Append("T", 1, "x");
  WaitForDispatch();
  ASSERT_TRUE(store_->CommitOffset("g", "T", 1, 2).ok());
  ASSERT_TRUE(store_->CommitOffset("g", "T", 0, 0).ok());
  EXPECT_EQ(store_->FetchOffset("g", "T", 1)->offset, 2);
  EXPECT_GT(store_->FetchOffset("g", "T", 1)->commit_time_ms, 0);
  auto too_far = store_->CommitOffset("g", "T", 1, 4);
  EXPECT_EQ(too_far.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(too_far.message(), HasSubstr("offset 4 committed by group \"g\" for topic \"T\" "
                                           "queue 1 is out of range [0, 3]"));
  EXPECT_EQ(store_->FetchOffset("other", "T", 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->CommitOffset("bad group", "T", 1, 0).code(),
            absl::StatusCode::kInvalidArgument);

  Open();
  auto offsets = store_->ListOffsets("g");
  ASSERT_TRUE(offsets.ok());
  ASSERT_EQ(offsets->size(), 2u);
  EXPECT_EQ((*offsets)[1].queue_id, 1);
  EXPECT_EQ((*offsets)[1].offset, 2);
  ASSERT_TRUE(store_->DeleteOffsets("g").ok());
  EXPECT_TRUE(store_->ListOffsets("g")->empty());
}

TEST_F(StoreTest, TopicAndGroupConfigsPersistAcrossReopen) {
  ASSERT_TRUE(store_->PutTopic({"U", 8, "attrs"}).ok());
  ASSERT_TRUE(store_->PutGroup("G1", "group-config").ok());
  Open();
  auto topic = store_->GetTopic("U");
  ASSERT_TRUE(topic.ok());
  EXPECT_EQ(topic->queue_count, 8);
  EXPECT_EQ(topic->attributes, "attrs");
  EXPECT_EQ(store_->ListTopics().size(), 2u);
  EXPECT_EQ(*store_->GetGroup("G1"), "group-config");
  ASSERT_TRUE(store_->DeleteTopic("U").ok());
  EXPECT_THAT(store_->GetTopic("U").status().message(), HasSubstr("topic \"U\" does not exist"));
  EXPECT_EQ(store_->DeleteTopic("U").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteGroup("G1").ok());
  EXPECT_THAT(store_->GetGroup("G1").status().message(), HasSubstr("group \"G1\" does not exist"));
  EXPECT_TRUE(store_->ListGroups()->empty());
}

TEST_F(StoreTest, ReopenContinuesQueueOffsets) {
  for (int i = 0; i < 30; ++i) Append("T", i % 2, std::string(800, 'r'));
  Open();
  EXPECT_EQ(store_->GetQueueRange("T", 0)->next_offset, 15);
  EXPECT_EQ(Append("T", 0, "next").queue_offset, 15);
  EXPECT_EQ(Bodies("T", 0).size(), 16u);
  EXPECT_EQ(store_->recovery_report().replayed_from, store_->recovery_report().replayed_to);
}

TEST_F(StoreTest, ReadRawStreamsCommittedBytesAndDispatchListenerSeesQueues) {
  absl::Mutex mu;
  std::vector<QueueAdvance> seen;
  StoreOptions options = Options();
  options.on_dispatch = [&](const std::vector<QueueAdvance>& advances) {
    absl::MutexLock lock(&mu);
    seen.insert(seen.end(), advances.begin(), advances.end());
  };
  Open(options);
  const AppendResult a = Append("T", 2, "a");
  const AppendResult b = Append("T", 2, "b");
  WaitForDispatch();
  auto raw = store_->ReadRaw(a.commit_offset, 1 << 20);
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->records.size(), 2u);
  EXPECT_EQ(raw->end, b.commit_offset + b.size);
  EXPECT_EQ(raw->records[1].body(), "b");
  absl::MutexLock lock(&mu);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().queue, (TopicQueue{"T", 2}));
  EXPECT_EQ(seen.back().next_offset, 2);
}

TEST_F(StoreTest, FlushThreadMakesAsyncAppendsDurable) {
  StoreOptions options = Options();
  options.flush_interval = absl::Milliseconds(5);
  Open(options);
  Append("T", 0, "a");
  EXPECT_TRUE(apogee::testing::PollUntil(
      [&] { return store_->GetLogOffsets().flushed == store_->GetLogOffsets().max; },
      absl::Seconds(10)));
  EXPECT_EQ(store_->Stats().log.flush_errors, 0);
}

TEST_F(StoreTest, DispatchIndexesWrittenRecordsWithoutReadingTheFile) {
  // Every commit-log read fails: the indexes still follow, from the bytes
  // the log handed over when it wrote them.
  fs_.AddFault(Fault(FaultOp::kRead, "commitlog", 0, -1));
  for (int i = 0; i < 20; ++i) Append("T", i % 4, absl::StrCat("m", i));
  WaitForDispatch();
  EXPECT_EQ(store_->GetQueueRange("T", 3)->next_offset, 5);
  fs_.ClearFaults();
  EXPECT_THAT(Bodies("T", 1), ElementsAre("m1", "m5", "m9", "m13", "m17"));
}

TEST_F(StoreTest, RolledBackGroupIsNotIndexedFromMemory) {
  Open(FlushMode::kSync);
  fs_.AddFault(Fault(FaultOp::kSync, "commitlog"));
  EXPECT_FALSE(store_->Append({MakeRecord("T", 0, "rolled back")}).ok());
  // Written again at the same offsets: the index must get the new bytes.
  Append("T", 0, "kept");
  WaitForDispatch();
  EXPECT_THAT(Bodies("T", 0), ElementsAre("kept"));
}

TEST_F(StoreTest, ReadsWaitForTheIndexToCoverAcknowledgedAppends) {
  testing::FaultRocksEnv rocks(&fs_);
  StoreOptions options = Options();
  options.index_env = rocks.env();
  Open(options);
  // The dispatcher's next index write (RocksDB's WAL) is slow: 300 ms.
  absl::Notification holding;
  FaultRule slow;
  slow.op = FaultOp::kAppend;
  slow.path_contains = "index/0";
  slow.error = absl::OkStatus();
  slow.hook = [&] {
    holding.Notify();
    absl::SleepFor(absl::Milliseconds(300));
  };
  fs_.AddFault(slow);
  // Acknowledged while the index write is under way; a read right after
  // the acknowledgement waits for it instead of missing the record.
  const AppendResult appended = Append("T", 1, "fresh");
  ASSERT_TRUE(holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::StatusOr<ReadResult> read = ReadQueue(1, 0);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->records.size(), 1u);
  EXPECT_EQ(read->records[0].view().queue_offset(), appended.queue_offset);
  EXPECT_EQ(read->max_offset, 1);
  EXPECT_EQ(store_->GetQueueRange("T", 1)->next_offset, 1);
  store_.reset();  // before `rocks`, which its RocksDB uses
}

TEST_F(StoreTest, RejectsOptionsThatCannotHoldARecord) {
  StoreOptions options = Options();
  options.segment_size = 1000;
  auto store = Store::Create(options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), HasSubstr("segment_size 1000 is smaller than"));
}

}  // namespace
}  // namespace apogee::store
