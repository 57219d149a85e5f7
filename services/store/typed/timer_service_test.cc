#include "services/store/typed/timer_service.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/naming/names.h"
#include "services/store/testing/store_harness.h"
#include "services/store/typed/pending_list.h"
#include "services/store/typed/record_copy.h"
#include "services/store/typed/transactions.h"

namespace apogee::store {
namespace {

class TimerServiceTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    Open();
    CreateTopic("Orders", 4);
    timers_ = std::make_unique<TimerService>(store_.get(), &clock_, TimerServiceOptions{}, nullptr);
  }
  void Reopen(FlushMode mode = FlushMode::kAsync) {
    timers_.reset();
    store_.reset();
    Open(mode);
    timers_ = std::make_unique<TimerService>(store_.get(), &clock_, TimerServiceOptions{}, nullptr);
  }

  int64_t NowMs() const { return absl::ToUnixMillis(clock_.Now()); }

  // A TIMER or HALF record for `body` (id "id-<body>") to Orders/`queue`,
  // due (or first checked) `delay` from now.
  RecordInput Typed(RecordKind kind, const std::string& body, absl::Duration delay, int32_t queue) {
    RecordInput in;
    in.topic = kind == RecordKind::kHalf ? kTransHalfTopic : kTimerTopic;
    in.message_id = "id-" + body;
    in.body = body;
    in.ext.kind = kind;
    in.ext.at_ms = absl::ToUnixMillis(clock_.Now() + delay);
    in.ext.target_topic = "Orders";
    in.ext.target_queue = queue;
    return in;
  }

  // Appends a TIMER for `body` to Orders/`queue`, due `delay` from now.
  AppendResult Schedule(const std::string& body, absl::Duration delay, int32_t queue = 1) {
    auto appended = store_->Append({Typed(RecordKind::kTimer, body, delay, queue)});
    EXPECT_TRUE(appended.ok()) << appended.status();
    timers_->Wake();  // what main's dispatch listener does
    return appended.ok() ? (*appended)[0] : AppendResult{};
  }

  FireReport Fire() {
    absl::StatusOr<FireReport> report = timers_->FireDue();
    EXPECT_TRUE(report.ok()) << report.status();
    WaitForDispatch();
    return report.ok() ? *report : FireReport{};
  }

  std::unique_ptr<TimerService> timers_;
};

TEST_F(TimerServiceTest, NeverEarlyThenOnceInDueOrder) {
  Schedule("b", absl::Seconds(2));
  Schedule("a", absl::Seconds(1));
  Schedule("c", absl::Seconds(1));
  WaitForDispatch();
  EXPECT_EQ(store_->pending_counts().timers, 3);

  clock_.Advance(absl::Seconds(1) - absl::Milliseconds(1));
  EXPECT_EQ(Fire().fired, 0);
  EXPECT_TRUE(Bodies("Orders", 1).empty());

  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Fire().fired, 2);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(Fire().fired, 0);  // fired once
  EXPECT_EQ(store_->pending_counts().timers, 1);

  clock_.Advance(absl::Hours(1));  // late is fine, early never
  EXPECT_EQ(Fire().fired, 1);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"a", "c", "b"}));
  EXPECT_EQ(store_->pending_counts().timers, 0);
  EXPECT_EQ(store_->pending_counts().duplicate_resolvers, 0);
  // The copy keeps the message id and its store time is not before the due time.
  auto copies = store_->LookupById("id-b");
  ASSERT_TRUE(copies.ok());
  ASSERT_EQ(copies->size(), 2u);  // the TIMER and its FIRED copy
  EXPECT_EQ((*copies)[1].view().kind(), RecordKind::kFired);
  EXPECT_GE((*copies)[1].view().store_timestamp_ms(), (*copies)[0].view().at_ms());
}

TEST_F(TimerServiceTest, TimerDueBeforeTheScanWatermarkFiresAfterAWake) {
  Schedule("a", absl::Seconds(2));
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(Fire().fired, 1);           // the next scan starts at a's due time
  Schedule("late", -absl::Seconds(1));  // arrived after its time (a slow send)
  EXPECT_EQ(Fire().fired, 1);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"a", "late"}));
}

