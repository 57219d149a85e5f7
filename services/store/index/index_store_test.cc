#include "services/store/index/index_store.h"

#include <algorithm>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "services/common/testing/process.h"
#include "services/store/index/keys.h"
#include "services/store/io/coding.h"
#include "services/store/testing/records.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeRecord;

constexpr int64_t kT0 = 1'700'000'000'000;  // ms

TEST(KeysTest, BigEndianKeysSortNumericallyAndPrefixesAreUnambiguous) {
  const std::string p = keys::TopicQueuePrefix("T", 1);
  EXPECT_LT(keys::ConsumeQueueKey(p, 255), keys::ConsumeQueueKey(p, 256));
  EXPECT_LT(keys::ConsumeQueueKey(p, 1), keys::ConsumeQueueKey(p, int64_t{1} << 40));
  EXPECT_LT(keys::TopicQueuePrefix("T", 1), keys::TopicQueuePrefix("T", 2));
  // "T" queue 0x41 is not a prefix of topic "TA"'s keys (length prefix).
  EXPECT_FALSE(absl::StartsWith(keys::TopicQueuePrefix("TA", 0), keys::TopicQueuePrefix("T", 0)));
  absl::string_view in = p;
  std::optional<TopicQueue> tq = keys::ConsumeTopicQueue(&in);
  ASSERT_TRUE(tq.has_value());
  EXPECT_EQ(*tq, (TopicQueue{"T", 1}));
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(keys::TrailingCommitOffset(keys::WithCommitOffset(keys::MessageIdPrefix("id"), 77)),
            77);
  EXPECT_EQ(keys::PrefixSuccessor("a\xff"), "b");
}

class IndexStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<IndexStore> Open() {
    auto index = IndexStore::Open({dir_.path() + "/index"});
    EXPECT_TRUE(index.ok()) << index.status();
    return index.ok() ? std::move(*index) : nullptr;
  }

  // Adds records and dispatches those new since the last call.
  void Dispatch(IndexStore* index, const std::vector<std::pair<RecordInput, int64_t>>& records) {
    const int64_t from = buffer_.end();
    for (const auto& [r, ts] : records) buffer_.Add(r, ts);
    const absl::Status s = index->ApplyDispatch(buffer_.Views(from), buffer_.end());
    ASSERT_TRUE(s.ok()) << s;
  }

  // An index with 64 KiB memtables: many small table files.
  std::unique_ptr<IndexStore> OpenWithSmallMemtables() {
    IndexOptions small;
    small.path = dir_.path() + "/index";
    small.write_buffer_size = 64 << 10;
    auto index = IndexStore::Open(small);
    EXPECT_TRUE(index.ok()) << index.status();
    return index.ok() ? std::move(*index) : nullptr;
  }

  // Dispatches `n` records with rising message ids ("id-00000000", ...).
  void DispatchRisingIds(IndexStore* index, int n) {
    std::vector<std::pair<RecordInput, int64_t>> batch;
    for (int i = 0; i < n; ++i) {
      RecordInput r = MakeRecord("T", 0);
      r.message_id = IdOf(next_id_++);
      batch.push_back({std::move(r), kT0 + next_id_});
    }
    Dispatch(index, batch);
  }
  // Ids that share no bucket (keys.h): an index entry each, as many as
  // records, for the tests of many table files.
  static std::string IdOf(int n) {
    return absl::StrCat("id-", absl::Dec(n, absl::kZeroPad8), "-x");
  }

  // Opens the closed index's RocksDB itself, as an older build would, and
  // hands `edit` the database and a lookup of its families by name.
  using FamilyOf = std::function<rocksdb::ColumnFamilyHandle*(const std::string&)>;
  void EditRaw(const std::function<void(rocksdb::DB*, const FamilyOf&)>& edit) {
    const std::string path = dir_.path() + "/index";
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names)
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    edit(db.get(), [&](const std::string& name) {
      return handles[std::find(names.begin(), names.end(), name) - names.begin()];
    });
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }

  // (commit offset, size) of each record given to Dispatch with `id`, in
  // log order: what a lookup of `id` must find.
  std::vector<std::pair<int64_t, uint32_t>> RecordsWithId(absl::string_view id) {
    std::vector<std::pair<int64_t, uint32_t>> out;
    for (const RecordView& v : buffer_.Views()) {
      if (v.message_id() == id) out.emplace_back(v.commit_offset(), v.length());
    }
    return out;
  }
  static std::vector<std::pair<int64_t, uint32_t>> Positions(
      const std::vector<IndexPosition>& found) {
    std::vector<std::pair<int64_t, uint32_t>> out;
    for (const IndexPosition& p : found) out.emplace_back(p.commit_offset, p.size);
    return out;
  }

  // The format version the closed index is marked with.
  int64_t FormatVersion() {
    rocksdb::DB* raw = nullptr;  // the default family alone, read-only
    EXPECT_TRUE(
        rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir_.path() + "/index", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string version;
    EXPECT_TRUE(
        db->Get(rocksdb::ReadOptions(), std::string(keys::kFormatVersionKey), &version).ok());
    return keys::DecodeFixed64BE(version).value_or(-1);
  }

  apogee::testing::TempDir dir_;
  testing::RecordBuffer buffer_;
  int next_id_ = 0;  // DispatchRisingIds
};

