#include "services/broker/consume/tail_cache.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace apogee::broker {
namespace {

store::v1::AppendRecord Record(const std::string& topic, int32_t queue, const std::string& body,
                               const std::string& tag = "") {
  store::v1::AppendRecord r;
  r.set_topic(topic);
  r.set_queue_id(queue);
  r.set_message_id("id-" + body);
  r.set_tag(tag);
  r.add_keys("k-" + body);
  r.mutable_born_time()->set_seconds(1700000000);
  r.mutable_born_time()->set_nanos(123'456'789);
  r.set_flags(3);
  r.set_body(body);
  return r;
}

store::v1::AppendResult Result(int64_t offset) {
  store::v1::AppendResult r;
  r.set_queue_offset(offset);
  r.set_commit_log_offset(1000 + offset * 100);
  r.mutable_store_time()->set_seconds(1700000001);
  return r;
}

store::v1::ReadRequest ReadAt(const std::string& topic, int32_t queue, int64_t offset,
                              int max_messages = 32) {
  store::v1::ReadRequest r;
  r.set_topic(topic);
  r.set_queue_id(queue);
  r.set_offset(offset);
  r.set_max_messages(max_messages);
  r.set_max_bytes(4 << 20);
  return r;
}

class TailCacheTest : public ::testing::Test {
 protected:
  TailCacheTest() {
    cache_.SetLive(true);
    cache_.Want("t");
  }
  // Appends bodies b<first>..b<first+n-1> at offsets first.. on (t, 0).
  void Append(int64_t first, int n, int32_t queue = 0) {
    std::vector<store::v1::AppendRecord> records;
    std::vector<store::v1::AppendResult> results;
    for (int i = 0; i < n; ++i) {
      records.push_back(Record("t", queue, "b" + std::to_string(first + i)));
      results.push_back(Result(first + i));
    }
    cache_.Insert(cache_.Epoch(), records, results);
  }

  TailCache cache_{1 << 20};
};

TEST_F(TailCacheTest, ReadsBackWhatTheStoreWouldReturn) {
  Append(5, 3);
  auto read = cache_.Read(ReadAt("t", 0, 6));
  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(read->records_size(), 2);
  const store::v1::StoredRecord& r = read->records(0);
  EXPECT_EQ(r.topic(), "t");
  EXPECT_EQ(r.queue_offset(), 6);
  EXPECT_EQ(r.commit_log_offset(), 1600);
  EXPECT_EQ(r.message_id(), "id-b6");
  EXPECT_EQ(r.keys(0), "k-b6");
  EXPECT_EQ(r.flags(), 3u);
  EXPECT_EQ(r.body(), "b6");
  EXPECT_EQ(r.store_time().seconds(), 1700000001);
  // The store keeps milliseconds.
  EXPECT_EQ(r.born_time().nanos(), 123'000'000);
  EXPECT_EQ(read->next_offset(), 8);
  EXPECT_EQ(read->max_offset(), 8);
  EXPECT_EQ(cache_.hits(), 1);
}

TEST_F(TailCacheTest, MissesWhatItDoesNotHold) {
  Append(5, 3);
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 4)).has_value());  // before its first copy
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 8)).has_value());  // at the end
  EXPECT_FALSE(cache_.Read(ReadAt("t", 1, 5)).has_value());  // another queue
  EXPECT_FALSE(cache_.Read(ReadAt("u", 0, 5)).has_value());  // another topic
  EXPECT_EQ(cache_.hits(), 0);
}

TEST_F(TailCacheTest, StopsAtAGapAndSaysTheQueueGoesOn) {
  Append(0, 2);
  Append(3, 2);  // offset 2 was stored by someone else (a fired timer)
  auto read = cache_.Read(ReadAt("t", 0, 0));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->records_size(), 2);
  EXPECT_EQ(read->next_offset(), 2);
  EXPECT_EQ(read->max_offset(), 5);  // not read to its end: the caller reads on
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 2)).has_value());
}