TEST_F(TimerServiceTest, FiredQueuesArePublishedCoalesced) {
  QueueWatch watch;
  std::vector<QueueAdvance> seen;
  watch.Subscribe([&seen](const std::vector<QueueAdvance>& advances) {
    seen.insert(seen.end(), advances.begin(), advances.end());
  });
  TimerServiceOptions options;
  options.watch = &watch;
  timers_ = std::make_unique<TimerService>(store_.get(), &clock_, options, nullptr);
  Schedule("a", absl::Seconds(1), 1);
  Schedule("b", absl::Seconds(1), 1);
  Schedule("c", absl::Seconds(1), 3);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Fire().fired, 3);
  ASSERT_EQ(seen.size(), 2u);  // one per queue, with its newest end
  EXPECT_EQ(seen[0].queue, (TopicQueue{"Orders", 1}));
  EXPECT_EQ(seen[0].next_offset, 2);
  EXPECT_EQ(seen[1].queue, (TopicQueue{"Orders", 3}));
  EXPECT_EQ(seen[1].next_offset, 1);
}

TEST_F(TimerServiceTest, DeletedTargetIsDroppedNotDelivered) {
  Schedule("x", absl::Seconds(1));
  ASSERT_TRUE(store_->DeleteTopic("Orders").ok());
  CreateTopic("Orders", 4);  // a new incarnation does not get the old timer
  clock_.Advance(absl::Seconds(1));
  FireReport report = Fire();
  EXPECT_EQ(report.fired, 0);
  EXPECT_EQ(report.dropped, 1);
  EXPECT_TRUE(Bodies("Orders", 1).empty());
  EXPECT_EQ(store_->pending_counts().timers, 0);
}

// A promoted slave may hold timers whose topic config has not reached it
// (configs travel in snapshots, records in the log): unknown is not deleted,
// so they stay pending, never dropped, and fire once the config arrives.
TEST_F(TimerServiceTest, UnknownTargetIsHeldUntilItsConfigArrives) {
  Schedule("x", absl::Seconds(1));
  Schedule("y", absl::Seconds(2));
  absl::StatusOr<Store::MetaSnapshot> meta = store_->SnapshotMeta();
  ASSERT_TRUE(meta.ok()) << meta.status();
  meta->topics.clear();  // the config only: no tombstone
  ASSERT_TRUE(store_->ApplyMeta(*meta).ok());
  ASSERT_FALSE(store_->GetTopic("Orders").ok());
  clock_.Advance(absl::Seconds(2));
  FireReport report = Fire();
  EXPECT_EQ(report.fired, 0);
  EXPECT_EQ(report.dropped, 0);
  EXPECT_EQ(report.held, 2);
  EXPECT_FALSE(report.more);
  EXPECT_EQ(store_->pending_counts().timers, 2);

  CreateTopic("Orders", 4);
  report = Fire();
  EXPECT_EQ(report.fired, 2);
  EXPECT_EQ(report.held, 0);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(store_->pending_counts().timers, 0);
}

TEST_F(TimerServiceTest, FollowerNeverFiresUntilPromoted) {
  Schedule("x", absl::Seconds(1));
  clock_.Advance(absl::Seconds(5));
  store_->SetFollowing(true, "test");
  EXPECT_EQ(Fire().fired, 0);
  store_->SetFollowing(false);
  EXPECT_EQ(Fire().fired, 1);
}

TEST_F(TimerServiceTest, PendingTimersSurviveRestartAndFireOnce) {
  Schedule("x", absl::Seconds(1));
  Schedule("y", absl::Seconds(3));
  ASSERT_TRUE(store_->Flush().ok());
  Reopen();
  EXPECT_EQ(store_->pending_counts().timers, 2);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Fire().fired, 1);
  Reopen();
  EXPECT_EQ(store_->pending_counts().timers, 1);
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(Fire().fired, 1);
  EXPECT_EQ(Fire().fired, 0);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"x", "y"}));
}

