#include "services/store/typed/timer_service.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/naming/names.h"
#include "services/store/testing/store_harness.h"

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

  // Appends a TIMER for `body` to Orders/`queue`, due `delay` from now.
  AppendResult Schedule(const std::string& body, absl::Duration delay, int32_t queue = 1) {
    RecordInput in;
    in.topic = kTimerTopic;
    in.message_id = "id-" + body;
    in.body = body;
    in.ext.kind = RecordKind::kTimer;
    in.ext.at_ms = absl::ToUnixMillis(clock_.Now() + delay);
    in.ext.target_topic = "Orders";
    in.ext.target_queue = queue;
    auto appended = store_->Append({in});
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

TEST_F(TimerServiceTest, PendingTimerPinsItsSegmentAgainstRetention) {
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
  RecordInput in;
  in.topic = kTimerTopic;
  in.body = "x";
  in.ext.kind = RecordKind::kTimer;
  in.ext.at_ms = NowMs() + 1000;
  in.ext.target_topic = "Orders";
  in.ext.target_queue = 9;
  auto appended = store_->Append({in});
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(appended.status().message().find("queue 9"), std::string::npos) << appended.status();
}

}  // namespace
}  // namespace apogee::store
