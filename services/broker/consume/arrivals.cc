#include "services/broker/consume/arrivals.h"

#include <iterator>
#include <utility>

namespace apogee::broker {

uint64_t Arrivals::Watch(const std::vector<std::string>& topics, absl::Time deadline,
                         std::function<void(bool)> wake) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  watchers_[id] = Watcher{topics, deadline, std::move(wake)};
  for (const std::string& topic : topics) by_topic_.emplace(topic, id);
  return id;
}

void Arrivals::Remove(uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return;
  for (const std::string& topic : it->second.topics) {
    auto range = by_topic_.equal_range(topic);
    for (auto t = range.first; t != range.second; ++t) {
      if (t->second == id) {
        by_topic_.erase(t);
        break;
      }
    }
  }
  watchers_.erase(it);
}

bool Arrivals::Unwatch(uint64_t id) {
  absl::MutexLock lock(&mu_);
  if (watchers_.count(id) == 0) return false;
  Remove(id);
  return true;
}

uint64_t Arrivals::Listen(const std::vector<std::string>& topics, Listener listener) {
  auto shared = std::make_shared<Listener>(std::move(listener));
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  for (const std::string& topic : topics) listeners_.emplace(topic, std::make_pair(id, shared));
  return id;
}

void Arrivals::Unlisten(uint64_t id) {
  absl::MutexLock lock(&mu_);
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    it = it->second.first == id ? listeners_.erase(it) : std::next(it);
  }
}

void Arrivals::Notify(const std::string& topic, int32_t queue) {
  std::vector<std::function<void(bool)>> wakes;
  std::vector<std::shared_ptr<Listener>> listeners;
  {
    absl::MutexLock lock(&mu_);
    auto heard = listeners_.equal_range(topic);
    for (auto l = heard.first; l != heard.second; ++l) listeners.push_back(l->second.second);
    std::vector<uint64_t> ids;
    auto range = by_topic_.equal_range(topic);
    for (auto t = range.first; t != range.second; ++t) ids.push_back(t->second);
    for (uint64_t id : ids) {
      wakes.push_back(std::move(watchers_[id].wake));
      Remove(id);
    }
  }
  for (auto& wake : wakes) wake(true);
  for (auto& listener : listeners) (*listener)(topic, queue);
}

void Arrivals::ExpireDue(absl::Time now) {
  std::vector<std::function<void(bool)>> wakes;
  {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> ids;
    for (const auto& [id, watcher] : watchers_) {
      if (watcher.deadline <= now) ids.push_back(id);
    }
    for (uint64_t id : ids) {
      wakes.push_back(std::move(watchers_[id].wake));
      Remove(id);
    }
  }
  for (auto& wake : wakes) wake(false);
}

size_t Arrivals::Parked() const {
  absl::MutexLock lock(&mu_);
  return watchers_.size();
}

}  // namespace apogee::broker