TEST_F(IndexStoreTest, DispatchBuildsConsumeQueuesAndSurvivesReopen) {
  {
    auto index = Open();
    EXPECT_EQ(index->dispatched_offset(), 0);
    Dispatch(index.get(),
             {{MakeRecord("A", 0), kT0}, {MakeRecord("A", 1), kT0}, {MakeRecord("A", 0), kT0 + 5}});
    EXPECT_EQ(index->dispatched_offset(), buffer_.end());
    auto entries = index->ReadConsumeQueue({"A", 0}, 0, 10);
    ASSERT_TRUE(entries.ok()) << entries.status();
    ASSERT_EQ(entries->size(), 2u);
    const std::vector<RecordView> views = buffer_.Views();
    EXPECT_EQ((*entries)[1].queue_offset, 1);
    EXPECT_EQ((*entries)[1].commit_offset, views[2].commit_offset());
    EXPECT_EQ((*entries)[1].size, views[2].length());
    EXPECT_EQ((*entries)[1].tags_hash, views[2].tags_hash());
    EXPECT_EQ((*entries)[1].store_timestamp_ms, kT0 + 5);
    EXPECT_EQ(index->ReadConsumeQueue({"A", 0}, 1, 10)->size(), 1u);
    EXPECT_TRUE(index->ReadConsumeQueue({"A", 0}, 2, 10)->empty());
  }
  auto index = Open();
  EXPECT_EQ(index->dispatched_offset(), buffer_.end());
  ASSERT_EQ(index->ListQueues().size(), 2u);
  EXPECT_EQ(index->GetQueueRange({"A", 0})->next_offset, 2);
  EXPECT_EQ(index->GetQueueRange({"A", 0})->min_offset, 0);
  EXPECT_EQ(index->GetQueueRange({"A", 1})->next_offset, 1);
  EXPECT_FALSE(index->GetQueueRange({"B", 0}).has_value());
}