TEST_F(TimerServiceTest, CrashLosingTheCopyRestoresTheTimerFromUndo) {
  Schedule("x", absl::Seconds(1));
  ASSERT_TRUE(store_->Flush().ok());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Fire().fired, 1);  // indexed (the index is ahead), never synced
  timers_.reset();
  Crash();  // the unsynced FIRED copy is gone; the index must step back
  Open();
  timers_ = std::make_unique<TimerService>(store_.get(), &clock_, TimerServiceOptions{}, nullptr);
  EXPECT_EQ(store_->pending_counts().timers, 1);
  EXPECT_TRUE(Bodies("Orders", 1).empty());
  EXPECT_EQ(Fire().fired, 1);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"x"}));
}

TEST_F(TimerServiceTest, RebuiltIndexEqualsLiveDispatch) {
  Schedule("x", absl::Seconds(1));
  Schedule("y", absl::Seconds(2));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Fire().fired, 1);
  ASSERT_TRUE(store_->Flush().ok());
  timers_.reset();
  store_.reset();
  StoreOptions options = Options();
  options.rebuild_indexes = true;
  Open(options);
  EXPECT_EQ(store_->pending_counts().timers, 1);
  auto next = store_->NextTimerDue();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(**next, NowMs() + 1000);
}

// Retention (message-types.md §2.4): a store with a short retention whose
// timer service carries timers forward.
class TimerCarryTest : public TimerServiceTest {
 protected:
  void SetUp() override {
    TimerServiceTest::SetUp();
    Reopen();
  }
  void TearDown() override {
    if (store_ != nullptr) store_->SetTimerCarrier(nullptr);
  }
  // Closes the store, or with `crash` loses its unsynced log data first.
  void Reopen(bool crash = false) {
    if (store_ != nullptr) store_->SetTimerCarrier(nullptr);
    timers_.reset();
    if (crash) Crash();
    store_.reset();
    Open(Retained(Options()));
    timers_ = std::make_unique<TimerService>(store_.get(), &clock_, timer_options_, nullptr);
    store_->SetTimerCarrier(timers_.get());
  }
  static StoreOptions Retained(StoreOptions options) {
    options.retention.retention = absl::Minutes(30);
    options.retention.disk_usage_watermark = 1.0;
    return options;
  }
  // Fills several 16 KiB segments with normal messages (flushed, indexed).
  void Fill(const std::string& topic = "Orders") {
    for (int i = 0; i < 40; ++i) Append(topic, 0, std::string(2048, 'x'));
    ASSERT_TRUE(store_->Flush().ok());
    WaitForDispatch();
  }
  RetentionReport Retain() {
    absl::StatusOr<RetentionReport> report = store_->RunRetention();
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : RetentionReport{};
  }
  TimerServiceOptions timer_options_;
  // A pending HALF for Orders/2; returns its offset.
  int64_t AppendHalf() {
    auto appended = store_->Append({Typed(RecordKind::kHalf, "half", absl::Seconds(6), 2)});
    EXPECT_TRUE(appended.ok()) << appended.status();
    return appended.ok() ? (*appended)[0].commit_offset : -1;
  }
  // The pending timers as the admin's ListPending shows them.
  std::vector<StoredRecord> Listed() {
    absl::StatusOr<PendingPage> page = ListPending(*store_, PendingQuery{});
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? std::move(page->records) : std::vector<StoredRecord>{};
  }
};

