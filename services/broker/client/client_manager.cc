#include "services/broker/client/client_manager.h"

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

}  // namespace apogee::broker