TEST_F(TailCacheTest, KeepsTheReadsLimits) {
  Append(0, 10);
  auto read = cache_.Read(ReadAt("t", 0, 0, 4));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->records_size(), 4);
  EXPECT_EQ(read->next_offset(), 4);
  auto request = ReadAt("t", 0, 0);
  request.set_max_bytes(5);  // bodies are 2 bytes: two fit, the third would not
  read = cache_.Read(request);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->records_size(), 2);
}

TEST_F(TailCacheTest, FiltersByTagAsTheStoreDoes) {
  std::vector<store::v1::AppendRecord> records = {
      Record("t", 0, "a", "red"), Record("t", 0, "b", "blue"), Record("t", 0, "c", "red")};
  cache_.Insert(cache_.Epoch(), records, {Result(0), Result(1), Result(2)});
  auto request = ReadAt("t", 0, 0);
  request.add_tags("red");
  auto read = cache_.Read(request);
  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(read->records_size(), 2);
  EXPECT_EQ(read->records(1).body(), "c");
  EXPECT_EQ(read->next_offset(), 3);  // past the skipped one too
}

TEST_F(TailCacheTest, KeepsOnlyWantedTopicsAndNormalRecords) {
  std::vector<store::v1::AppendRecord> records = {Record("u", 0, "x"), Record("t", 0, "y")};
  records[1].set_kind(store::v1::RECORD_TIMER);  // its offset is the timer topic's
  cache_.Insert(cache_.Epoch(), records, {Result(0), Result(0)});
  EXPECT_FALSE(cache_.Read(ReadAt("u", 0, 0)).has_value());
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 0)).has_value());
  EXPECT_EQ(cache_.bytes(), 0);
}

TEST_F(TailCacheTest, StaysWithinItsBytesOldestFirst) {
  TailCache small(3 * (TailCache::kRecordOverhead + 16));
  small.SetLive(true);
  small.Want("t");
  for (int64_t i = 0; i < 10; ++i) {
    small.Insert(small.Epoch(), {Record("t", 0, "b" + std::to_string(i))}, {Result(i)});
    EXPECT_LE(small.bytes(), 3 * (TailCache::kRecordOverhead + 16));
  }
  EXPECT_FALSE(small.Read(ReadAt("t", 0, 6)).has_value());
  auto read = small.Read(ReadAt("t", 0, 7));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->records_size(), 3);
}

TEST_F(TailCacheTest, AnOffsetGivenTwiceDropsEverything) {
  Append(0, 5);
  Append(0, 5, /*queue=*/1);
  // The store restarted without its unflushed tail and gave out 3 again.
  Append(3, 1);
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 0)).has_value());
  EXPECT_FALSE(cache_.Read(ReadAt("t", 1, 0)).has_value());
  EXPECT_EQ(cache_.bytes(), 0);
}

TEST_F(TailCacheTest, ServesNothingWhileTheStoreLinkIsDown) {
  Append(0, 2);
  cache_.SetLive(false);
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 0)).has_value());
  EXPECT_FALSE(cache_.Wants("t"));
  Append(2, 1);  // an answer that arrives after the link went down stays out
  cache_.SetLive(true);
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 0)).has_value());  // dropped
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 2)).has_value());
}

TEST_F(TailCacheTest, AnAppendStartedBeforeADropStaysOut) {
  const uint64_t epoch = cache_.Epoch();
  cache_.DropTopic("t");
  cache_.Insert(epoch, {Record("t", 0, "old")}, {Result(0)});
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 0)).has_value());
  Append(0, 1);  // the topic again, started after the drop
  EXPECT_TRUE(cache_.Read(ReadAt("t", 0, 0)).has_value());
}

TEST_F(TailCacheTest, ClearDropsEveryCopy) {
  Append(0, 3);
  cache_.Clear();
  EXPECT_FALSE(cache_.Read(ReadAt("t", 0, 0)).has_value());
  EXPECT_EQ(cache_.bytes(), 0);
}

}  // namespace
}  // namespace apogee::broker