TEST_F(TimerCarryTest, CarriedTimerSurvivesRetentionAndFiresOnceAtItsTime) {
  const AppendResult timer = Schedule("late", absl::Hours(2));
  const int64_t due_ms = NowMs() + absl::ToInt64Milliseconds(absl::Hours(2));
  Fill();
  clock_.Advance(absl::Hours(1));
  const RetentionReport report = Retain();
  EXPECT_EQ(report.timers_carried, 1);
  EXPECT_GT(report.deleted_segments, 0);
  EXPECT_EQ(report.pinned_segments, 0);
  EXPECT_GT(store_->GetLogOffsets().min, timer.commit_offset);  // its segment is gone
  EXPECT_EQ(store_->Stats().timers_carried, 1);

  // Still one pending timer, at its new offset, with its due time, listed.
  EXPECT_EQ(store_->pending_counts().timers, 1);
  const std::vector<StoredRecord> listed = Listed();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].view().kind(), RecordKind::kTimer);
  EXPECT_EQ(listed[0].view().subject(), timer.commit_offset);
  EXPECT_EQ(listed[0].view().count(), 1u);  // carried once
  EXPECT_EQ(listed[0].view().at_ms(), due_ms);
  EXPECT_EQ(listed[0].view().message_id(), "id-late");
  EXPECT_EQ(listed[0].view().body(), "late");
  EXPECT_EQ(listed[0].view().target_topic(), "Orders");
  EXPECT_EQ(listed[0].view().target_queue(), 1);

  clock_.Advance(absl::Hours(1) - absl::Milliseconds(1));
  EXPECT_EQ(Fire().fired, 0);  // never early
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Fire().fired, 1);
  EXPECT_EQ(Fire().fired, 0);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"late"}));
  EXPECT_EQ(store_->pending_counts().timers, 0);
  EXPECT_EQ(store_->pending_counts().duplicate_resolvers, 0);
  auto copies = store_->LookupById("id-late");
  ASSERT_TRUE(copies.ok()) << copies.status();
  EXPECT_EQ(copies->back().view().kind(), RecordKind::kFired);
  EXPECT_GE(copies->back().view().store_timestamp_ms(), due_ms);
}

TEST_F(TimerCarryTest, ManyTimersAreCarriedInBatchesAndFireInDueOrder) {
  timer_options_.batch_limit = 2;
  Reopen();
  const std::vector<std::string> bodies = {"e", "d", "c", "b", "a"};  // "a" is due first
  for (size_t i = 0; i < bodies.size(); ++i) {
    Schedule(bodies[i], absl::Hours(2) - absl::Minutes(static_cast<int64_t>(i)));
  }
  Fill();
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Retain().timers_carried, 5);
  EXPECT_EQ(Listed().size(), 5u);
  clock_.Advance(absl::Hours(1));
  for (int pass = 0; pass < 3; ++pass) Fire();  // two per pass
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(store_->pending_counts().timers, 0);
}

// A moved copy is judged by its own offset at its due time, so a timer
// whose target was deleted (and created again) since is dropped at the carry.
TEST_F(TimerCarryTest, TimerOfADeletedTargetIsDroppedNotCarried) {
  Schedule("old", absl::Hours(2));
  ASSERT_TRUE(store_->DeleteTopic("Orders").ok());
  CreateTopic("Orders", 4);
  Fill();
  clock_.Advance(absl::Hours(1));
  const RetentionReport report = Retain();
  EXPECT_EQ(report.timers_carried, 0);
  EXPECT_EQ(report.pinned_segments, 0);
  EXPECT_EQ(store_->pending_counts().timers, 0);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Fire().fired, 0);
  EXPECT_TRUE(Bodies("Orders", 1).empty());
}

TEST_F(TimerCarryTest, CarriedTwiceStillFiresOnce) {
  Schedule("later", absl::Hours(3));
  Fill();
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Retain().timers_carried, 1);
  Fill();  // the moved copy's segment ages out too
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Retain().timers_carried, 1);
  ASSERT_EQ(Listed().size(), 1u);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Fire().fired, 1);
  EXPECT_EQ(Fire().fired, 0);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"later"}));
}

// A restart between the carry and the segment delete: the moved copy either
// survived (it is the timer) or was lost with unsynced data (the original
// is the timer again, via undo). Either way the timer fires once.
TEST_F(TimerCarryTest, RestartBetweenCarryAndDeleteFiresOnce) {
  for (bool synced : {true, false}) {
    SCOPED_TRACE(synced ? "copy synced" : "copy lost");
    const AppendResult timer = Schedule(synced ? "a" : "b", absl::Hours(2));
    Fill();
    auto carried = timers_->CarryTimersBefore(store_->GetLogOffsets().max);
    ASSERT_TRUE(carried.ok()) << carried.status();
    EXPECT_EQ(*carried, 1);
    if (synced) {
      ASSERT_TRUE(store_->Flush().ok());
    }
    Reopen(/*crash=*/true);
    EXPECT_EQ(store_->pending_counts().timers, 1);
    auto original = store_->GetPending(timer.commit_offset);
    ASSERT_TRUE(original.ok());
    EXPECT_EQ(original->has_value(), !synced);

    clock_.Advance(absl::Hours(1));
    const RetentionReport report = Retain();  // carries again only what is left to carry
    EXPECT_EQ(report.timers_carried, synced ? 0 : 1);
    EXPECT_GT(report.deleted_segments, 0);
    clock_.Advance(absl::Hours(1));
    EXPECT_EQ(Fire().fired, 1);
    EXPECT_EQ(Fire().fired, 0);
    EXPECT_EQ(store_->pending_counts().timers, 0);
    auto copies = store_->LookupById(synced ? "id-a" : "id-b");
    ASSERT_TRUE(copies.ok()) << copies.status();
    int fired = 0;
    for (const StoredRecord& copy : *copies) fired += copy.view().kind() == RecordKind::kFired;
    EXPECT_EQ(fired, 1);
    EXPECT_EQ(Bodies("Orders", 1).back(), synced ? "a" : "b");
  }
  EXPECT_EQ(store_->pending_counts().duplicate_resolvers, 0);
}

