#include "services/store/typed/transactions.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/naming/names.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

class TransactionServiceTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    Open(FlushMode::kSync);
    CreateTopic("Orders", 4);
    txn_ = std::make_unique<TransactionService>(store_.get(), nullptr);
  }
  void Reopen(StoreOptions options) {
    txn_.reset();
    store_.reset();
    Open(std::move(options));
    txn_ = std::make_unique<TransactionService>(store_.get(), nullptr);
  }

  int64_t NowMs() const { return absl::ToUnixMillis(clock_.Now()); }

  // Appends a HALF for `body` to Orders/2, first check `delay` from now.
  int64_t SendHalf(const std::string& body, absl::Duration delay = absl::Seconds(6)) {
    RecordInput in;
    in.topic = kTransHalfTopic;
    in.message_id = "id-" + body;
    in.keys = {"k-" + body};
    in.tag = "TagA";
    in.body = body;
    in.ext.kind = RecordKind::kHalf;
    in.ext.at_ms = NowMs() + absl::ToInt64Milliseconds(delay);
    in.ext.target_topic = "Orders";
    in.ext.target_queue = 2;
    auto appended = store_->Append({in});
    EXPECT_TRUE(appended.ok()) << appended.status();
    WaitForDispatch();
    return appended.ok() ? (*appended)[0].commit_offset : -1;
  }

  absl::StatusOr<ResolveResult> Resolve(int64_t o, const std::string& body, Resolution r) {
    return txn_->Resolve(ResolveRequest{o, "id-" + body, "Orders", r});
  }

  std::vector<int64_t> DueHalves(int64_t due_before_ms) {
    ListPendingRequest request;
    request.due_before_ms = due_before_ms;
    auto listed = txn_->ListPending(request);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<int64_t> out;
    if (listed.ok()) {
      for (const PendingRecord& p : listed->records) out.push_back(p.entry.commit_offset);
    }
    return out;
  }

  std::vector<std::string> Discarded() {
    ListPendingRequest request;
    request.kind = RecordKind::kDiscarded;
    auto listed = txn_->ListPending(request);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<std::string> out;
    if (listed.ok()) {
      for (const PendingRecord& p : listed->records) {
        out.emplace_back(p.record.view().body());
      }
    }
    return out;
  }

  std::unique_ptr<TransactionService> txn_;
};

TEST_F(TransactionServiceTest, HalfIsInvisibleUntilCommittedOnce) {
  const int64_t o = SendHalf("a");
  EXPECT_TRUE(Bodies("Orders", 2).empty());
  EXPECT_EQ(store_->pending_counts().transactions, 1);

  auto committed = Resolve(o, "a", Resolution::kCommit);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_FALSE(committed->already);
  ASSERT_TRUE(committed->record.has_value());
  WaitForDispatch();
  EXPECT_EQ(Bodies("Orders", 2), (std::vector<std::string>{"a"}));
  EXPECT_EQ(store_->pending_counts().transactions, 0);

  // The copy keeps the message: id, keys, tag.
  auto copy = store_->ReadAt(committed->record->commit_offset);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->view().kind(), RecordKind::kCommitted);
  EXPECT_EQ(copy->view().message_id(), "id-a");
  EXPECT_EQ(copy->view().tag(), "TagA");
  EXPECT_EQ(copy->view().subject(), o);

  // A repeat answers "already"; the other resolutions are refused.
  auto again = Resolve(o, "a", Resolution::kCommit);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already);
  auto rollback = Resolve(o, "a", Resolution::kRollback);
  EXPECT_EQ(rollback.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(rollback.status().message().find("already committed"), std::string::npos)
      << rollback.status();
  auto discard = Resolve(o, "a", Resolution::kDiscard);
  EXPECT_EQ(discard.status().code(), absl::StatusCode::kFailedPrecondition);
  WaitForDispatch();
  EXPECT_EQ(Bodies("Orders", 2), (std::vector<std::string>{"a"}));
  EXPECT_EQ(store_->pending_counts().duplicate_resolvers, 0);
}