TEST_F(IndexStoreTest, RejectsBatchesThatDoNotContinueTheIndex) {
  auto index = Open();
  buffer_.Add(MakeRecord("A", 0), kT0);
  const int64_t first_end = buffer_.end();
  buffer_.Add(MakeRecord("A", 0), kT0);
  const std::vector<RecordView> views = buffer_.Views();
  // Skipping the first record: wrong commit offset.
  auto gap = index->ApplyDispatch({views[1]}, buffer_.end());
  EXPECT_EQ(gap.code(), absl::StatusCode::kInternal);
  ASSERT_TRUE(index->ApplyDispatch({views[0]}, first_end).ok());
  EXPECT_FALSE(index->ApplyDispatch({views[1]}, first_end + 1).ok());  // wrong checkpoint
  EXPECT_EQ(index->dispatched_offset(), first_end);

  testing::RecordBuffer other(first_end);  // queue offset 0 again for queue A/0
  other.Add(MakeRecord("A", 0), kT0);
  auto dup = index->ApplyDispatch(other.Views(), other.end());
  EXPECT_EQ(dup.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(dup.message(), HasSubstr("has queue offset 0 but topic \"A\" queue 0 expects 1"));
}

TEST_F(IndexStoreTest, LooksUpMessageIdsAndKeys) {
  auto index = Open();
  RecordInput a = MakeRecord("A", 0, "a", {"order-1", "user-9"});
  RecordInput b = MakeRecord("A", 1, "b", {"order-1"});
  RecordInput c = MakeRecord("B", 0, "c", {"order-1"});
  c.message_id = a.message_id;  // a retried send may reuse the id
  Dispatch(index.get(), {{a, kT0}, {b, kT0}, {c, kT0}});
  const std::vector<RecordView> views = buffer_.Views();

  // From the memtables, then from table files (reopening flushes what the
  // WAL replays), then with a newer entry of the same id in a memtable.
  for (int pass = 0; pass < 3; ++pass) {
    SCOPED_TRACE(pass);
    if (pass == 1) {
      index.reset();
      index = Open();
    }
    if (pass == 2) Dispatch(index.get(), {{a, kT0}});
    auto by_id = index->LookupMessageId(a.message_id, 10);
    ASSERT_TRUE(by_id.ok());
    ASSERT_EQ(by_id->size(), pass == 2 ? 3u : 2u);
    EXPECT_EQ((*by_id)[0].commit_offset, views[0].commit_offset());
    EXPECT_EQ((*by_id)[0].size, views[0].length());
    EXPECT_EQ((*by_id)[1].commit_offset, views[2].commit_offset());
    if (pass == 2) {
      EXPECT_EQ((*by_id)[2].commit_offset, views[2].end_offset());
    }
    EXPECT_EQ(index->LookupMessageId(a.message_id, 1)->size(), 1u);
    EXPECT_TRUE(index->LookupMessageId("nope", 10)->empty());
    EXPECT_EQ(index->LookupMessageId(b.message_id, 10)->size(), 1u);

    auto by_key = index->LookupKey("A", "order-1", 10);
    ASSERT_EQ(by_key->size(), pass == 2 ? 3u : 2u);  // topic B's order-1 is not topic A's
    EXPECT_EQ((*by_key)[1].commit_offset, views[1].commit_offset());
    EXPECT_EQ(index->LookupKey("A", "user-9", 10)->size(), pass == 2 ? 2u : 1u);
    EXPECT_TRUE(index->LookupKey("A", "order-", 10)->empty());  // no prefix matches
  }
}

TEST_F(IndexStoreTest, LooksUpQueueOffsetsByTime) {
  auto index = Open();
  Dispatch(index.get(), {{MakeRecord("A", 0), kT0 + 100},     // qo 0
                         {MakeRecord("A", 0), kT0 + 400},     // qo 1, same second
                         {MakeRecord("A", 0), kT0 + 1200},    // qo 2
                         {MakeRecord("A", 0), kT0 + 1200},    // qo 3
                         {MakeRecord("A", 0), kT0 + 5000}});  // qo 4
  const TopicQueue q{"A", 0};
  EXPECT_EQ(*index->LookupOffsetByTime(q, kT0 - 10'000), 0);
  EXPECT_EQ(*index->LookupOffsetByTime(q, kT0 + 100), 0);
  EXPECT_EQ(*index->LookupOffsetByTime(q, kT0 + 101), 1);
  EXPECT_EQ(*index->LookupOffsetByTime(q, kT0 + 401), 2);
  EXPECT_EQ(*index->LookupOffsetByTime(q, kT0 + 1200), 2);
  EXPECT_EQ(*index->LookupOffsetByTime(q, kT0 + 1201), 4);
  EXPECT_EQ(*index->LookupOffsetByTime(q, kT0 + 3000), 4);
  EXPECT_EQ(*index->LookupOffsetByTime(q, kT0 + 5001), 5);  // newer than everything
  EXPECT_EQ(index->LookupOffsetByTime({"A", 9}, kT0).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(IndexStoreTest, TrimBeforeDropsOldEntriesOfEveryQueue) {
  auto index = Open();
  std::vector<std::pair<RecordInput, int64_t>> records;
  for (int i = 0; i < 10; ++i) records.push_back({MakeRecord("A", 0), kT0 + i * 300});
  records.push_back({MakeRecord("B", 0), kT0});
  for (int i = 0; i < 3; ++i) records.push_back({MakeRecord("A", 0), kT0 + 9000});
  Dispatch(index.get(), records);
  const std::vector<RecordView> views = buffer_.Views();
  const std::string a7_id(views[7].message_id());

  ASSERT_TRUE(index->TrimBefore(views[8].commit_offset()).ok());
  EXPECT_EQ(index->GetQueueRange({"A", 0})->min_offset, 8);
  EXPECT_EQ(index->GetQueueRange({"A", 0})->next_offset, 13);
  EXPECT_EQ(index->GetQueueRange({"B", 0})->min_offset, 0);  // its record is above the floor
  EXPECT_EQ(index->ReadConsumeQueue({"A", 0}, 8, 100)->size(), 5u);
  EXPECT_EQ(index->ReadConsumeQueue({"A", 0}, 0, 100).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(index->LookupMessageId(a7_id, 10)->empty());
  // Second kT0+2s began with record 7 (now gone); record 8 still falls in it.
  EXPECT_EQ(*index->LookupOffsetByTime({"A", 0}, kT0), 8);
  EXPECT_EQ(*index->LookupOffsetByTime({"A", 0}, kT0 + 2000), 8);
  EXPECT_EQ(*index->LookupOffsetByTime({"A", 0}, kT0 + 2401), 9);

  ASSERT_TRUE(index->TrimBefore(buffer_.end()).ok());
  EXPECT_EQ(index->GetQueueRange({"A", 0})->min_offset, 13);
  EXPECT_EQ(index->GetQueueRange({"B", 0})->min_offset, 1);
  EXPECT_EQ(*index->LookupOffsetByTime({"A", 0}, kT0), 13);
  index.reset();
  index = Open();  // the minimum is found again from the consume queue
  EXPECT_EQ(index->GetQueueRange({"A", 0})->min_offset, 13);
}

// Interleaved queues grow, are trimmed and grow again in one memtable: the
// consume queue's insert hints must survive the range deletions of trims.
TEST_F(IndexStoreTest, QueuesKeepGrowingAcrossTrims) {
  auto index = Open();
  constexpr int kQueues = 4;
  int64_t next[kQueues] = {};
  for (int round = 0; round < 3; ++round) {
    std::vector<std::pair<RecordInput, int64_t>> records;
    for (int i = 0; i < 200; ++i) records.push_back({MakeRecord("T", i % kQueues), kT0 + i});
    Dispatch(index.get(), records);
    for (int q = 0; q < kQueues; ++q) next[q] += 50;
    const std::vector<RecordView> views = buffer_.Views();
    ASSERT_TRUE(index->TrimBefore(views[views.size() - 100].commit_offset()).ok());
  }
  const std::vector<RecordView> views = buffer_.Views();
  for (int q = 0; q < kQueues; ++q) {
    const std::optional<QueueRange> range = index->GetQueueRange({"T", q});
    ASSERT_TRUE(range.has_value());
    EXPECT_EQ(range->min_offset, next[q] - 25);
    EXPECT_EQ(range->next_offset, next[q]);
    auto entries = index->ReadConsumeQueue({"T", q}, range->min_offset, 100);
    ASSERT_TRUE(entries.ok()) << entries.status();
    ASSERT_EQ(entries->size(), 25u);
    for (size_t i = 0; i < entries->size(); ++i) {
      const RecordView& r = views[views.size() - 100 + i * kQueues + q];
      EXPECT_EQ((*entries)[i].queue_offset, range->min_offset + static_cast<int64_t>(i));
      EXPECT_EQ((*entries)[i].commit_offset, r.commit_offset());
    }
  }
}

TEST_F(IndexStoreTest, TruncateFromDropsTheTailTheLogLost) {
  auto index = Open();
  Dispatch(index.get(), {{MakeRecord("A", 0), kT0},
                         {MakeRecord("A", 0), kT0 + 2000},
                         {MakeRecord("B", 0), kT0 + 3000},
                         {MakeRecord("A", 0), kT0 + 4000}});
  const std::vector<RecordView> views = buffer_.Views();
  ASSERT_TRUE(index->TruncateFrom(views[1].commit_offset()).ok());
  EXPECT_EQ(index->dispatched_offset(), views[1].commit_offset());
  EXPECT_EQ(index->GetQueueRange({"A", 0})->next_offset, 1);
  EXPECT_EQ(index->GetQueueRange({"B", 0})->next_offset, 0);
  EXPECT_EQ(*index->LookupOffsetByTime({"A", 0}, kT0 + 1), 1);  // the time entry went too
  index.reset();
  index = Open();
  EXPECT_EQ(index->dispatched_offset(), views[1].commit_offset());
  EXPECT_EQ(index->GetQueueRange({"A", 0})->next_offset, 1);
  EXPECT_EQ(index->ReadConsumeQueue({"A", 0}, 0, 10)->size(), 1u);
}

// Each dispatch batch writes one run per queue (at most 512 values: the
// batch of 1100 makes three); reads start anywhere in a run and stop
// anywhere in one.
TEST_F(IndexStoreTest, ReadsAcrossRunsFromAnyOffset) {
  auto index = Open();
  for (int size : {3, 4, 5, 1100}) {
    std::vector<std::pair<RecordInput, int64_t>> records;
    for (int i = 0; i < size; ++i) {
      records.push_back({MakeRecord("A", 0), kT0 + i});
      records.push_back({MakeRecord("B", 0), kT0 + i});  // interleaved
    }
    Dispatch(index.get(), records);
  }
  std::vector<int64_t> a_commit_offsets;
  for (const RecordView& r : buffer_.Views()) {
    if (r.topic() == "A") a_commit_offsets.push_back(r.commit_offset());
  }
  constexpr int64_t kCount = 1112;
  ASSERT_EQ(a_commit_offsets.size(), static_cast<size_t>(kCount));
  std::vector<int64_t> froms;
  for (int64_t from = 0; from <= 13; ++from) froms.push_back(from);
  for (int64_t from : {12 + 510, 12 + 511, 12 + 512, 12 + 1023, 12 + 1024, 12 + 1099}) {
    froms.push_back(from);
  }
  for (int64_t from : froms) {
    for (int max : {1, 2, 5, 100, 2000}) {
      auto entries = index->ReadConsumeQueue({"A", 0}, from, max);
      ASSERT_TRUE(entries.ok()) << entries.status();
      const int64_t expected = std::max<int64_t>(0, std::min<int64_t>(max, kCount - from));
      ASSERT_EQ(static_cast<int64_t>(entries->size()), expected) << "from " << from;
      for (int64_t i = 0; i < expected; ++i) {
        EXPECT_EQ((*entries)[i].queue_offset, from + i);
        EXPECT_EQ((*entries)[i].commit_offset, a_commit_offsets[from + i]);
      }
    }
  }
  // A cut inside the middle run, then more records: the runs join up.
  ASSERT_TRUE(index->TruncateFrom(a_commit_offsets[5]).ok());
  EXPECT_EQ(index->GetQueueRange({"A", 0})->next_offset, 5);
  buffer_.TruncateFrom(a_commit_offsets[5]);
  Dispatch(index.get(), {{MakeRecord("A", 0), kT0 + 9}});
  auto entries = index->ReadConsumeQueue({"A", 0}, 0, 100);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 6u);
  EXPECT_EQ((*entries)[4].commit_offset, a_commit_offsets[4]);
  EXPECT_EQ((*entries)[5].commit_offset, buffer_.Views().back().commit_offset());
}

// Format 1 wrote a consume-queue entry per message: such an index is read
// as it is (each entry a run of one) and marked with the current format.
TEST_F(IndexStoreTest, TakesOverAnIndexWithAnEntryPerMessage) {
  auto index = Open();
  Dispatch(index.get(), {{MakeRecord("A", 0), kT0}, {MakeRecord("A", 0), kT0 + 1}});
  index.reset();
  const std::vector<RecordView> views = buffer_.Views();
  // Rewrite it as format 1 would have written it.
  EditRaw([&](rocksdb::DB* db, const FamilyOf& family) {
    const std::string prefix = keys::TopicQueuePrefix("A", 0);
    for (int64_t o = 0; o < 2; ++o) {
      const RecordView& r = views[o];
      std::string value;  // one value alone
      keys::PutConsumeQueueValue(
          &value, {r.commit_offset(), r.length(), r.tags_hash(), r.store_timestamp_ms()});
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), family("consume_queue"),
                          keys::ConsumeQueueKey(prefix, o), value)
                      .ok());
    }
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), family("default"),
                        std::string(keys::kFormatVersionKey), keys::EncodeFixed64BE(1))
                    .ok());
  });
  index = Open();
  ASSERT_NE(index, nullptr);
  Dispatch(index.get(), {{MakeRecord("A", 0), kT0 + 2}});
  auto entries = index->ReadConsumeQueue({"A", 0}, 0, 10);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*entries)[i].commit_offset, buffer_.Views()[i].commit_offset());
  }
  ASSERT_TRUE(index->TruncateFrom(views[1].commit_offset()).ok());
  EXPECT_EQ(index->ReadConsumeQueue({"A", 0}, 0, 10)->size(), 1u);
  index.reset();
  EXPECT_EQ(FormatVersion(), 3);
}

