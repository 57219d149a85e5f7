#include "services/store/typed/pending_list.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/naming/names.h"
#include "services/store/testing/store_harness.h"

namespace apogee::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PendingListTest : public testing::StoreHarness {
 protected:
  void SetUp() override {
    Open();
    CreateTopic("Orders", 4);
    CreateTopic("Other", 1);
  }

  // A TIMER for `topic`, due `delay_s` seconds from the clock's now.
  void Schedule(const std::string& id, const std::string& topic, int delay_s) {
    RecordInput in;
    in.topic = kTimerTopic;
    in.message_id = id;
    in.body = "body-" + id;
    in.ext.kind = RecordKind::kTimer;
    in.ext.at_ms = absl::ToUnixMillis(clock_.Now() + absl::Seconds(delay_s));
    in.ext.target_topic = topic;
    in.ext.target_queue = 0;
    ASSERT_TRUE(store_->Append({in}).ok());
  }

  static std::vector<std::string> Ids(const PendingPage& page) {
    std::vector<std::string> ids;
    for (const StoredRecord& r : page.records) ids.emplace_back(r.view().message_id());
    return ids;
  }

  PendingPage List(PendingQuery query) {
    absl::StatusOr<PendingPage> page = ListPending(*store_, query);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *page : PendingPage{};
  }
};

TEST_F(PendingListTest, DueOrderPagesFilterAndDueBefore) {
  // Appended out of due order; c and d share a due time (offset order).
  Schedule("a", "Orders", 30);
  Schedule("b", "Other", 10);
  Schedule("c", "Orders", 20);
  Schedule("d", "Orders", 20);
  Schedule("e", "Other", 40);
  WaitForDispatch();

  PendingQuery all;
  EXPECT_THAT(Ids(List(all)), ElementsAre("b", "c", "d", "a", "e"));
  const PendingPage full = List(all);
  EXPECT_FALSE(full.more);
  EXPECT_EQ(full.records[0].view().target_topic(), "Other");

  // Pages of 2 follow each other without gaps or repeats.
  PendingQuery paged;
  paged.limit = 2;
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    PendingPage page = List(paged);
    for (const std::string& id : Ids(page)) seen.push_back(id);
    if (!page.more) break;
    paged.after_ms = page.resume_ms;
    paged.after_offset = page.resume_offset;
  }
  EXPECT_THAT(seen, ElementsAre("b", "c", "d", "a", "e"));

  PendingQuery orders;
  orders.target_topic = "Orders";
  EXPECT_THAT(Ids(List(orders)), ElementsAre("c", "d", "a"));

  PendingQuery soon;
  soon.due_before_ms = absl::ToUnixMillis(clock_.Now() + absl::Seconds(20));
  EXPECT_THAT(Ids(List(soon)), ElementsAre("b", "c", "d"));
}

TEST_F(PendingListTest, BadKindOrLimitIsRefusedNamingIt) {
  PendingQuery query;
  query.limit = 0;
  absl::StatusOr<PendingPage> page = ListPending(*store_, query);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(page.status().message(), HasSubstr("limit is 0 (allowed: 1..10000)"));
  query.limit = 1;
  query.kind = RecordKind::kFired;
  page = ListPending(*store_, query);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(page.status().message(), HasSubstr("kind is"));
}

}  // namespace
}  // namespace apogee::store