TEST_F(TransactionServiceTest, RollbackIsNeverVisible) {
  const int64_t o = SendHalf("b");
  auto rolled = Resolve(o, "b", Resolution::kRollback);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_TRUE(Resolve(o, "b", Resolution::kRollback)->already);
  auto commit = Resolve(o, "b", Resolution::kCommit);
  EXPECT_EQ(commit.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(commit.status().message().find("already rolled back"), std::string::npos);
  WaitForDispatch();
  EXPECT_TRUE(Bodies("Orders", 2).empty());
  EXPECT_EQ(store_->pending_counts().transactions, 0);
}

TEST_F(TransactionServiceTest, WrongIdTopicOrOffsetIsNotFound) {
  const int64_t o = SendHalf("c");
  const int64_t normal = Append("Orders", 1, "plain").commit_offset;
  EXPECT_EQ(txn_->Resolve({o, "other-id", "Orders", Resolution::kCommit}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(txn_->Resolve({o, "id-c", "Payments", Resolution::kCommit}).status().code(),
            absl::StatusCode::kNotFound);
  auto plain = txn_->Resolve({normal, "", "", Resolution::kCommit});
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(plain.status().message().find("NORMAL"), std::string::npos) << plain.status();
  EXPECT_EQ(txn_->Resolve({o + 1, "id-c", "Orders", Resolution::kCommit}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(txn_->Resolve({1 << 30, "id-c", "Orders", Resolution::kCommit}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->pending_counts().transactions, 1);  // untouched
}

TEST_F(TransactionServiceTest, ChecksCountAndMoveTheCheckTime) {
  const int64_t o = SendHalf("d", absl::Seconds(6));
  EXPECT_TRUE(DueHalves(NowMs()).empty());
  clock_.Advance(absl::Seconds(6));
  EXPECT_EQ(DueHalves(NowMs()), (std::vector<int64_t>{o}));

  ASSERT_TRUE(txn_->RecordCheck(o, 1, NowMs() + 60'000).ok());
  WaitForDispatch();
  EXPECT_TRUE(DueHalves(NowMs()).empty());  // next check in 60 s
  // A stale count (another checker won) is refused and changes nothing.
  absl::Status stale = txn_->RecordCheck(o, 1, NowMs() + 1);
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(stale.message().find("checked 1 times"), std::string::npos) << stale;

  clock_.Advance(absl::Seconds(60));
  ListPendingRequest request;
  request.due_before_ms = NowMs();
  auto listed = txn_->ListPending(request);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->records.size(), 1u);
  EXPECT_EQ(listed->records[0].entry.count, 1u);
  EXPECT_EQ(listed->records[0].entry.at_ms, NowMs());
  EXPECT_EQ(listed->records[0].record.view().body(), "d");
  request.target_topic = "Payments";
  EXPECT_TRUE(txn_->ListPending(request)->records.empty());
  request.limit = 0;
  EXPECT_EQ(txn_->ListPending(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TransactionServiceTest, DiscardedThenLateCommitOnce) {
  const int64_t o = SendHalf("e");
  ASSERT_TRUE(txn_->RecordCheck(o, 1, NowMs()).ok());
  auto discarded = Resolve(o, "e", Resolution::kDiscard);
  ASSERT_TRUE(discarded.ok()) << discarded.status();
  WaitForDispatch();
  EXPECT_EQ(Discarded(), (std::vector<std::string>{"e"}));
  EXPECT_EQ(Bodies(kTransCheckMaxTopic, 0), (std::vector<std::string>{"e"}));
  auto copy = store_->ReadAt(discarded->record->commit_offset);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->view().count(), 1u);  // the checks it gave up after
  EXPECT_EQ(store_->pending_counts().transactions, 0);
  EXPECT_TRUE(Resolve(o, "e", Resolution::kDiscard)->already);

  // An operator (or a late producer) commits it: once.
  auto committed = Resolve(o, "e", Resolution::kCommit);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_FALSE(committed->already);
  EXPECT_TRUE(Resolve(o, "e", Resolution::kCommit)->already);
  WaitForDispatch();
  EXPECT_EQ(Bodies("Orders", 2), (std::vector<std::string>{"e"}));
  EXPECT_TRUE(Discarded().empty());
  EXPECT_EQ(Resolve(o, "e", Resolution::kRollback).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TransactionServiceTest, ConcurrentCommitsAppendOneCopy) {
  const int64_t o = SendHalf("f");
  std::atomic<int> fresh{0};
  std::atomic<int> already{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = Resolve(o, "f", Resolution::kCommit);
      if (!r.ok()) return;
      (r->already ? already : fresh).fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(fresh.load(), 1);
  EXPECT_EQ(already.load(), 7);
  WaitForDispatch();
  EXPECT_EQ(Bodies("Orders", 2), (std::vector<std::string>{"f"}));
  EXPECT_EQ(store_->pending_counts().duplicate_resolvers, 0);
}

TEST_F(TransactionServiceTest, DeletedTargetCannotCommitButRollsBack) {
  const int64_t o = SendHalf("g");
  ASSERT_TRUE(store_->DeleteTopic("Orders").ok());
  auto commit = Resolve(o, "g", Resolution::kCommit);
  EXPECT_EQ(commit.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(commit.status().message().find("deleted"), std::string::npos) << commit.status();
  EXPECT_EQ(store_->pending_counts().transactions, 1);  // stays pending (discarded later)
  EXPECT_TRUE(Resolve(o, "g", Resolution::kRollback).ok());
}

TEST_F(TransactionServiceTest, StateIsRebuiltFromTheLogOnRestart) {
  const int64_t a = SendHalf("a");
  const int64_t b = SendHalf("b");
  const int64_t c = SendHalf("c");
  ASSERT_TRUE(Resolve(a, "a", Resolution::kCommit).ok());
  ASSERT_TRUE(txn_->RecordCheck(b, 1, NowMs() + 1000).ok());
  WaitForDispatch();

  // Plain restart, then a rebuild of every derived index from the log.
  for (bool rebuild : {false, true}) {
    StoreOptions options = Options(FlushMode::kSync);
    options.rebuild_indexes = rebuild;
    Reopen(options);
    EXPECT_EQ(store_->pending_counts().transactions, 2) << "rebuild=" << rebuild;
    EXPECT_TRUE(Resolve(a, "a", Resolution::kCommit)->already);
    auto pending_b = store_->GetPending(b);
    ASSERT_TRUE(pending_b.ok() && pending_b->has_value());
    EXPECT_EQ((*pending_b)->count, 1u);
    EXPECT_EQ(Bodies("Orders", 2), (std::vector<std::string>{"a"}));
  }
  ASSERT_TRUE(Resolve(c, "c", Resolution::kCommit).ok());
  WaitForDispatch();
  EXPECT_EQ(Bodies("Orders", 2), (std::vector<std::string>{"a", "c"}));
}

TEST_F(TransactionServiceTest, CrashLosingTheCommitGivesTheHalfBack) {
  Reopen(Options(FlushMode::kAsync));
  const int64_t o = SendHalf("h");
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(Resolve(o, "h", Resolution::kCommit).ok());  // not flushed
  WaitForDispatch();
  txn_.reset();
  Crash();  // the unsynced COMMITTED copy is gone; undo restores the half
  Open(Options(FlushMode::kAsync));
  txn_ = std::make_unique<TransactionService>(store_.get(), nullptr);
  EXPECT_EQ(store_->pending_counts().transactions, 1);
  EXPECT_TRUE(Bodies("Orders", 2).empty());
  auto again = Resolve(o, "h", Resolution::kCommit);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->already);
  WaitForDispatch();
  EXPECT_EQ(Bodies("Orders", 2), (std::vector<std::string>{"h"}));
}

TEST_F(TransactionServiceTest, FollowerRefusesActions) {
  const int64_t o = SendHalf("i");
  store_->SetFollowing(true, "test");
  auto r = Resolve(o, "i", Resolution::kCommit);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("follows a master"), std::string::npos);
  store_->SetFollowing(false);
  EXPECT_TRUE(Resolve(o, "i", Resolution::kCommit).ok());
}

TEST_F(TransactionServiceTest, ClientsCannotWriteStoreKindsOrHalfElsewhere) {
  RecordInput half;
  half.topic = "Orders";
  half.ext.kind = RecordKind::kHalf;
  half.ext.at_ms = NowMs();
  half.ext.target_topic = "Orders";
  EXPECT_EQ(store_->Append({half}).status().code(), absl::StatusCode::kInvalidArgument);
  half.topic = kTransHalfTopic;
  half.ext.target_topic = "Missing";
  EXPECT_EQ(store_->Append({half}).status().code(), absl::StatusCode::kNotFound);
  RecordInput plain;
  plain.topic = kTransHalfTopic;
  plain.body = "x";
  EXPECT_EQ(store_->Append({plain}).status().code(), absl::StatusCode::kInvalidArgument);
  plain.topic = kTransCheckMaxTopic;
  EXPECT_EQ(store_->Append({plain}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace apogee::store
