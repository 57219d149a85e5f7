#include "services/store/service/appender.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/store/testing/records.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::HasSubstr;

// Collects callbacks in the order the appender runs them.
struct Outcomes {
  absl::Mutex mu;
  std::vector<std::pair<int, absl::StatusOr<std::vector<AppendResult>>>> seen ABSL_GUARDED_BY(mu);

  Appender::Done For(int id) {
    return [this, id](absl::StatusOr<std::vector<AppendResult>> r, absl::Status) {
      absl::MutexLock lock(&mu);
      seen.emplace_back(id, std::move(r));
    };
  }
  // Callbacks 0..n-1 ran in order, each OK, at queue offsets 0, 1, 2...
  void ExpectInOrderAndContiguous(int n) {
    absl::MutexLock lock(&mu);
    ASSERT_GE(seen.size(), static_cast<size_t>(n));
    int64_t next = 0;
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(seen[i].first, i);
      ASSERT_TRUE(seen[i].second.ok()) << seen[i].second.status();
      for (const AppendResult& r : *seen[i].second) EXPECT_EQ(r.queue_offset, next++);
    }
  }
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return seen.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(20));
  }
};

class AppenderTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    Open(Options(FlushMode::kSync));
    CreateTopic("T", 2);
  }

  std::vector<RecordInput> Batch(int n, int32_t queue = 0, const std::string& topic = "T") {
    std::vector<RecordInput> batch;
    for (int i = 0; i < n; ++i) batch.push_back(testing::MakeRecord(topic, queue, "body"));
    return batch;
  }

  // Holds the next commit-log fdatasync (notifying `holding`) until
  // `release`, so that batches submitted meanwhile queue up.
  void HoldFirstSync(absl::Notification* holding, absl::Notification* release) {
    FaultRule hold;
    hold.op = FaultOp::kSync;
    hold.path_contains = "commitlog";
    hold.error = absl::OkStatus();
    hold.hook = [holding, release] {
      holding->Notify();
      release->WaitForNotification();
    };
    fs_.AddFault(hold);
  }

  Probe probe_{std::make_shared<prometheus::Registry>()};
};

