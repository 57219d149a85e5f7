#include "services/broker/delivery/assignment.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apogee::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(AllocateAveragelyTest, SplitsEvenlyWithTheRemainderFirst) {
  EXPECT_THAT(AllocateAveragely(8, 2, 0), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(AllocateAveragely(8, 2, 1), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(AllocateAveragely(8, 3, 0), ElementsAre(0, 1, 2));
  EXPECT_THAT(AllocateAveragely(8, 3, 1), ElementsAre(3, 4, 5));
  EXPECT_THAT(AllocateAveragely(8, 3, 2), ElementsAre(6, 7));
  EXPECT_THAT(AllocateAveragely(1, 1, 0), ElementsAre(0));
}

TEST(AllocateAveragelyTest, MembersBeyondTheQueueCountGetNothing) {
  EXPECT_THAT(AllocateAveragely(2, 4, 0), ElementsAre(0));
  EXPECT_THAT(AllocateAveragely(2, 4, 1), ElementsAre(1));
  EXPECT_THAT(AllocateAveragely(2, 4, 2), IsEmpty());
  EXPECT_THAT(AllocateAveragely(2, 4, 3), IsEmpty());
}

TEST(AllocateAveragelyTest, RejectsNonsenseWithNothing) {
  EXPECT_THAT(AllocateAveragely(0, 1, 0), IsEmpty());
  EXPECT_THAT(AllocateAveragely(4, 0, 0), IsEmpty());
  EXPECT_THAT(AllocateAveragely(4, 2, 2), IsEmpty());
  EXPECT_THAT(AllocateAveragely(4, 2, -1), IsEmpty());
}

TEST(AllocateAveragelyTest, EveryQueueHasExactlyOneOwner) {
  for (int queues = 1; queues <= 17; ++queues) {
    for (int members = 1; members <= 20; ++members) {
      std::multiset<int32_t> seen;
      size_t smallest = queues, largest = 0;
      for (int i = 0; i < members; ++i) {
        std::vector<int32_t> mine = AllocateAveragely(queues, members, i);
        seen.insert(mine.begin(), mine.end());
        smallest = std::min(smallest, mine.size());
        largest = std::max(largest, mine.size());
      }
      ASSERT_EQ(seen.size(), static_cast<size_t>(queues)) << queues << "/" << members;
      for (int q = 0; q < queues; ++q) ASSERT_EQ(seen.count(q), 1u) << q;
      EXPECT_LE(largest - smallest, 1u) << queues << "/" << members;
    }
  }
}

// Records what each member was told, in order.
struct Told {
  std::vector<std::vector<int32_t>> queues;
  std::vector<int> members;
  Membership::Listener Listener() {
    return [this](const std::vector<int32_t>& q, int m) {
      queues.push_back(q);
      members.push_back(m);
    };
  }
};

TEST(MembershipTest, JoinAndLeaveRebalanceAndTellEveryMember) {
  Membership m;
  Told a, b, c;
  const uint64_t ida = m.Join("g", "t", "client-a", 4, false, a.Listener());
  EXPECT_THAT(a.queues.back(), ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(a.members.back(), 1);

  // Sorted by client id, not by join order: "client-0" goes first.
  const uint64_t idc = m.Join("g", "t", "client-0", 4, false, c.Listener());
  EXPECT_THAT(c.queues.back(), ElementsAre(0, 1));
  EXPECT_THAT(a.queues.back(), ElementsAre(2, 3));
  EXPECT_EQ(a.members.back(), 2);

  const uint64_t idb = m.Join("g", "t", "client-b", 4, false, b.Listener());
  EXPECT_THAT(c.queues.back(), ElementsAre(0, 1));
  EXPECT_THAT(a.queues.back(), ElementsAre(2));
  EXPECT_THAT(b.queues.back(), ElementsAre(3));
  EXPECT_EQ(m.Members("g", "t"), 3);

  const size_t told_b = b.queues.size();
  m.Leave(idc);
  EXPECT_THAT(a.queues.back(), ElementsAre(0, 1));
  EXPECT_THAT(b.queues.back(), ElementsAre(2, 3));
  EXPECT_EQ(b.queues.size(), told_b + 1);
  EXPECT_EQ(b.members.back(), 2);
  EXPECT_THAT(m.QueuesOf(idc), IsEmpty());

  m.Leave(idc);  // twice: ignored
  m.Leave(ida);
  EXPECT_THAT(b.queues.back(), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(m.QueuesOf(idb), ElementsAre(0, 1, 2, 3));
  m.Leave(idb);
  EXPECT_EQ(m.Members("g", "t"), 0);
}

TEST(MembershipTest, GroupsAndTopicsAreIndependent) {
  Membership m;
  Told a, b, c;
  m.Join("g1", "t", "x", 2, false, a.Listener());
  m.Join("g2", "t", "y", 2, false, b.Listener());
  m.Join("g1", "u", "z", 2, false, c.Listener());
  EXPECT_THAT(a.queues.back(), ElementsAre(0, 1));
  EXPECT_THAT(b.queues.back(), ElementsAre(0, 1));
  EXPECT_THAT(c.queues.back(), ElementsAre(0, 1));
  EXPECT_EQ(a.queues.size(), 1u);
}

TEST(MembershipTest, BroadcastingMembersGetEveryQueue) {
  Membership m;
  Told a, b, c;
  m.Join("g", "t", "a", 3, true, a.Listener());
  m.Join("g", "t", "b", 3, true, b.Listener());
  const uint64_t idc = m.Join("g", "t", "c", 3, true, c.Listener());
  for (Told* t : {&a, &b, &c}) {
    EXPECT_THAT(t->queues.back(), ElementsAre(0, 1, 2));
    EXPECT_EQ(t->members.back(), 3);
  }
  m.Leave(idc);
  EXPECT_THAT(a.queues.back(), ElementsAre(0, 1, 2));
  EXPECT_EQ(a.members.back(), 2);
}

TEST(MembershipTest, TwoStreamsOfOneClientSplitQueues) {
  Membership m;
  Told a, b;
  const uint64_t first = m.Join("g", "t", "same", 4, false, a.Listener());
  const uint64_t second = m.Join("g", "t", "same", 4, false, b.Listener());
  EXPECT_THAT(m.QueuesOf(first), ElementsAre(0, 1));
  EXPECT_THAT(m.QueuesOf(second), ElementsAre(2, 3));
}

TEST(MembershipTest, ALaterJoinSeesTheTopicsNewQueueCount) {
  Membership m;
  Told a, b;
  const uint64_t ida = m.Join("g", "t", "a", 2, false, a.Listener());
  m.Join("g", "t", "b", 4, false, b.Listener());
  EXPECT_THAT(m.QueuesOf(ida), ElementsAre(0, 1));
  EXPECT_THAT(b.queues.back(), ElementsAre(2, 3));
}

}  // namespace
}  // namespace apogee::broker
