// Orderly (FIFO) delivery decisions for one cursor (consumer group, topic,
// queue): which scanned offsets may be handed out so that each message group
// has at most one message in flight, handed out in offset order. Store-free
// and clock-free: PopEngine feeds it records, acks and expiries and applies
// the answers. See docs/design/message-types.md §4.2.
#pragma once

#include <cstdint>
#include <map>
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
  // has nothing in flight. Picks become in flight.
  std::vector<Pick> PickWaiting(int max);

  // Step 2 of a pop: a record newly read at `offset` (above every offset seen
  // so far). True: hand it out now (in flight, attempt 1). False: it waits
  // behind an earlier message of its group. A message without a group
  // (kNoMessageGroup) is never held back and never blocks others.
  bool Offer(int64_t offset, uint64_t group);

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

 private:
  struct Entry {
    uint64_t group = kNoMessageGroup;
    int attempt = 1;
  };
  void AddWaiting(int64_t offset, Entry entry);
  void EraseWaiting(std::map<int64_t, Entry>::iterator it);

  std::map<int64_t, Entry> in_flight_;
  std::map<int64_t, Entry> waiting_;
  // Groups with a message in flight.
  std::map<uint64_t, int64_t> busy_;
  // Waiting entries per group, so Offer need not walk `waiting_`.
  std::map<uint64_t, int> waiting_per_group_;
};

}  // namespace apogee::broker