// Records whose ids differ only in their last two bytes share a message-id
// run; every id is found, from memtables and from table files, and a trim
// inside a run drops only the entries below it.
TEST_F(IndexStoreTest, LooksUpMessageIdsInRuns) {
  auto index = Open();
  std::vector<std::pair<RecordInput, int64_t>> batch;
  const auto add = [&](const std::string& id) {
    RecordInput r = MakeRecord("A", 0);
    r.message_id = id;
    batch.push_back({std::move(r), kT0});
  };
  // Producer P's counter crosses from bucket "P-0001" into "P-0002", and
  // fills "P-0003" past a run's 256 entries; producer Q's ids come between.
  for (int n = 0x1F0; n < 0x210; ++n) add(absl::StrCat("P-", absl::Hex(n, absl::kZeroPad6)));
  add("Q-000000");
  add("Q-000001");
  for (int n = 0x300; n < 0x400; ++n) add(absl::StrCat("P-", absl::Hex(n, absl::kZeroPad6)));
  add("P-000301");  // a retried send: the same id again, in another run
  add("x");         // ids of one and two bytes: buckets of their first byte
  add("xy");
  add("xz");
  Dispatch(index.get(), batch);
  Dispatch(index.get(), {{MakeRecord("A", 0), kT0}});  // another batch
  const std::vector<RecordView> views = buffer_.Views();
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass);
    if (pass == 1) {  // from table files
      index.reset();
      index = Open();
    }
    for (const RecordView& v : views) {
      const std::string id(v.message_id());
      auto found = index->LookupMessageId(id, 10);
      ASSERT_TRUE(found.ok()) << found.status();
      EXPECT_EQ(Positions(*found), RecordsWithId(id)) << id;
    }
    EXPECT_EQ(index->LookupMessageId("P-000301", 1)->size(), 1u);
    EXPECT_TRUE(index->LookupMessageId("P-0003", 10)->empty());    // a bucket is no id
    EXPECT_TRUE(index->LookupMessageId("P-000410", 10)->empty());  // never written
    EXPECT_TRUE(index->LookupMessageId("y", 10)->empty());
  }
  // A trim inside the run of P-000300..P-0003FF.
  const int64_t floor = RecordsWithId("P-000380")[0].first;
  ASSERT_TRUE(index->TrimBefore(floor).ok());
  EXPECT_TRUE(index->LookupMessageId("P-00037f", 10)->empty());
  EXPECT_EQ(index->LookupMessageId("P-000380", 10)->size(), 1u);
  ASSERT_EQ(index->LookupMessageId("P-000301", 10)->size(), 1u);  // the retry, above the floor
  EXPECT_EQ((*index->LookupMessageId("P-000301", 10))[0].commit_offset,
            RecordsWithId("P-000301")[1].first);
}

