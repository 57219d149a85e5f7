// PopEngine in FIFO mode against a real apogee-store process, with a manual
// clock (no waiting for invisible times): one message in flight per message
// group, redelivery in place with the next attempt, the DLQ after the last
// attempt unblocking its group, a new engine (a broker restart) resuming
// from the committed offset in order, and a drain reading the store in
// batches (PopEngine::store_reads), not once per held-back message.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/broker/message/codec.h"
#include "tests/integration/pop_engine_fixture.h"

namespace apogee::broker {
namespace {

constexpr char kTopic[] = "F";
constexpr char kGroup[] = "G";
constexpr absl::Duration kInvisible = absl::Seconds(30);

class PopEngineFifoTest : public StoreBackedPopTest {
 protected:
  void SetUp() override {
    StartWithTopic(kTopic, 1, nameserver::v1::TOPIC_MESSAGE_TYPE_FIFO);
    NewEngine();
  }

  // A new engine over the same store: what a broker restart starts with.
  void NewEngine(int64_t held_bytes = PopOptions().fifo_held_bytes) {
    PopOptions options;
    options.fifo_held_bytes = held_bytes;
    options.max_delivery_attempts = 3;
    options.fifo_group = [](const std::string& group) { return group == kGroup; };
    options.fifo_unblocked = [this](const std::string& topic) {
      if (topic == kTopic) ++unblocked_;
    };
    StoreBackedPopTest::NewEngine(options);
  }

  // Appends messages "<group>:<i>" in this order, all to queue 0.
  void Append(const std::vector<std::pair<std::string, int>>& messages) {
    std::vector<store::v1::AppendRecord> records;
    for (const auto& [group, i] : messages) {
      v2::Message m;
      m.mutable_topic()->set_name(kTopic);
      m.mutable_system_properties()->set_message_id(absl::StrCat(group, "-", i));
      m.mutable_system_properties()->set_message_type(v2::FIFO);
      m.mutable_system_properties()->set_message_group(group);
      m.set_body(absl::StrCat(group, ":", i));
      records.push_back(ToStoreRecord(m, kTopic, 0, "127.0.0.1:1", "127.0.0.1:2"));
    }
    ASSERT_TRUE(store_->AppendAndWait(std::move(records)).ok());
  }

  std::vector<v2::Message> Pop(const std::string& group = kGroup, int max = 10) {
    auto popped = pop_->Pop(group, kTopic, MessageFilter(), max, kInvisible);
    EXPECT_TRUE(popped.ok()) << popped.status();
    return popped.ok() ? *popped : std::vector<v2::Message>{};
  }

  static std::vector<std::string> Bodies(const std::vector<v2::Message>& messages) {
    std::vector<std::string> out;
    for (const auto& m : messages) out.push_back(m.body());
    return out;
  }

  int unblocked_ = 0;
};

TEST_F(PopEngineFifoTest, OneInFlightPerGroupRedeliveredInPlaceThenDeadLettered) {
  Append({{"a", 0}, {"a", 1}, {"b", 0}, {"a", 2}, {"b", 1}});
  auto first = Pop();
  EXPECT_EQ(Bodies(first), (std::vector<std::string>{"a:0", "b:0"}));
  EXPECT_TRUE(Pop().empty());  // both groups busy

  // Expiry: visible again in place, attempt 2, before anything later.
  clock_.Advance(kInvisible);
  auto revived = pop_->ReviveExpired();
  EXPECT_EQ(revived[kGroup].redelivered, 2);
  EXPECT_EQ(revived[kGroup].retried, 0);  // never via %RETRY%
  EXPECT_GE(unblocked_, 1);
  auto again = Pop();
  ASSERT_EQ(Bodies(again), (std::vector<std::string>{"a:0", "b:0"}));
  EXPECT_EQ(again[0].system_properties().delivery_attempt(), 2);

  // Ack a:0: a:1 comes next; b stays held.
  ASSERT_TRUE(pop_->Ack(kGroup, again[0].system_properties().receipt_handle()).ok());
  EXPECT_EQ(Bodies(Pop()), std::vector<std::string>{"a:1"});

  // b:0 expires a second time (attempt 3 = the last), then goes to the DLQ,
  // which unblocks b.
  clock_.Advance(kInvisible);
  pop_->ReviveExpired();
  auto third = Pop();
  ASSERT_EQ(Bodies(third), (std::vector<std::string>{"a:1", "b:0"}));
  EXPECT_EQ(third[1].system_properties().delivery_attempt(), 3);
  ASSERT_TRUE(pop_->Ack(kGroup, third[0].system_properties().receipt_handle()).ok());
  clock_.Advance(kInvisible);
  EXPECT_EQ(pop_->ReviveExpired()[kGroup].dead_lettered, 1);
  EXPECT_EQ(Bodies(Pop()), (std::vector<std::string>{"a:2", "b:1"}));
  store::v1::ReadRequest dlq;
  dlq.set_topic(DlqTopic(kGroup));
  dlq.set_queue_id(0);
  dlq.set_max_messages(10);
  dlq.set_max_bytes(1 << 20);
  auto dead = store_->Read(dlq);
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->records_size(), 1);
  EXPECT_EQ(dead->records(0).message_id(), "b-0");