// Retention syncs the moved copies before it deletes their originals: a
// machine crash right after the pass cannot take both.
TEST_F(TimerCarryTest, MachineCrashAfterThePassKeepsTheMovedCopy) {
  const AppendResult timer = Schedule("t", absl::Hours(2));
  Fill();
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Retain().timers_carried, 1);
  EXPECT_GT(store_->GetLogOffsets().min, timer.commit_offset);
  Reopen(/*crash=*/true);
  ASSERT_EQ(Listed().size(), 1u);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Fire().fired, 1);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"t"}));
}

TEST_F(TimerCarryTest, PendingHalfPinsItsSegmentAndTimersBeforeItAreCarried) {
  Schedule("t", absl::Hours(5));
  Fill();
  const int64_t half = AppendHalf();
  Fill();
  clock_.Advance(absl::Hours(1));
  const RetentionReport report = Retain();
  EXPECT_EQ(report.timers_carried, 1);  // the timer before the half moves on
  EXPECT_GT(report.deleted_segments, 0);
  EXPECT_GT(report.pinned_segments, 0);  // the half's segment and every later one stay
  EXPECT_LE(store_->GetLogOffsets().min, half);
  EXPECT_EQ(store_->Stats().retention_pinned_segments, report.pinned_segments);
  auto pending = store_->GetPending(half);
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->has_value());
  EXPECT_EQ(store_->pending_counts().transactions, 1);
}

// A discarded half waits for an operator, but only as long as its segment
// is retained (message-types.md §3.3).
TEST_F(TimerCarryTest, DiscardedMessageDoesNotPin) {
  const int64_t half = AppendHalf();
  TransactionService transactions(store_.get(), nullptr);
  auto discarded =
      transactions.Resolve(ResolveRequest{half, "id-half", "Orders", Resolution::kDiscard});
  ASSERT_TRUE(discarded.ok()) << discarded.status();
  WaitForDispatch();
  auto listed = store_->ScanPending(RecordKind::kDiscarded, 0, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  Fill();
  clock_.Advance(absl::Hours(1));
  const RetentionReport report = Retain();
  EXPECT_EQ(report.pinned_segments, 0);
  EXPECT_GT(store_->GetLogOffsets().min, (*listed)[0].commit_offset);
  EXPECT_TRUE(store_->ScanPending(RecordKind::kDiscarded, 0, 10)->empty());
}

// The dispatcher's half of exactly once: a moved copy takes over its
// subject's pending entry only if there is one.
TEST_F(TimerServiceTest, MovedCopyOfAFiredTimerIsNoTimer) {
  const AppendResult timer = Schedule("x", absl::Seconds(1));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Fire().fired, 1);
  auto record = store_->ReadAt(timer.commit_offset);
  ASSERT_TRUE(record.ok()) << record.status();
  RecordInput late_copy = CopyRecord(record->view(), RecordKind::kTimer, kTimerTopic, 0, true);
  late_copy.ext.count = 1;
  ASSERT_TRUE(store_->Append({late_copy}).ok());
  WaitForDispatch();
  EXPECT_EQ(store_->pending_counts().timers, 0);
  EXPECT_EQ(store_->pending_counts().duplicate_resolvers, 1);
  EXPECT_EQ(Fire().fired, 0);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"x"}));
}