// Formats 1 and 2 wrote a message-id entry per id: those are found beside
// the runs written since, in log order, and an entry of an id that equals
// another id's bucket is not taken for a run.
TEST_F(IndexStoreTest, ReadsMessageIdEntriesOfEarlierFormats) {
  auto index = Open();
  RecordInput old_a = MakeRecord("A", 0);
  old_a.message_id = "P-0001";  // also the bucket of P-000100
  RecordInput old_b = MakeRecord("A", 0);
  old_b.message_id = "P-000100";
  Dispatch(index.get(), {{old_a, kT0}, {old_b, kT0}});
  index.reset();
  const std::vector<RecordView> old_views = buffer_.Views();
  EditRaw([&](rocksdb::DB* db, const FamilyOf& family) {
    rocksdb::WriteBatch batch;
    batch.DeleteRange(family("msg_id"), "", "\xff\xff\xff");
    for (const RecordView& r : old_views) {
      std::string size;
      coding::PutFixed32LE(&size, r.length());
      batch.Put(family("msg_id"),
                keys::WithCommitOffset(keys::MessageIdPrefix(r.message_id()), r.commit_offset()),
                size);
    }
    batch.Put(family("default"), std::string(keys::kFormatVersionKey), keys::EncodeFixed64BE(2));
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &batch).ok());
  });
  index = Open();
  ASSERT_NE(index, nullptr);
  Dispatch(index.get(), {{old_b, kT0}, {old_a, kT0}});  // the same ids again, now in runs
  for (const std::string id : {"P-0001", "P-000100"}) {
    auto found = index->LookupMessageId(id, 10);
    ASSERT_TRUE(found.ok()) << found.status();
    const std::vector<std::pair<int64_t, uint32_t>> expected = RecordsWithId(id);
    EXPECT_EQ(Positions(*found), expected) << id;
    EXPECT_EQ(index->LookupMessageId(id, 1)->size(), 1u);
    EXPECT_EQ((*index->LookupMessageId(id, 1))[0].commit_offset, expected[0].first) << id;
  }
  index.reset();
  EXPECT_EQ(FormatVersion(), 3);
}

