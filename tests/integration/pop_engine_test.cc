// PopEngine on a normal topic of several queues against a real apogee-store
// process: a pop reads every queue it covers in one ReadQueues call (within
// one budget, the queues past it left unread for the next pop), and an ack
// batch spanning queues commits their offsets in one CommitOffsets call that
// a new engine (a broker restart) resumes from; an ack that comes while
// another's commit of the same queue is out (the store held with SIGSTOP)
// is committed by that one. With a tail cache, the records the broker
// appended itself are popped from memory, as the store would serve them, and
// one it did not append (a gap) from the store; a memory-only pop (a push
// session's, on the thread that heard the arrival) returns with the store
// stopped, leaving what needs the store unread. A pop for stored deliveries
// hands out the topic's records undecoded (a tag filter decides on the
// record's tag), but decodes retries and SQL-filtered records.
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

  void NewEngine(TailCache* tail = nullptr) {
    PopOptions options;
    options.new_group_from_earliest = true;
    options.tail = tail;
    StoreBackedPopTest::NewEngine(options);
  }

  // `per_queue` more messages on every queue, "<queue>:<queue offset>";
  // copies go to `tail` as the send path puts them there.
  void Append(int per_queue, TailCache* tail = nullptr) {
    std::vector<store::v1::AppendRecord> records;
    for (int q = 0; q < kQueues; ++q) {
      for (int n = 0; n < per_queue; ++n) {
        const int i = appended_[q]++;
        v2::Message m;
        m.mutable_topic()->set_name(kTopic);
        m.mutable_system_properties()->set_message_id(absl::StrCat(q, "-", i));
        m.set_body(absl::StrCat(q, ":", i));
        m.mutable_system_properties()->add_keys(absl::StrCat("key-", i));
        m.mutable_system_properties()->set_tag("tag");
        m.mutable_system_properties()->mutable_born_timestamp()->set_seconds(1'700'000'000 + i);
        m.mutable_system_properties()->mutable_born_timestamp()->set_nanos(123'456'789);
        records.push_back(ToStoreRecord(m, kTopic, q, "127.0.0.1:1", "127.0.0.1:2"));
      }
    }
    const uint64_t epoch = tail != nullptr ? tail->Epoch() : 0;
    std::vector<store::v1::AppendRecord> copies = records;
    auto appended = store_->AppendAndWait(std::move(records));
    ASSERT_TRUE(appended.ok()) << appended.status();
    if (tail != nullptr) tail->Insert(epoch, copies, *appended);
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

TEST_F(PopEngineTest, TheTailIsPoppedFromMemoryAsTheStoreWouldServeIt) {
  TailCache tail(1 << 20);
  tail.SetLive(true);
  NewEngine(&tail);
  bool drained = false;
  EXPECT_TRUE(Pop(100, &drained).empty());  // the group's cursors make the topic wanted
  ASSERT_TRUE(tail.Wants(kTopic));
  Append(2, &tail);
  const int64_t reads = pop_->store_reads();
  std::vector<v2::Message> popped = Pop(100, &drained);
  EXPECT_EQ(pop_->store_reads(), reads) << "every queue's new records were in memory";
  EXPECT_TRUE(drained);
  ASSERT_EQ(popped.size(), 8u);
  // Field for field what a read of the store decodes to.
  for (v2::Message& m : popped) {
    store::v1::ReadRequest read;
    read.set_topic(kTopic);
    read.set_queue_id(m.system_properties().queue_id());
    read.set_offset(m.system_properties().queue_offset());
    read.set_max_messages(1);
    auto stored = store_->Read(read);
    ASSERT_TRUE(stored.ok()) << stored.status();
    ASSERT_EQ(stored->records_size(), 1);
    auto want = FromStoreRecord(stored->records(0));
    ASSERT_TRUE(want.ok()) << want.status();
    m.mutable_system_properties()->clear_receipt_handle();
    m.mutable_system_properties()->clear_invisible_duration();
    EXPECT_EQ(m.SerializeAsString(), want->SerializeAsString()) << m.DebugString();
  }
}

TEST_F(PopEngineTest, ARecordTheBrokerDidNotAppendIsReadFromTheStore) {
  TailCache tail(1 << 20);
  tail.SetLive(true);
  NewEngine(&tail);
  bool drained = false;
  EXPECT_TRUE(Pop(100, &drained).empty());
  Append(1, &tail);
  Append(1);  // stored by someone else (a fired timer): a gap in memory
  Append(1, &tail);
  std::set<std::string> seen;
  for (int round = 0; round < 10 && seen.size() < 12; ++round) {
    for (const std::string& body : Bodies(Pop(100, &drained))) {
      EXPECT_TRUE(seen.insert(body).second) << body << " was handed out twice";
    }
  }
  EXPECT_EQ(seen.size(), 12u);
  EXPECT_GE(pop_->store_reads(), 1) << "the gap was read from the store";
  EXPECT_TRUE(Pop(100, &drained).empty());
  EXPECT_TRUE(drained);
}

TEST_F(PopEngineTest, AMemoryOnlyPopNeverCallsTheStore) {
  TailCache tail(1 << 20);
  tail.SetLive(true);
  NewEngine(&tail);
  // Queues 0 and 1 have loaded cursors; 2 and 3 were never read.
  PopEngine::Unread unread;
  PopEngine::Scope load{{0, 1}, /*retry=*/false};
  ASSERT_TRUE(
      pop_->PopScoped(kGroup, kTopic, MessageFilter(), 100, kInvisible, load, &unread).ok());
  Append(1, &tail);
  // With the store stopped, a call to it would hang: the pop must return.
  ASSERT_EQ(::kill(store_process_->pid(), SIGSTOP), 0);
  std::atomic<bool> done{false};
  absl::StatusOr<PopEngine::Popped> popped;
  std::thread pop([&] {
    PopEngine::Scope scope{{0, 1, 2, 3}, /*retry=*/true, /*memory_only=*/true};
    popped = pop_->PopScoped(kGroup, kTopic, MessageFilter(), 100, kInvisible, scope, &unread);
    done = true;
  });
  const bool returned =
      ::apogee::testing::PollUntil([&] { return done.load(); }, absl::Seconds(10));
  ASSERT_EQ(::kill(store_process_->pid(), SIGCONT), 0);
  pop.join();
  ASSERT_TRUE(returned) << "the memory-only pop waited for the stopped store";
  ASSERT_TRUE(popped.ok()) << popped.status();
  EXPECT_EQ(Bodies(popped->messages), (std::set<std::string>{"0:0", "1:0"}));
  EXPECT_EQ(std::set<int32_t>(unread.queues.begin(), unread.queues.end()),
            (std::set<int32_t>{2, 3}))
      << "cursors not loaded yet are left for a pop that may call the store";
  EXPECT_TRUE(unread.retry) << "the retry topic is read from the store";
  // A normal pop then reads what was left.
  bool drained = false;
  EXPECT_EQ(Bodies(Pop(100, &drained)), (std::set<std::string>{"2:0", "3:0"}));
}

MessageFilter Filter(v2::FilterType type, const std::string& expression) {
  v2::FilterExpression e;
  e.set_type(type);
  e.set_expression(expression);
  auto filter = MessageFilter::Parse(e);
  EXPECT_TRUE(filter.ok()) << filter.status();
  return filter.ok() ? *filter : MessageFilter();
}

TEST_F(PopEngineTest, AStoredPopHandsOutTopicRecordsUndecodedAndRetriesDecoded) {
  Append(2);
  PopEngine::Unread unread;
  PopEngine::Scope scope{{0, 1, 2, 3}, /*retry=*/true};
  scope.stored = true;
  // A tag filter that matches nothing consumes past every record, unparsed.
  auto none =
      pop_->PopScoped(kGroup, kTopic, Filter(v2::TAG, "other"), 100, kInvisible, scope, &unread);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->count(), 0);
  Append(2);
  auto popped =
      pop_->PopScoped(kGroup, kTopic, Filter(v2::TAG, "tag"), 100, kInvisible, scope, &unread);
  ASSERT_TRUE(popped.ok()) << popped.status();
  EXPECT_TRUE(popped->messages.empty());
  ASSERT_EQ(popped->stored.size(), 8u);
  std::set<std::string> bodies;
  for (const StoredDelivery& d : popped->stored) {
    v2::Message m;
    ASSERT_TRUE(m.ParseFromString(d.record.body()));
    EXPECT_EQ(m.body(), absl::StrCat(d.record.queue_id(), ":", d.record.queue_offset()));
    EXPECT_GE(d.record.queue_offset(), 2) << "the first two of each queue were filtered out";
    EXPECT_EQ(d.record.topic(), kTopic);
    bodies.insert(m.body());
  }
  EXPECT_EQ(bodies.size(), 8u);
  // The handles work: all but one acked; that one comes back as a retry.
  for (size_t i = 1; i < popped->stored.size(); ++i) {
    EXPECT_TRUE(pop_->Ack(kGroup, popped->stored[i].receipt_handle).ok());
  }
  const StoredDelivery& failed = popped->stored[0];
  ASSERT_TRUE(pop_->ChangeInvisible(kGroup, failed.receipt_handle, absl::ZeroDuration()).ok());
  EXPECT_EQ(pop_->ReviveExpired()[kGroup].retried, 1);
  auto retried =
      pop_->PopScoped(kGroup, kTopic, Filter(v2::TAG, "tag"), 100, kInvisible, scope, &unread);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_TRUE(retried->stored.empty()) << "a retry carries internal properties to decode";
  ASSERT_EQ(retried->messages.size(), 1u);
  const v2::Message& again = retried->messages[0];
  EXPECT_EQ(again.topic().name(), kTopic);
  EXPECT_EQ(again.system_properties().delivery_attempt(), 2);
  EXPECT_TRUE(again.user_properties().empty()) << "internal properties removed";
  ASSERT_TRUE(pop_->Ack(kGroup, again.system_properties().receipt_handle()).ok());
  // A SQL filter needs the properties inside the body: decoded.
  Append(1);
  auto sql = pop_->PopScoped(kGroup, kTopic, Filter(v2::SQL, "TAGS = 'tag'"), 100, kInvisible,
                             scope, &unread);
  ASSERT_TRUE(sql.ok()) << sql.status();
  EXPECT_TRUE(sql->stored.empty());
  EXPECT_EQ(sql->messages.size(), 4u);
}

}  // namespace
}  // namespace apogee::broker