  // A group that is not FIFO reads the same topic as before: no holding.
  EXPECT_EQ(Pop("plain").size(), 5u);
}

TEST_F(PopEngineFifoTest, RestartResumesFromTheLowestMessageNotDone) {
  Append({{"a", 0}, {"b", 0}, {"a", 1}, {"b", 1}, {"a", 2}});
  auto first = Pop();
  ASSERT_EQ(Bodies(first), (std::vector<std::string>{"a:0", "b:0"}));
  ASSERT_TRUE(pop_->Ack(kGroup, first[1].system_properties().receipt_handle()).ok());  // b:0
  auto second = Pop();
  ASSERT_EQ(Bodies(second), std::vector<std::string>{"b:1"});
  ASSERT_TRUE(pop_->Ack(kGroup, second[0].system_properties().receipt_handle()).ok());
  // a:0 is still in flight, so offset 0 is the committed one.
  auto committed = store_->FetchOffset(kGroup, kTopic, 0);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, 0);

  clock_.Advance(absl::Seconds(1));  // time passes, as for a real restart
  NewEngine();                       // the broker restarts: in-memory state is gone
  // Old handles are refused, and each group resumes in order (b's acked
  // messages above the committed offset may come again, still in order).
  EXPECT_FALSE(pop_->Ack(kGroup, first[0].system_properties().receipt_handle()).ok());
  auto resumed = Pop();
  EXPECT_EQ(Bodies(resumed), (std::vector<std::string>{"a:0", "b:0"}));
  for (const auto& m : resumed) {
    ASSERT_TRUE(pop_->Ack(kGroup, m.system_properties().receipt_handle()).ok());
  }
  EXPECT_EQ(Bodies(Pop()), (std::vector<std::string>{"a:1", "b:1"}));
}

// 4 groups of 60 messages, appended 3 of a group at a time (as a batching
// producer does), drained 3 per pop with every message acked: each group
// comes in order, and the store is read in batches. A message held back
// behind its group (or read past a full pop) is never read again one by
// one: with copies at most one store read per pop, without copies (a
// budget of 0) at most two (one read back of the picks, one ahead).
class PopEngineFifoDrainTest : public PopEngineFifoTest,
                               public ::testing::WithParamInterface<int64_t> {};

TEST_P(PopEngineFifoDrainTest, DrainsInOrderWithBatchedStoreReads) {
  const int64_t held_bytes = GetParam();
  NewEngine(held_bytes);
  constexpr int kPerGroup = 60;
  const std::vector<std::string> groups = {"a", "b", "c", "d"};
  for (int i = 0; i < kPerGroup; i += 3) {
    for (const std::string& g : groups) Append({{g, i}, {g, i + 1}, {g, i + 2}});
  }
  const int64_t reads_before = pop_->store_reads();
  std::map<std::string, int> next;  // per group: the index expected next
  int received = 0, pops = 0;
  while (received < kPerGroup * static_cast<int>(groups.size()) && pops < 1000) {
    auto popped = Pop(kGroup, 3);
    ++pops;
    ASSERT_FALSE(popped.empty()) << "nothing to pop after " << received << " messages";
    for (const auto& m : popped) {
      const std::string& body = m.body();
      const std::string group = body.substr(0, body.find(':'));
      ASSERT_EQ(body, absl::StrCat(group, ":", next[group]++)) << "out of order";
      ASSERT_TRUE(pop_->Ack(kGroup, m.system_properties().receipt_handle()).ok());
      ++received;
    }
  }
  EXPECT_TRUE(Pop().empty());
  ++pops;
  const int64_t reads = pop_->store_reads() - reads_before;
  // One read per held-back message (what this test guards against) is
  // about 3 per pop (a pop hands out 3 waiting messages) plus the reads ahead.
  EXPECT_LE(reads, (held_bytes > 0 ? 1 : 2) * pops) << "pops: " << pops;
  auto committed = store_->FetchOffset(kGroup, kTopic, 0);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, kPerGroup * static_cast<int64_t>(groups.size()));
}

INSTANTIATE_TEST_SUITE_P(HeldCopies, PopEngineFifoDrainTest,
                         ::testing::Values(PopOptions().fifo_held_bytes, 0));

}  // namespace
}  // namespace apogee::broker
