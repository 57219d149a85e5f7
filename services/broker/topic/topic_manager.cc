#include "services/broker/topic/topic_manager.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
constexpr int kMaxQueues = 1024;

}  // namespace

std::string RetryTopic(const std::string& group) { return absl::StrCat("%RETRY%", group); }
std::string DlqTopic(const std::string& group) { return absl::StrCat("%DLQ%", group); }
bool IsRetryTopic(const std::string& topic) { return absl::StartsWith(topic, "%RETRY%"); }
bool IsDlqTopic(const std::string& topic) { return absl::StartsWith(topic, "%DLQ%"); }

absl::Status ValidateTopicConfig(const TopicConfig& c) {
  APOGEE_RETURN_IF_ERROR(ValidateTopicName("topic", c.name()));
  for (auto [field, value] : {std::pair<const char*, int>{"read_queues", c.read_queues()},
                              {"write_queues", c.write_queues()}}) {
    if (value < 1 || value > kMaxQueues) {
      return absl::InvalidArgumentError(absl::StrCat(field, " of topic \"", c.name(), "\" is ",
                                                     value, " (allowed: 1..", kMaxQueues, ")"));
    }
  }
  if (!nsv1::TopicPermission_IsValid(c.permission())) {
    return absl::InvalidArgumentError(
        absl::StrCat("permission of topic \"", c.name(), "\" is unknown value ", c.permission()));
  }
  if (!nsv1::TopicMessageType_IsValid(c.message_type())) {
    return absl::InvalidArgumentError(absl::StrCat("message_type of topic \"", c.name(),
                                                   "\" is unknown value ", c.message_type()));
  }
  return absl::OkStatus();
}

absl::Status TopicManager::Load() { return Reload(); }  // empty at start-up: the same

absl::Status TopicManager::Reload() {
  APOGEE_ASSIGN_OR_RETURN(std::vector<store::v1::Topic> stored, store_->ListTopics());
  std::map<std::string, TopicConfig> topics;
  std::map<std::string, int64_t> incarnation_start;
  for (const store::v1::Topic& topic : stored) {
    if (!topics[topic.name()].ParseFromString(topic.attributes())) {
      return absl::DataLossError(
          absl::StrCat("stored topic \"", topic.name(), "\" has attributes that do not parse"));
    }
    incarnation_start[topic.name()] = topic.incarnation_start();
  }
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = incarnation_start != incarnation_start_ || topics.size() != topics_.size();
    for (auto it = topics.begin(); !changed && it != topics.end(); ++it) {
      auto held = topics_.find(it->first);
      changed = held == topics_.end() ||
                held->second.SerializeAsString() != it->second.SerializeAsString();
    }
    if (changed) {
      topics_ = std::move(topics);
      incarnation_start_ = std::move(incarnation_start);
    }
  }
  if (changed && listener_) listener_();
  return absl::OkStatus();
}

absl::Status TopicManager::Persist(const TopicConfig& config) {
  // The store accepts queues 0..queue_count-1: the larger of the counts.
  store::v1::Topic stored;
  stored.set_name(config.name());
  stored.set_queue_count(std::max(config.read_queues(), config.write_queues()));
  stored.set_attributes(config.SerializeAsString());
  APOGEE_RETURN_IF_ERROR(store_->PutTopic(stored));
  bool created;
  {
    absl::MutexLock lock(&mu_);
    created = topics_.count(config.name()) == 0;
  }
  int64_t incarnation_start = 0;
  if (created) {  // a name deleted before starts a new incarnation: ask where
    APOGEE_ASSIGN_OR_RETURN(store::v1::Topic created_topic, store_->GetTopic(config.name()));
    incarnation_start = created_topic.incarnation_start();
  }
  {
    absl::MutexLock lock(&mu_);
    topics_[config.name()] = config;
    if (created) incarnation_start_[config.name()] = incarnation_start;
  }
  if (listener_) listener_();
  return absl::OkStatus();
}

absl::Status TopicManager::Upsert(const TopicConfig& input) {
  TopicConfig config = input;
  if (config.permission() == nsv1::TOPIC_PERMISSION_UNSPECIFIED) {
    config.set_permission(nsv1::TOPIC_PERMISSION_READ_WRITE);
  }
  APOGEE_RETURN_IF_ERROR(ValidateTopicConfig(config));
  absl::MutexLock write(&write_mu_);
  return Persist(config);
}

absl::Status TopicManager::Delete(const std::string& name) {
  absl::MutexLock write(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (topics_.count(name) == 0) {
      return absl::NotFoundError(absl::StrCat("topic \"", name, "\" does not exist"));
    }
  }
  APOGEE_RETURN_IF_ERROR(store_->DeleteTopic(name));
  {
    absl::MutexLock lock(&mu_);
    topics_.erase(name);
    incarnation_start_.erase(name);
  }
  if (listener_) listener_();
  return absl::OkStatus();
}

absl::StatusOr<TopicConfig> TopicManager::Get(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat("topic \"", name, "\" does not exist on this broker"));
  }
  return it->second;
}

absl::StatusOr<TopicConfig> TopicManager::GetOrAutoCreate(const std::string& name,
                                                          nsv1::TopicMessageType type) {
  auto existing = Get(name);
  if (existing.ok() || !options_.auto_create) return existing;
  APOGEE_RETURN_IF_ERROR(ValidateClientTopic("topic", name));  // never a system topic
  return GetOrCreate(name, options_.default_queues, type);
}

absl::StatusOr<TopicConfig> TopicManager::GetOrCreateSystem(const std::string& name) {
  return GetOrCreate(name, 1);
}

absl::StatusOr<TopicConfig> TopicManager::GetOrCreate(const std::string& name, int queues,
                                                      nsv1::TopicMessageType type) {
  auto existing = Get(name);
  if (existing.ok()) return existing;
  absl::MutexLock write(&write_mu_);
  auto again = Get(name);  // another caller may have created it meanwhile
  if (again.ok()) return again;
  TopicConfig config;
  config.set_name(name);
  config.set_read_queues(queues);
  config.set_write_queues(queues);
  config.set_permission(nsv1::TOPIC_PERMISSION_READ_WRITE);
  config.set_message_type(type);
  APOGEE_RETURN_IF_ERROR(Persist(config));
  return config;
}

bool TopicManager::IsFromDeletedTopic(const std::string& topic, int64_t commit_offset) const {
  absl::MutexLock lock(&mu_);
  if (topics_.count(topic) == 0) return true;
  auto it = incarnation_start_.find(topic);
  return it != incarnation_start_.end() && commit_offset < it->second;
}

std::vector<TopicConfig> TopicManager::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<TopicConfig> out;
  for (const auto& [name, config] : topics_) out.push_back(config);
  return out;
}

}  // namespace apogee::broker