TEST_F(IndexStoreTest, ResetDropsIndexesButKeepsOffsetsAndConfigs) {
  auto index = Open();
  Dispatch(index.get(), {{MakeRecord("A", 0), kT0}});
  ASSERT_TRUE(index->CommitOffset("g", {"A", 0}, 1, 1000).ok());
  ASSERT_TRUE(index->PutConfig('t', "A", "cfg").ok());
  ASSERT_TRUE(index->ResetIndexes(0).ok());
  EXPECT_EQ(index->dispatched_offset(), 0);
  EXPECT_TRUE(index->ListQueues().empty());
  EXPECT_TRUE(index->ReadConsumeQueue({"A", 0}, 0, 10)->empty());
  EXPECT_EQ(index->FetchOffset("g", {"A", 0})->offset, 1);
  EXPECT_EQ(*index->GetConfig('t', "A"), "cfg");
  // Dispatching again from the start works.
  ASSERT_TRUE(index->ApplyDispatch(buffer_.Views(), buffer_.end()).ok());
  EXPECT_EQ(index->GetQueueRange({"A", 0})->next_offset, 1);
}

TEST_F(IndexStoreTest, ConsumerOffsetsPerGroupTopicAndQueue) {
  auto index = Open();
  ASSERT_TRUE(index->CommitOffset("g1", {"A", 0}, 5, 1000).ok());
  ASSERT_TRUE(index->CommitOffset("g1", {"A", 1}, 7, 2000).ok());
  ASSERT_TRUE(index->CommitOffset("g1", {"A", 0}, 6, 3000).ok());
  ASSERT_TRUE(index->CommitOffset("g10", {"A", 0}, 99, 4000).ok());
  auto fetched = index->FetchOffset("g1", {"A", 0});
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(fetched->offset, 6);
  EXPECT_EQ(fetched->commit_time_ms, 3000);
  auto missing = index->FetchOffset("g2", {"A", 0});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("group \"g2\" has no offset for topic \"A\" queue 0"));
  auto listed = index->ListOffsets("g1");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].tq, (TopicQueue{"A", 0}));
  EXPECT_EQ((*listed)[0].offset, 6);
  EXPECT_EQ((*listed)[1].tq, (TopicQueue{"A", 1}));
  EXPECT_EQ((*listed)[1].offset, 7);
  EXPECT_EQ((*listed)[1].commit_time_ms, 2000);
  auto every = index->ListOffsets("");
  ASSERT_TRUE(every.ok());
  ASSERT_EQ(every->size(), 3u);
  EXPECT_EQ((*every)[2].group, "g10");
  EXPECT_EQ((*every)[2].offset, 99);
  ASSERT_TRUE(index->DeleteOffsets("g1").ok());
  EXPECT_TRUE(index->ListOffsets("g1")->empty());
  EXPECT_EQ(index->FetchOffset("g10", {"A", 0})->offset, 99);
}

