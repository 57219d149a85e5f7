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

void FifoState::Unready(uint64_t group) {
  auto it = waiting_per_group_.find(group);
  if (it != waiting_per_group_.end()) ready_.erase(*it->second.begin());
}

void FifoState::Ready(uint64_t group) {
  auto it = waiting_per_group_.find(group);
  if (it != waiting_per_group_.end() && busy_.count(group) == 0) {
    ready_.insert(*it->second.begin());
  }
}

void FifoState::AddWaiting(int64_t offset, Entry entry) {
  waiting_[offset] = entry;
  if (entry.group == kNoMessageGroup) {
    ready_.insert(offset);
    return;
  }
  Unready(entry.group);
  waiting_per_group_[entry.group].insert(offset);
  Ready(entry.group);
}

std::vector<FifoState::Pick> FifoState::PickWaiting(int max) {
  std::vector<Pick> picks;
  while (!ready_.empty() && static_cast<int>(picks.size()) < max) {
    const int64_t offset = *ready_.begin();
    ready_.erase(ready_.begin());
    auto it = waiting_.find(offset);
    const Entry entry = it->second;
    waiting_.erase(it);
    if (entry.group != kNoMessageGroup) {
      // `offset` was the group's lowest; the group is busy now, so its next
      // waiting offset does not become ready.
      auto group = waiting_per_group_.find(entry.group);
      group->second.erase(group->second.begin());
      if (group->second.empty()) waiting_per_group_.erase(group);
      busy_[entry.group] = offset;
    }
    picks.push_back(Pick{offset, entry.attempt});
    in_flight_[offset] = entry;
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

void FifoState::Hold(int64_t offset, uint64_t group) { AddWaiting(offset, Entry{group, 1}); }

bool FifoState::Done(int64_t offset) {
  auto it = in_flight_.find(offset);
  if (it == in_flight_.end()) return false;
  const uint64_t group = it->second.group;
  in_flight_.erase(it);
  if (group != kNoMessageGroup) {
    busy_.erase(group);
    Ready(group);
  }
  return true;
}

int FifoState::Release(int64_t offset) {
  auto it = in_flight_.find(offset);
  if (it == in_flight_.end()) return 0;
  Entry entry = it->second;
  in_flight_.erase(it);
  if (entry.group != kNoMessageGroup) busy_.erase(entry.group);
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
  ready_.clear();
}

}  // namespace apogee::broker
