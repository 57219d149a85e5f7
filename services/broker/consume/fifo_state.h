// Orderly (FIFO) delivery decisions for one cursor (consumer group, topic,
// queue): which scanned offsets may be handed out so that each message group
// has at most one message in flight, handed out in offset order. Store-free
// and clock-free: PopEngine feeds it records, acks and expiries and applies
// the answers. See docs/design/message-types.md §4.2.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/string_view.h"

namespace apogee::broker {

// Stable 64-bit hash of a message group (FNV-1a): the same on every broker
// version and process, so producers' queue choice and the consumer side
// agree. Never 0: kNoMessageGroup marks a message without a group.
uint64_t MessageGroupHash(absl::string_view message_group);
inline constexpr uint64_t kNoMessageGroup = 0;

// Not thread-safe: guarded by its cursor's mutex.
class FifoState {
 public:
  struct Pick {
    int64_t offset = 0;
    int attempt = 1;  // delivery attempt of this hand-out (1 = first)
  };

  // Step 1 of a pop: waiting entries (expired, nacked, or held back behind a
  // busy group) to hand out now, lowest offset first, at most `max`. Only
  // the lowest waiting entry of a group is eligible, and only when the group
  // has nothing in flight. Picks become in flight. Costs O(picks * log n),
  // not a walk of every waiting entry.
  std::vector<Pick> PickWaiting(int max);

  // Step 2 of a pop: a record newly read at `offset` (above every offset seen
  // so far). True: hand it out now (in flight, attempt 1). False: it waits
  // behind an earlier message of its group. A message without a group
  // (kNoMessageGroup) is never held back and never blocks others.
  bool Offer(int64_t offset, uint64_t group);

  // Like Offer, but the record always waits (attempt 1), even when its group
  // is free: read ahead past a full pop, handed out by a later PickWaiting.
  void Hold(int64_t offset, uint64_t group);

  // The delivery at `offset` is done (acked or dead-lettered): its group may
  // hand out its next message. False if `offset` was not in flight.
  bool Done(int64_t offset);

  // The delivery at `offset` failed (invisible time ended or nacked): it
  // waits again, first of its group, with the attempt it will be delivered
  // with next. Returns that attempt, or 0 if `offset` was not in flight.
  int Release(int64_t offset);

  // The attempt of the in-flight delivery at `offset` (0: not in flight).
  int Attempt(int64_t offset) const;

  // Lowest offset not done (in flight or waiting), or `next_offset` when
  // there is none: what the cursor may commit.
  int64_t Low(int64_t next_offset) const;

  void Clear();

  int64_t waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t busy_groups() const { return static_cast<int64_t>(busy_.size()); }
  // Message groups with at least one waiting entry.
  int64_t blocked_groups() const { return static_cast<int64_t>(waiting_per_group_.size()); }
  int64_t in_flight() const { return static_cast<int64_t>(in_flight_.size()); }
  // Waiting entries PickWaiting would hand out now.
  int64_t ready() const { return static_cast<int64_t>(ready_.size()); }

 private:
  struct Entry {
    uint64_t group = kNoMessageGroup;
    int attempt = 1;
  };
  void AddWaiting(int64_t offset, Entry entry);
  // Keeps `ready_` holding the lowest waiting offset of `group` exactly when
  // the group is not busy. Call around every change of the group's state.
  void Unready(uint64_t group);
  void Ready(uint64_t group);

  std::map<int64_t, Entry> in_flight_;
  std::map<int64_t, Entry> waiting_;
  // Groups with a message in flight.
  std::map<uint64_t, int64_t> busy_;
  // Waiting offsets per group (lowest first), so Offer need not walk `waiting_`.
  std::map<uint64_t, std::set<int64_t>> waiting_per_group_;
  // What PickWaiting hands out next: the lowest waiting offset of each group
  // not busy, and every waiting offset without a group.
  std::set<int64_t> ready_;
};

}  // namespace apogee::broker