TEST(OffsetValueTest, ReadsValuesWrittenWithoutCommitTime) {
  // Format before commit times: the offset alone, u64 BE.
  auto legacy = keys::DecodeOffsetValue(keys::EncodeFixed64BE(42));
  ASSERT_TRUE(legacy.has_value());
  EXPECT_EQ(legacy->offset, 42);
  EXPECT_EQ(legacy->commit_time_ms, 0);
  auto current = keys::DecodeOffsetValue(keys::EncodeOffsetValue({7, 1700000000123}));
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->offset, 7);
  EXPECT_EQ(current->commit_time_ms, 1700000000123);
  EXPECT_FALSE(keys::DecodeOffsetValue("short").has_value());
}

TEST_F(IndexStoreTest, ConfigsByKindAndName) {
  auto index = Open();
  ASSERT_TRUE(index->PutConfig('t', "A", "1").ok());
  ASSERT_TRUE(index->PutConfig('t', "B", "2").ok());
  ASSERT_TRUE(index->PutConfig('g', "A", "group").ok());
  EXPECT_EQ(*index->GetConfig('t', "A"), "1");
  EXPECT_EQ(index->GetConfig('t', "C").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(index->ListConfigs('t')->size(), 2u);
  ASSERT_TRUE(index->DeleteConfig('t', "A").ok());
  EXPECT_THAT(*index->ListConfigs('t'),
              ElementsAre(std::make_pair(std::string("B"), std::string("2"))));
  EXPECT_EQ(*index->GetConfig('g', "A"), "group");
}

// One memory budget: a WriteBufferManager shared by every column family
// flushes memtables once they hold half the budget. 60,000 records with ids
// and keys put ~12 MiB into memtables that nothing flushes without the
// budget (measured); with a 1 MiB budget they peak at ~2 MiB (what arrives
// while a flush runs), far below the 7 families x 2 x 512 KiB they could
// hold by their own limits.
TEST_F(IndexStoreTest, MemtablesAreFlushedAtTheSharedMemoryBudget) {
  constexpr int64_t kBudget = 1 << 20;
  IndexOptions options;
  options.path = dir_.path() + "/index";
  options.memory_budget = kBudget;
  options.write_buffer_size = 512 << 10;
  auto index = IndexStore::Open(options);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->Memory().budget, kBudget);
  constexpr int kRounds = 300;
  int64_t peak = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::pair<RecordInput, int64_t>> batch;
    for (int i = 0; i < 200; ++i) {
      batch.push_back({MakeRecord("T", i % 8, "", {absl::StrCat("key-", round, "-", i)}),
                       kT0 + round * 1000 + i});
    }
    ASSERT_NO_FATAL_FAILURE(Dispatch(index->get(), batch));
    peak = std::max(peak, (*index)->Memory().memtables);
  }
  EXPECT_GT(peak, 0);
  EXPECT_LE(peak, 4 * kBudget);
  const IndexMemory memory = (*index)->Memory();
  // The memtables are charged to the block cache.
  EXPECT_GE(memory.block_cache, memory.memtables / 2) << memory.block_cache;
  // Flushed entries are still served.
  auto entries = (*index)->ReadConsumeQueue({"T", 3}, 0, 10000);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(entries->size(), kRounds * 200u / 8);
}

// Message ids rise with time, so flushed message-id files do not overlap and
// RocksDB moves them down the levels without rewriting them: entries below
// a trim go only because TrimBefore compacts the files wholly below it (a
// soak kept every message-id file of an hour without that).
TEST_F(IndexStoreTest, TrimCompactsAwayMessageIdFilesBelowIt) {
  std::unique_ptr<IndexStore> index = OpenWithSmallMemtables();
  ASSERT_NE(index, nullptr);
  for (int i = 0; i < 60; ++i) DispatchRisingIds(index.get(), 200);
  ASSERT_TRUE(apogee::testing::PollUntil([&] { return index->TableFiles("msg_id") >= 4; },
                                         absl::Seconds(20)))
      << index->TableFiles("msg_id");
  const int64_t trim = buffer_.end();
  for (int i = 0; i < 10; ++i) DispatchRisingIds(index.get(), 200);  // newer: kept
  const int before = index->TableFiles("msg_id");
  ASSERT_TRUE(index->TrimBefore(trim).ok());
  // The trimmed files are gone once TrimBefore returns; the newer ones stay.
  const int after = index->TableFiles("msg_id");
  EXPECT_LT(after, before / 2) << before << " message-id files before the trim";
  auto newest = index->LookupMessageId(IdOf(next_id_ - 1), 4);
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(newest->size(), 1u) << "an entry above the trim was dropped";
}

