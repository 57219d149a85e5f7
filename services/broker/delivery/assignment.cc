#include "services/broker/delivery/assignment.h"

#include <algorithm>

namespace apogee::broker {

std::vector<int32_t> AllocateAveragely(int queue_count, int members, int index) {
  std::vector<int32_t> out;
  if (queue_count <= 0 || members <= 0 || index < 0 || index >= members) return out;
  const int base = queue_count / members;
  const int extra = queue_count % members;
  // Members before `index` took base queues each, plus one each for the
  // first `extra` of them.
  const int first = index * base + std::min(index, extra);
  const int count = base + (index < extra ? 1 : 0);
  for (int q = first; q < first + count; ++q) out.push_back(q);
  return out;
}

uint64_t Membership::Join(const std::string& group, const std::string& topic,
                          const std::string& client_id, int queue_count, bool broadcasting,
                          Listener listener) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  const GroupKey key(group, topic);
  Group& g = groups_[key];
  // The topic may have grown since the first member joined.
  g.queue_count = queue_count;
  const std::pair<std::string, uint64_t> member_key(client_id, id);
  g.members[member_key] = Member{client_id, broadcasting, std::move(listener), {}};
  index_[id] = {key, member_key};
  Rebalance(g);
  return id;
}

void Membership::Leave(uint64_t member) {
  absl::MutexLock lock(&mu_);
  auto it = index_.find(member);
  if (it == index_.end()) return;
  auto group = groups_.find(it->second.first);
  group->second.members.erase(it->second.second);
  index_.erase(it);
  if (group->second.members.empty()) {
    groups_.erase(group);
    return;
  }
  Rebalance(group->second);
}

void Membership::Rebalance(Group& group) {
  int clustering = 0;
  for (const auto& [key, m] : group.members) clustering += m.broadcasting ? 0 : 1;
  std::vector<int32_t> all;
  for (int32_t q = 0; q < group.queue_count; ++q) all.push_back(q);
  const int members = static_cast<int>(group.members.size());
  int index = 0;
  for (auto& [key, m] : group.members) {
    m.queues = m.broadcasting ? all : AllocateAveragely(group.queue_count, clustering, index++);
    m.listener(m.queues, members);
  }
}

std::vector<int32_t> Membership::QueuesOf(uint64_t member) const {
  absl::MutexLock lock(&mu_);
  auto it = index_.find(member);
  if (it == index_.end()) return {};
  return groups_.at(it->second.first).members.at(it->second.second).queues;
}

int Membership::Members(const std::string& group, const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(GroupKey(group, topic));
  return it == groups_.end() ? 0 : static_cast<int>(it->second.members.size());
}

}  // namespace apogee::broker
