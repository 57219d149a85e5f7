#include "services/broker/consume/fifo_state.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace apogee::broker {
namespace {

std::vector<int64_t> Offsets(const std::vector<FifoState::Pick>& picks) {
  std::vector<int64_t> out;
  for (const auto& p : picks) out.push_back(p.offset);
  return out;
}

TEST(MessageGroupHashTest, StableAndNeverNoGroup) {
  EXPECT_EQ(MessageGroupHash("order-7"), MessageGroupHash("order-7"));
  EXPECT_NE(MessageGroupHash("order-7"), MessageGroupHash("order-8"));
  // FNV-1a 64 of "a": a fixed value, so the mapping never changes silently.
  EXPECT_EQ(MessageGroupHash("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_NE(MessageGroupHash(""), kNoMessageGroup);
}

TEST(FifoStateTest, OneInFlightPerGroupOthersInParallel) {
  FifoState s;
  const uint64_t a = MessageGroupHash("a"), b = MessageGroupHash("b");
  EXPECT_TRUE(s.Offer(0, a));
  EXPECT_TRUE(s.Offer(1, b));   // another group proceeds
  EXPECT_FALSE(s.Offer(2, a));  // behind 0
  EXPECT_FALSE(s.Offer(3, b));  // behind 1
  EXPECT_TRUE(s.PickWaiting(10).empty());
  EXPECT_EQ(s.busy_groups(), 2);
  EXPECT_EQ(s.waiting(), 2);
  EXPECT_EQ(s.Low(4), 0);

  EXPECT_TRUE(s.Done(0));
  EXPECT_EQ(Offsets(s.PickWaiting(10)), std::vector<int64_t>{2});
  EXPECT_EQ(s.Low(4), 1);
  EXPECT_TRUE(s.Done(1));
  EXPECT_TRUE(s.Done(2));
  EXPECT_EQ(Offsets(s.PickWaiting(10)), std::vector<int64_t>{3});
  EXPECT_FALSE(s.Done(2));  // already done
  EXPECT_TRUE(s.Done(3));
  EXPECT_EQ(s.Low(4), 4);
}

TEST(FifoStateTest, ReleasedMessageComesBackFirstWithNextAttempt) {
  FifoState s;
  const uint64_t a = MessageGroupHash("a");
  ASSERT_TRUE(s.Offer(10, a));
  ASSERT_FALSE(s.Offer(11, a));
  EXPECT_EQ(s.Release(10), 2);  // expired
  EXPECT_EQ(s.Release(10), 0);  // no longer in flight
  auto picks = s.PickWaiting(10);
  ASSERT_EQ(picks.size(), 1u);  // 11 stays behind 10
  EXPECT_EQ(picks[0].offset, 10);
  EXPECT_EQ(picks[0].attempt, 2);
  EXPECT_EQ(s.Attempt(10), 2);
  EXPECT_FALSE(s.Offer(12, a));
  EXPECT_TRUE(s.Done(10));  // e.g. dead-lettered: unblocks the group
  picks = s.PickWaiting(10);
  ASSERT_EQ(picks.size(), 1u);
  EXPECT_EQ(picks[0].offset, 11);
  EXPECT_EQ(picks[0].attempt, 1);
}

TEST(FifoStateTest, NewRecordWaitsBehindAWaitingEntryOfItsGroup) {
  FifoState s;
  const uint64_t a = MessageGroupHash("a");
  ASSERT_TRUE(s.Offer(0, a));
  ASSERT_EQ(s.Release(0), 2);  // group not busy, but 0 waits
  EXPECT_FALSE(s.Offer(1, a));
  EXPECT_EQ(Offsets(s.PickWaiting(1)), std::vector<int64_t>{0});
}

TEST(FifoStateTest, PickWaitingRespectsMax) {
  FifoState s;
  for (int64_t o = 0; o < 4; ++o) ASSERT_TRUE(s.Offer(o, MessageGroupHash(std::to_string(o))));
  for (int64_t o = 0; o < 4; ++o) ASSERT_EQ(s.Release(o), 2);
  EXPECT_EQ(Offsets(s.PickWaiting(3)), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(Offsets(s.PickWaiting(3)), std::vector<int64_t>{3});
}

TEST(FifoStateTest, MessagesWithoutGroupAreNeverHeld) {
  FifoState s;
  EXPECT_TRUE(s.Offer(0, kNoMessageGroup));
  EXPECT_TRUE(s.Offer(1, kNoMessageGroup));
  EXPECT_EQ(s.busy_groups(), 0);
  ASSERT_EQ(s.Release(0), 2);
  EXPECT_TRUE(s.Offer(2, kNoMessageGroup));
  EXPECT_EQ(Offsets(s.PickWaiting(5)), std::vector<int64_t>{0});
  s.Clear();
  EXPECT_EQ(s.Low(7), 7);
}

TEST(FifoStateTest, HeldRecordsWaitInOrderEvenForAFreeGroup) {
  FifoState s;
  const uint64_t a = MessageGroupHash("a"), b = MessageGroupHash("b");
  ASSERT_TRUE(s.Offer(0, a));
  s.Hold(1, b);  // b is free: ready at once
  s.Hold(2, a);  // behind 0
  s.Hold(3, b);  // behind 1
  s.Hold(4, kNoMessageGroup);
  EXPECT_EQ(s.waiting(), 4);
  EXPECT_EQ(s.ready(), 2);
  EXPECT_EQ(Offsets(s.PickWaiting(10)), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(s.ready(), 0);
  EXPECT_TRUE(s.Done(0));
  EXPECT_EQ(s.ready(), 1);
  EXPECT_EQ(s.Release(1), 2);  // comes back before 3
  EXPECT_EQ(Offsets(s.PickWaiting(10)), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(s.Done(1));
  EXPECT_EQ(Offsets(s.PickWaiting(10)), std::vector<int64_t>{3});
  EXPECT_EQ(s.Low(5), 2);
}

// Random sequences of reads (some held), picks, acks, expiries and
// dead-letters over a few groups. Invariants: never two in flight per group;
// each group's messages are handed out for the first time in offset order
// and each is (re)delivered only while every lower offset of its group is
// done; Low() is at most every offset not done; ready() counts the free
// groups with a message waiting, and PickWaiting hands those out.
TEST(FifoStateTest, RandomSequencesKeepOrderAndOneInFlightPerGroup) {
  std::mt19937 rng(20261203);
  for (int round = 0; round < 20; ++round) {
    FifoState s;
    std::map<int64_t, uint64_t> group_of;
    std::set<int64_t> done, in_flight;
    std::map<uint64_t, int64_t> flying;  // group -> offset in flight
    int64_t next = 0;
    auto hand_out = [&](int64_t offset) {
      const uint64_t g = group_of[offset];
      ASSERT_EQ(flying.count(g), 0u) << "two in flight for a group at offset " << offset;
      for (const auto& [o, og] : group_of) {
        if (o < offset && og == g) {
          ASSERT_TRUE(done.count(o)) << o << " before " << offset;
        }
      }
      flying[g] = offset;
      in_flight.insert(offset);
    };
    for (int step = 0; step < 500; ++step) {
      const int action = static_cast<int>(rng() % 6);
      if (action == 0) {
        const uint64_t g = MessageGroupHash(std::to_string(rng() % 5));
        group_of[next] = g;
        if (s.Offer(next, g)) hand_out(next);
        ++next;
      } else if (action == 5) {
        group_of[next] = MessageGroupHash(std::to_string(rng() % 5));
        s.Hold(next, group_of[next]);
        ++next;
      } else if (action == 1) {
        const int max = static_cast<int>(rng() % 4) + 1;
        const int64_t ready = s.ready();
        const auto picks = s.PickWaiting(max);
        ASSERT_EQ(static_cast<int64_t>(picks.size()), std::min<int64_t>(ready, max));
        for (const auto& p : picks) hand_out(p.offset);
      } else if (!in_flight.empty()) {
        auto it = in_flight.begin();
        std::advance(it, rng() % in_flight.size());
        const int64_t o = *it;
        in_flight.erase(it);
        flying.erase(group_of[o]);
        if (action == 4) {
          ASSERT_GE(s.Release(o), 2);
        } else {
          ASSERT_TRUE(s.Done(o));
          done.insert(o);
        }
      }
      for (int64_t o = 0; o < next; ++o) {
        if (!done.count(o)) {
          ASSERT_LE(s.Low(next), o);
          break;
        }
      }
      ASSERT_EQ(s.in_flight(), static_cast<int64_t>(in_flight.size()));
      // Ready: one per free group with a message neither done nor in flight.
      std::set<uint64_t> eligible;
      for (const auto& [o, g] : group_of) {
        if (!done.count(o) && !in_flight.count(o) && !flying.count(g)) eligible.insert(g);
      }
      ASSERT_EQ(s.ready(), static_cast<int64_t>(eligible.size())) << "step " << step;
    }
  }
}

}  // namespace
}  // namespace apogee::broker
