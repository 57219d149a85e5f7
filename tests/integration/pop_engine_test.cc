// PopEngine on a normal topic of several queues against a real apogee-store
// process: a pop reads every queue it covers in one ReadQueues call (within
// one budget, the queues past it left unread for the next pop), and an ack
// batch spanning queues commits their offsets in one CommitOffsets call that
// a new engine (a broker restart) resumes from; an ack that comes while
// another's commit of the same queue is out (the store held with SIGSTOP)
// is committed by that one.
#include <signal.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/broker/message/codec.h"
#include "tests/integration/pop_engine_fixture.h"

namespace apogee::broker {
namespace {

constexpr char kTopic[] = "N";
constexpr char kGroup[] = "G";
constexpr int kQueues = 4;
constexpr absl::Duration kInvisible = absl::Seconds(30);

class PopEngineTest : public StoreBackedPopTest {
 protected:
  void SetUp() override {
    StartWithTopic(kTopic, kQueues, nameserver::v1::TOPIC_MESSAGE_TYPE_NORMAL);
    NewEngine();
  }

  void NewEngine() {
    PopOptions options;
    options.new_group_from_earliest = true;
    StoreBackedPopTest::NewEngine(options);
  }

  // `per_queue` more messages on every queue, "<queue>:<queue offset>".
  void Append(int per_queue) {
    std::vector<store::v1::AppendRecord> records;
    for (int q = 0; q < kQueues; ++q) {
      for (int n = 0; n < per_queue; ++n) {
        const int i = appended_[q]++;
        v2::Message m;
        m.mutable_topic()->set_name(kTopic);
        m.mutable_system_properties()->set_message_id(absl::StrCat(q, "-", i));
        m.set_body(absl::StrCat(q, ":", i));
        records.push_back(ToStoreRecord(m, kTopic, q, "127.0.0.1:1", "127.0.0.1:2"));
      }
    }
    ASSERT_TRUE(store_->AppendAndWait(std::move(records)).ok());
  }

  std::vector<v2::Message> Pop(int max, bool* drained) {
    auto popped = pop_->Pop(kGroup, kTopic, MessageFilter(), max, kInvisible, nullptr, drained);
    EXPECT_TRUE(popped.ok()) << popped.status();
    return popped.ok() ? *popped : std::vector<v2::Message>{};
  }

  static std::set<std::string> Bodies(const std::vector<v2::Message>& messages) {
    std::set<std::string> out;
    for (const auto& m : messages) out.insert(m.body());
    return out;
  }

  int appended_[kQueues] = {};
};

TEST_F(PopEngineTest, OnePopReadsEveryQueueInOneStoreCall) {
  Append(3);
  bool drained = false;
  const int64_t reads = pop_->store_reads();
  std::vector<v2::Message> all = Pop(100, &drained);
  EXPECT_EQ(pop_->store_reads() - reads, 1) << "one ReadQueues call for the four queues";
  EXPECT_TRUE(drained);
  std::set<std::string> want;
  for (int q = 0; q < kQueues; ++q) {
    for (int i = 0; i < 3; ++i) want.insert(absl::StrCat(q, ":", i));
  }
  EXPECT_EQ(Bodies(all), want);
  for (const v2::Message& m : all) {
    EXPECT_FALSE(m.system_properties().receipt_handle().empty());
    EXPECT_EQ(m.body(), absl::StrCat(m.system_properties().queue_id(), ":",
                                     m.system_properties().queue_offset()));
  }
  EXPECT_TRUE(Pop(100, &drained).empty()) << "everything is in flight";
}

TEST_F(PopEngineTest, ABudgetSpentEarlyLeavesTheOtherQueuesForTheNextPop) {
  Append(3);
  bool drained = true;
  std::vector<v2::Message> first = Pop(5, &drained);
  EXPECT_EQ(first.size(), 5u);
  EXPECT_FALSE(drained);
  std::vector<v2::Message> rest = Pop(100, &drained);
  EXPECT_EQ(rest.size(), 7u);
  EXPECT_TRUE(drained);
  std::set<std::string> seen = Bodies(first);
  for (const std::string& body : Bodies(rest)) {
    EXPECT_TRUE(seen.insert(body).second) << body << " was handed out twice";
  }
  EXPECT_EQ(seen.size(), 12u);
}

TEST_F(PopEngineTest, AnAckBatchAcrossQueuesCommitsEveryOffsetForARestart) {
  Append(3);
  bool drained = false;
  std::vector<v2::Message> all = Pop(100, &drained);
  ASSERT_EQ(all.size(), 12u);
  // Ack all but queue 2's last message: its offset stays at 2.
  std::vector<std::string> handles;
  for (const v2::Message& m : all) {
    const auto& sp = m.system_properties();
    if (sp.queue_id() == 2 && sp.queue_offset() == 2) continue;
    handles.push_back(sp.receipt_handle());
  }
  std::vector<absl::Status> statuses = pop_->AckBatch(kGroup, handles);
  for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
  for (int q = 0; q < kQueues; ++q) {
    auto committed = store_->FetchOffset(kGroup, kTopic, q);
    ASSERT_TRUE(committed.ok()) << committed.status();
    EXPECT_EQ(*committed, q == 2 ? 2 : 3) << "queue " << q;
  }
  // A stale handle fails alone.
  statuses = pop_->AckBatch(kGroup, {handles[0]});
  EXPECT_FALSE(statuses[0].ok());

  // A restarted broker resumes from the committed offsets: only the message
  // never acked comes again, then what arrives later.
  NewEngine();
  Append(1);
  std::vector<v2::Message> again = Pop(100, &drained);
  EXPECT_EQ(Bodies(again), (std::set<std::string>{"2:2", "0:3", "1:3", "2:3", "3:3"}));
}

TEST_F(PopEngineTest, AnAckWhileACommitIsOutIsCommittedByIt) {
  Append(2);
  bool drained = false;
  std::vector<v2::Message> all = Pop(100, &drained);
  std::vector<std::string> queue0;  // offsets 0 and 1
  for (const v2::Message& m : all) {
    if (m.system_properties().queue_id() == 0) {
      queue0.push_back(m.system_properties().receipt_handle());
    }
  }
  ASSERT_EQ(queue0.size(), 2u);
  // With the store stopped, the first ack's commit waits; the second finds
  // it out and returns at once.
  ASSERT_EQ(::kill(store_process_->pid(), SIGSTOP), 0);
  std::thread first([&] { EXPECT_TRUE(pop_->Ack(kGroup, queue0[0]).ok()); });
  const bool out =
      ::apogee::testing::PollUntil([&] { return pop_->commits_out() == 1; }, absl::Seconds(20));
  if (out) {
    EXPECT_TRUE(pop_->Ack(kGroup, queue0[1]).ok());
    EXPECT_EQ(pop_->commits_out(), 1) << "the second ack sent no commit of its own";
  }
  ASSERT_EQ(::kill(store_process_->pid(), SIGCONT), 0);
  first.join();
  ASSERT_TRUE(out) << "the first ack's commit never went out";
  // The waiting ack's batch saw the low mark move and committed again.
  auto committed = store_->FetchOffset(kGroup, kTopic, 0);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, 2);
}

}  // namespace
}  // namespace apogee::broker
