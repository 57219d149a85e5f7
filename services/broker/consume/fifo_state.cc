#include "services/broker/consume/fifo_state.h"

#include <algorithm>
#include <set>

namespace apogee::broker {

uint64_t MessageGroupHash(absl::string_view message_group) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
  for (unsigned char c : message_group) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash == kNoMessageGroup ? 1 : hash;
}

void FifoState::AddWaiting(int64_t offset, Entry entry) {
  if (entry.group != kNoMessageGroup) ++waiting_per_group_[entry.group];
  waiting_[offset] = entry;
}

void FifoState::EraseWaiting(std::map<int64_t, Entry>::iterator it) {
  if (it->second.group != kNoMessageGroup) {
    auto count = waiting_per_group_.find(it->second.group);
    if (--count->second == 0) waiting_per_group_.erase(count);
  }
  waiting_.erase(it);
}

std::vector<FifoState::Pick> FifoState::PickWaiting(int max) {
  std::vector<Pick> picks;
  std::set<uint64_t> met;  // groups whose lowest waiting entry was seen
  for (auto it = waiting_.begin(); it != waiting_.end() && static_cast<int>(picks.size()) < max;) {
    const Entry entry = it->second;
    if (entry.group != kNoMessageGroup) {
      const bool first_of_group = met.insert(entry.group).second;
      if (!first_of_group || busy_.count(entry.group) > 0) {
        ++it;
        continue;
      }
      busy_[entry.group] = it->first;
    }
    picks.push_back(Pick{it->first, entry.attempt});
    in_flight_[it->first] = entry;
    EraseWaiting(it++);
  }
  return picks;
}

bool FifoState::Offer(int64_t offset, uint64_t group) {
  if (group != kNoMessageGroup && (busy_.count(group) > 0 || waiting_per_group_.count(group) > 0)) {
    AddWaiting(offset, Entry{group, 1});
    return false;
  }
  if (group != kNoMessageGroup) busy_[group] = offset;
  in_flight_[offset] = Entry{group, 1};
  return true;
}

bool FifoState::Done(int64_t offset) {
  auto it = in_flight_.find(offset);
  if (it == in_flight_.end()) return false;
  if (it->second.group != kNoMessageGroup) busy_.erase(it->second.group);
  in_flight_.erase(it);
  return true;
}

int FifoState::Release(int64_t offset) {
  auto it = in_flight_.find(offset);
  if (it == in_flight_.end()) return 0;
  Entry entry = it->second;
  if (entry.group != kNoMessageGroup) busy_.erase(entry.group);
  in_flight_.erase(it);
  ++entry.attempt;
  AddWaiting(offset, entry);
  return entry.attempt;
}

int FifoState::Attempt(int64_t offset) const {
  auto it = in_flight_.find(offset);
  return it == in_flight_.end() ? 0 : it->second.attempt;
}

int64_t FifoState::Low(int64_t next_offset) const {
  int64_t low = next_offset;
  if (!in_flight_.empty()) low = std::min(low, in_flight_.begin()->first);
  if (!waiting_.empty()) low = std::min(low, waiting_.begin()->first);
  return low;
}

void FifoState::Clear() {
  in_flight_.clear();
  waiting_.clear();
  busy_.clear();
  waiting_per_group_.clear();
}

}  // namespace apogee::broker
