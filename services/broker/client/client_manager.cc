#include "services/broker/client/client_manager.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace apogee::broker {

void ClientManager::OnSettings(const std::string& client_id, const v2::Settings& settings) {
  absl::MutexLock lock(&mu_);
  Client& c = clients_[client_id];
  c.type = settings.client_type();
  if (settings.has_subscription()) c.group = settings.subscription().group().name();
  c.last_seen = clock_->Now();
}

void ClientManager::OnHeartbeat(const std::string& client_id, v2::ClientType type,
                                const std::string& group) {
  absl::MutexLock lock(&mu_);
  Client& c = clients_[client_id];
  if (type != v2::CLIENT_TYPE_UNSPECIFIED) c.type = type;
  if (!group.empty()) c.group = group;
  c.last_seen = clock_->Now();
}

void ClientManager::Remove(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  clients_.erase(client_id);
}

int ClientManager::ExpireIdle() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  std::vector<std::string> idle;
  for (const auto& [id, c] : clients_) {
    if (now - c.last_seen > idle_expiry_) idle.push_back(id);
  }
  for (const std::string& id : idle) clients_.erase(id);
  return static_cast<int>(idle.size());
}

ClientCounts ClientManager::Counts() const {
  absl::MutexLock lock(&mu_);
  ClientCounts counts;
  for (const auto& [id, c] : clients_) {
    if (c.type == v2::PRODUCER) {
      ++counts.producers;
    } else if (c.type != v2::CLIENT_TYPE_UNSPECIFIED) {
      ++counts.consumers;
    }
  }
  return counts;
}

std::vector<std::string> ClientManager::ClientsOfGroup(const std::string& group) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [id, c] : clients_) {
    if (c.group == group) ids.push_back(id);
  }
  return ids;
}

void ClientManager::SetPublishing(const std::string& client_id, std::vector<std::string> topics) {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client_id);
  if (it != clients_.end()) it->second.publishing = std::move(topics);
}

std::vector<std::string> ClientManager::ProducersOf(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<uint64_t, std::string>> found;
  for (const auto& [id, c] : clients_) {
    if (c.type != v2::PRODUCER) continue;
    if (std::find(c.publishing.begin(), c.publishing.end(), topic) == c.publishing.end()) continue;
    found.emplace_back(c.last_asked, id);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [asked, id] : found) {
    clients_[id].last_asked = ++asks_;
    out.push_back(std::move(id));
  }
  return out;
}

}  // namespace apogee::broker