TEST_F(AppenderTest, MergesQueuedBatchesKeepingOrderAndSharingOneSync) {
  // Hold the first fdatasync so the other batches queue up behind it.
  absl::Notification release;
  absl::Notification holding;
  HoldFirstSync(&holding, &release);

  Outcomes outcomes;
  Appender appender(store_.get(), &probe_, AppenderOptions{});
  appender.Submit(Batch(3), 12, outcomes.For(0));
  ASSERT_TRUE(holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const int syncs_before = fs_.syncs();
  for (int i = 1; i <= 40; ++i) appender.Submit(Batch(3), 12, outcomes.For(i));
  release.Notify();
  ASSERT_TRUE(outcomes.WaitFor(41));

  outcomes.ExpectInOrderAndContiguous(41);
  // The 40 queued batches went to the engine as one group: one more sync
  // (the held one counts before), not forty.
  EXPECT_LE(fs_.syncs() - syncs_before, 3);
}

TEST_F(AppenderTest, LeadsInlineOnTheCallersThreadWhenIdle) {
  AppenderOptions options;
  options.lead_inline = true;
  Appender appender(store_.get(), &probe_, options);
  std::thread::id ran_on;
  bool answered = false;
  appender.Submit(Batch(2), 8,
                  [&](absl::StatusOr<std::vector<AppendResult>> r, absl::Status replication) {
                    ASSERT_TRUE(r.ok()) << r.status();
                    EXPECT_TRUE(replication.ok());
                    ran_on = std::this_thread::get_id();
                    answered = true;
                  });
  // Nothing else was appending: the batch was stored and answered before
  // Submit returned, on this thread (no hand-off).
  EXPECT_TRUE(answered);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST_F(AppenderTest, InlineLeaderQueuesOthersBehindItAndKeepsOrder) {
  // An inline leader held in its fdatasync: later batches queue (they may
  // not overtake it) and go out merged once it is done.
  absl::Notification release;
  absl::Notification holding;
  HoldFirstSync(&holding, &release);
  AppenderOptions options;
  options.lead_inline = true;
  Outcomes outcomes;
  Appender appender(store_.get(), &probe_, options);
  std::thread leader([&] { appender.Submit(Batch(3), 12, outcomes.For(0)); });
  ASSERT_TRUE(holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const int syncs_before = fs_.syncs();
  for (int i = 1; i <= 40; ++i) appender.Submit(Batch(3), 12, outcomes.For(i));
  {
    absl::MutexLock lock(&outcomes.mu);
    EXPECT_TRUE(outcomes.seen.empty()) << "a batch overtook the leader";
  }
  release.Notify();
  leader.join();
  ASSERT_TRUE(outcomes.WaitFor(41));
  outcomes.ExpectInOrderAndContiguous(41);
  EXPECT_LE(fs_.syncs() - syncs_before, 3);  // merged, not one sync each
}

TEST_F(AppenderTest, BadBatchInAMergedGroupFailsAlone) {
  absl::Notification release;
  absl::Notification holding;
  HoldFirstSync(&holding, &release);

  Outcomes outcomes;
  Appender appender(store_.get(), &probe_, AppenderOptions{});
  appender.Submit(Batch(1), 4, outcomes.For(0));
  ASSERT_TRUE(holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  appender.Submit(Batch(2), 8, outcomes.For(1));
  appender.Submit(Batch(2, 0, "Missing"), 8, outcomes.For(2));
  appender.Submit(Batch(2, 5), 8, outcomes.For(3));  // queue out of range
  appender.Submit(Batch(2), 8, outcomes.For(4));
  release.Notify();
  ASSERT_TRUE(outcomes.WaitFor(5));

  absl::MutexLock lock(&outcomes.mu);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(outcomes.seen[i].first, i);
  ASSERT_TRUE(outcomes.seen[1].second.ok());
  EXPECT_EQ(outcomes.seen[2].second.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(outcomes.seen[2].second.status().message(),
              HasSubstr("batch[0].topic \"Missing\" does not exist"));
  EXPECT_EQ(outcomes.seen[3].second.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(outcomes.seen[3].second.status().message(), HasSubstr("queue 5"));
  ASSERT_TRUE(outcomes.seen[4].second.ok());
  // Offsets stay contiguous: the failed batches stored nothing.
  EXPECT_EQ((*outcomes.seen[1].second)[0].queue_offset, 1);
  EXPECT_EQ((*outcomes.seen[4].second)[0].queue_offset, 3);
}

TEST_F(AppenderTest, DestructorAppendsWhatIsQueued) {
  Outcomes outcomes;
  {
    Appender appender(store_.get(), &probe_, AppenderOptions{});
    for (int i = 0; i < 20; ++i) appender.Submit(Batch(1, 1), 4, outcomes.For(i));
  }
  absl::MutexLock lock(&outcomes.mu);
  ASSERT_EQ(outcomes.seen.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(outcomes.seen[i].second.ok());
    EXPECT_EQ((*outcomes.seen[i].second)[0].queue_offset, i);
  }
}

TEST_F(AppenderTest, SkipsTheReplicaWaitOnlyWhileNoneIsNeeded) {
  std::atomic<int> awaited{0};
  std::atomic<bool> wanted{false};
  AppenderOptions options;
  options.await_replicas = [&](int64_t, absl::Time) {
    ++awaited;
    return absl::OkStatus();
  };
  options.awaits_replicas = [&] { return wanted.load(); };
  Outcomes outcomes;
  Appender appender(store_.get(), &probe_, options);
  for (int i = 0; i < 5; ++i) appender.Submit(Batch(1), 4, outcomes.For(i));
  ASSERT_TRUE(outcomes.WaitFor(5));
  EXPECT_EQ(awaited.load(), 0);
  wanted = true;
  for (int i = 5; i < 10; ++i) appender.Submit(Batch(1), 4, outcomes.For(i));
  ASSERT_TRUE(outcomes.WaitFor(10));
  EXPECT_EQ(awaited.load(), 5);
  absl::MutexLock lock(&outcomes.mu);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(outcomes.seen[i].first, i);
    ASSERT_TRUE(outcomes.seen[i].second.ok());
    EXPECT_EQ((*outcomes.seen[i].second)[0].queue_offset, i);
  }
}

TEST_F(AppenderTest, GroupsStayUnderMaxGroupBytes) {
  // Every commit-log write moves the manual clock, so the records of one
  // engine call (one group) share a store timestamp no other group has.
  FaultRule tick;
  tick.op = FaultOp::kAppend;
  tick.path_contains = "commitlog";
  tick.times = -1;
  tick.error = absl::OkStatus();
  tick.hook = [&] { clock_.Advance(absl::Milliseconds(1)); };
  fs_.AddFault(tick);
  // Hold the first fdatasync so the other batches queue up and get merged.
  absl::Notification release;
  absl::Notification holding;
  HoldFirstSync(&holding, &release);

  constexpr int64_t kMaxGroupBytes = 8 << 10;  // half the harness's 16 KiB segment
  Outcomes outcomes;
  AppenderOptions options;
  options.max_group_bytes = kMaxGroupBytes;
  Appender appender(store_.get(), &probe_, options);
  auto batch = [] {
    std::vector<RecordInput> b;
    for (int j = 0; j < 2; ++j) b.push_back(testing::MakeRecord("T", 0, std::string(1000, 'x')));
    return b;
  };
  appender.Submit(batch(), 2000, outcomes.For(0));
  ASSERT_TRUE(holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  for (int i = 1; i < 50; ++i) appender.Submit(batch(), 2000, outcomes.For(i));
  release.Notify();
  ASSERT_TRUE(outcomes.WaitFor(50));

  // Group bytes and client batches per group, keyed by store timestamp.
  std::map<int64_t, std::pair<int64_t, int>> groups;
  absl::MutexLock lock(&outcomes.mu);
  for (auto& [id, result] : outcomes.seen) {
    ASSERT_TRUE(result.ok()) << id << ": " << result.status();
    ASSERT_EQ(result->size(), 2u);
    EXPECT_EQ((*result)[0].store_timestamp_ms, (*result)[1].store_timestamp_ms) << id;
    auto& [bytes, batches] = groups[(*result)[0].store_timestamp_ms];
    for (const AppendResult& r : *result) bytes += r.size;
    ++batches;
  }
  int most_batches = 0;
  for (const auto& [timestamp, group] : groups) {
    EXPECT_LE(group.first, kMaxGroupBytes) << "group stored at " << timestamp;
    most_batches = std::max(most_batches, group.second);
  }
  // Merging happened (a merged call that failed and was retried batch by
  // batch would leave one batch per group).
  EXPECT_GE(most_batches, 3);
}

}  // namespace
}  // namespace apogee::store