TEST_F(TimerCarryTest, AFullDiskKeepsTheTimersSegment) {
  const AppendResult timer = Schedule("t", absl::Hours(2));
  Fill();
  fs_.SetCapacity(fs_.used_bytes() + 100);  // the copy cannot be appended
  clock_.Advance(absl::Hours(1));
  const RetentionReport report = Retain();
  EXPECT_EQ(report.timers_carried, 0);
  EXPECT_GT(report.pinned_segments, 0);
  EXPECT_LE(store_->GetLogOffsets().min, timer.commit_offset);
  fs_.SetCapacity(std::nullopt);
  EXPECT_EQ(Retain().timers_carried, 1);  // space again: carried, then deleted
  EXPECT_GT(store_->GetLogOffsets().min, timer.commit_offset);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Fire().fired, 1);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"t"}));
}

// A follower never appends: its timer pins the segment until the master's
// moved copy arrives in the replicated log.
TEST_F(TimerCarryTest, FollowerPinsUntilTheMastersMovedCopyArrives) {
  StoreOptions options = Retained(Options());
  options.data_dir = dir_.path() + "/follower";
  auto follower = Store::Create(options);
  ASSERT_TRUE(follower.ok()) << follower.status();
  ASSERT_TRUE((*follower)->PutTopic({"Orders", 4, "", 0}).ok());
  (*follower)->SetFollowing(true, "test follower");
  TimerService follower_timers((*follower).get(), &clock_, TimerServiceOptions{}, nullptr);
  (*follower)->SetTimerCarrier(&follower_timers);
  const auto replicate = [&] {
    ASSERT_GT(testing::CopyLog(*store_, follower->get()), 0);
    ASSERT_TRUE((*follower)->Flush().ok());
    ASSERT_TRUE((*follower)->WaitForDispatch((*follower)->GetLogOffsets().max, absl::Seconds(10)));
  };

  const AppendResult timer = Schedule("t", absl::Hours(2));
  Fill();
  replicate();
  clock_.Advance(absl::Hours(1));
  auto pinned = (*follower)->RunRetention();
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(pinned->timers_carried, 0);
  EXPECT_GT(pinned->pinned_segments, 0);
  EXPECT_LE((*follower)->GetLogOffsets().min, timer.commit_offset);

  EXPECT_EQ(Retain().timers_carried, 1);  // the master carries
  replicate();
  auto freed = (*follower)->RunRetention();
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(freed->timers_carried, 0);
  EXPECT_EQ(freed->pinned_segments, 0);
  EXPECT_GT((*follower)->GetLogOffsets().min, timer.commit_offset);
  EXPECT_EQ((*follower)->pending_counts().timers, 1);
  (*follower)->SetTimerCarrier(nullptr);
}

TEST_F(TimerServiceTest, WithoutACarrierAPendingTimerPinsItsSegment) {
  timers_.reset();
  store_.reset();
  StoreOptions options = Options();
  options.retention.retention = absl::Seconds(1);
  Open(options);
  timers_ = std::make_unique<TimerService>(store_.get(), &clock_, TimerServiceOptions{}, nullptr);
  Schedule("late", absl::Hours(2));
  for (int i = 0; i < 40; ++i) Append("Orders", 0, std::string(2048, 'x'));  // several segments
  ASSERT_TRUE(store_->Flush().ok());
  WaitForDispatch();
  clock_.Advance(absl::Hours(1));
  auto report = store_->RunRetention();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->deleted_segments, 0);  // the timer's segment and all after it stay
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Fire().fired, 1);
  ASSERT_TRUE(store_->Flush().ok());
  clock_.Advance(absl::Minutes(1));
  report = store_->RunRetention();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->deleted_segments, 0);
  EXPECT_EQ(Bodies("Orders", 1), (std::vector<std::string>{"late"}));
}

TEST_F(TimerServiceTest, TimerToAMissingTargetIsRefusedAtAppend) {
  auto appended = store_->Append({Typed(RecordKind::kTimer, "x", absl::Seconds(1), 9)});
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(appended.status().message().find("queue 9"), std::string::npos) << appended.status();
}

}  // namespace
}  // namespace apogee::store