// The files a trim keeps stay as small as the flushes that wrote them (they
// never overlap, so RocksDB never merges them): TrimBefore merges runs of
// them, and every entry stays findable.
TEST_F(IndexStoreTest, TrimMergesRunsOfSmallMessageIdFiles) {
  std::unique_ptr<IndexStore> index = OpenWithSmallMemtables();
  ASSERT_NE(index, nullptr);
  for (int i = 0; i < 200 && index->TableFiles("msg_id") < 24; ++i) {
    DispatchRisingIds(index.get(), 200);
  }
  const int before = index->TableFiles("msg_id");
  ASSERT_GE(before, 24);
  ASSERT_TRUE(index->TrimBefore(0).ok());  // nothing lies below it
  EXPECT_LE(index->TableFiles("msg_id"), before - 7)
      << before << " message-id files before the trim";
  for (int id : {0, next_id_ / 2, next_id_ - 1}) {
    auto found = index->LookupMessageId(IdOf(id), 4);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(found->size(), 1u) << "id " << id << " lost by the merge";
  }
}

TEST_F(IndexStoreTest, MemoryOptionsOutOfRangeAreRefusedNamingTheLimit) {
  IndexOptions options;
  options.path = dir_.path() + "/index";
  options.memory_budget = 8 << 20;
  options.write_buffer_size = 5 << 20;
  auto index = IndexStore::Open(options);
  EXPECT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(index.status().message(), HasSubstr("write buffer size 5242880 bytes"));
  EXPECT_THAT(index.status().message(), HasSubstr("4194304"));
  options.memory_budget = 1000;
  EXPECT_THAT(IndexStore::Open(options).status().message(),
              HasSubstr("memory budget 1000 bytes is below the minimum"));
}

}  // namespace
}  // namespace apogee::store

namespace apogee::store {
namespace {

TEST_F(IndexStoreTest, DropTopicRemovesItsEntriesAndPassesOverItsOlderRecords) {
  auto index = Open();
  Dispatch(index.get(), {{MakeRecord("T", 0, "a", {"k"}), kT0},
                         {MakeRecord("TA", 0, "b", {"k"}), kT0},
                         {MakeRecord("T", 1, "c"), kT0}});
  ASSERT_TRUE(index->CommitOffset("g", {"T", 0}, 1, kT0).ok());
  ASSERT_TRUE(index->CommitOffset("g", {"TA", 0}, 1, kT0).ok());
  ASSERT_TRUE(index->PutConfig('t', "T", "config").ok());
  // Two more records of the old incarnation are in the log, not yet indexed.
  buffer_.Add(MakeRecord("T", 0, "d"), kT0);
  buffer_.Add(MakeRecord("T", 1, "e"), kT0);
  const TopicTombstone tombstone{buffer_.end(), 2};
  ASSERT_TRUE(index->DropTopic("T", tombstone, 't').ok());

  EXPECT_EQ(index->GetConfig('t', "T").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(index->ListQueues().size(), 1u);  // "TA" keeps its queue
  EXPECT_EQ(index->LookupKey("T", "k", 10)->size(), 0u);
  EXPECT_EQ(index->LookupKey("TA", "k", 10)->size(), 1u);
  auto offsets = index->ListOffsets("g");
  ASSERT_EQ(offsets->size(), 1u);
  EXPECT_EQ((*offsets)[0].tq.topic, "TA");
  EXPECT_TRUE(index->IsDeleted("T", tombstone.deleted_below - 1));
  EXPECT_FALSE(index->IsDeleted("T", tombstone.deleted_below));
  EXPECT_FALSE(index->IsDeleted("TA", 0));

  // The old tail is passed over; the new incarnation starts at the base.
  const RecordPosition fresh = buffer_.Add(MakeRecord("T", 0, "new"), kT0);
  ASSERT_EQ(fresh.queue_offset, 2);  // the log gives the new incarnation the base
  const absl::Status s =
      index->ApplyDispatch(buffer_.Views(index->dispatched_offset()), buffer_.end());
  ASSERT_TRUE(s.ok()) << s;
  index.reset();
  index = Open();  // the tombstone is durable
  EXPECT_TRUE(index->IsDeleted("T", 0));
  EXPECT_EQ(index->GetTombstone("T")->queue_base, 2);
  auto entries = index->ReadConsumeQueue({"T", 0}, 2, 10);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].commit_offset, fresh.commit_offset);
  EXPECT_EQ(index->GetQueueRange({"T", 0})->min_offset, 2);
  const QueueRange empty = *index->GetQueueRange({"T", 1});  // no new records: at the base
  EXPECT_EQ(empty.min_offset, 2);
  EXPECT_EQ(empty.next_offset, 2);
  EXPECT_FALSE(index->GetQueueRange({"U", 0}).has_value());
}

}  // namespace
}  // namespace apogee::store
