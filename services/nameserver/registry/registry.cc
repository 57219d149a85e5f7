#include "services/nameserver/registry/registry.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"

namespace apogee::nameserver {
namespace {

constexpr absl::Duration kMinExpiry = absl::Seconds(1);
constexpr absl::Duration kMaxExpiry = absl::Hours(1);

absl::Status ValidateTopicConfig(const std::string& field, const v1::TopicConfig& topic) {
  APOGEE_RETURN_IF_ERROR(ValidateTopicName(absl::StrCat(field, ".name"), topic.name()));
  for (auto [name, value] : {std::pair<const char*, int>{"read_queues", topic.read_queues()},
                             {"write_queues", topic.write_queues()}}) {
    if (value < 0 || value > kMaxQueuesPerTopic) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".", name, " of topic \"", topic.name(),
                                                     "\" is ", value, " (allowed: 0..",
                                                     kMaxQueuesPerTopic, ")"));
    }
  }
  if (topic.read_queues() == 0 && topic.write_queues() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " topic \"", topic.name(), "\" has no queues (read_queues and write_queues are 0)"));
  }
  if (!v1::TopicPermission_IsValid(topic.permission())) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".permission of topic \"", topic.name(),
                                                   "\" is unknown value ", topic.permission()));
  }
  if (!v1::TopicMessageType_IsValid(topic.message_type())) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".message_type of topic \"", topic.name(),
                                                   "\" is unknown value ", topic.message_type()));
  }
  return absl::OkStatus();
}

}  // namespace

const char* RemovalReasonName(RemovalReason reason) {
  switch (reason) {
    case RemovalReason::kExpired:
      return "expired";
    case RemovalReason::kSessionClosed:
      return "session_closed";
    case RemovalReason::kUnregistered:
      return "unregistered";
  }
  return "unknown";
}

absl::Status ValidateRegistration(const v1::BrokerRegistration& r) {
  APOGEE_RETURN_IF_ERROR(ValidateNodeName("registration.cluster_name", r.cluster_name()));
  APOGEE_RETURN_IF_ERROR(ValidateNodeName("registration.broker_name", r.broker_name()));
  if (r.broker_id() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("registration.broker_id is ", r.broker_id(),
                                                   " (must be >= 0; 0 is the master)"));
  }
  APOGEE_RETURN_IF_ERROR(
      ParseHostPort("registration.client_endpoint", r.client_endpoint()).status());
  if (!r.ha_endpoint().empty()) {
    APOGEE_RETURN_IF_ERROR(ParseHostPort("registration.ha_endpoint", r.ha_endpoint()).status());
  }
  if (r.has_expiry()) {
    absl::Duration expiry = FromProtoDuration(r.expiry());
    if (expiry < kMinExpiry || expiry > kMaxExpiry) {
      return absl::InvalidArgumentError(absl::StrCat(
          "registration.expiry is ", absl::FormatDuration(expiry), " (allowed: ",
          absl::FormatDuration(kMinExpiry), "..", absl::FormatDuration(kMaxExpiry), ")"));
    }
  }
  if (r.auto_create_queues() < 0 || r.auto_create_queues() > kMaxQueuesPerTopic) {
    return absl::InvalidArgumentError(absl::StrCat("registration.auto_create_queues is ",
                                                   r.auto_create_queues(), " (allowed: 0..",
                                                   kMaxQueuesPerTopic, ")"));
  }
  if (!r.full() && r.topics_size() > 0) {
    return absl::InvalidArgumentError(
        "registration carries topics but full is false (set full=true to replace the topic set)");
  }
  if (r.topics_size() > kMaxTopicsPerBroker) {
    return absl::InvalidArgumentError(absl::StrCat("registration.topics has ", r.topics_size(),
                                                   " entries (max ", kMaxTopicsPerBroker, ")"));
  }
  std::set<std::string> seen;
  for (int i = 0; i < r.topics_size(); ++i) {
    APOGEE_RETURN_IF_ERROR(
        ValidateTopicConfig(absl::StrCat("registration.topics[", i, "]"), r.topics(i)));
    if (!seen.insert(r.topics(i).name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("registration.topics[", i, "] repeats topic \"", r.topics(i).name(), "\""));
    }
  }
  return absl::OkStatus();
}

RouteIds AssignRouteIds(const std::vector<InstanceRole>& instances) {
  RouteIds out;
  const InstanceRole* writer = nullptr;
  for (const InstanceRole& i : instances) {
    if (!i.writer) continue;
    if (writer == nullptr || i.epoch > writer->epoch ||
        (i.epoch == writer->epoch && i.configured_id < writer->configured_id)) {
      writer = &i;
    }
  }
  if (writer == nullptr) {
    for (const InstanceRole& i : instances) {
      if (i.configured_id == 0 && i.epoch == 0) writer = &i;
    }
  }
  int64_t max_id = 0;
  for (const InstanceRole& i : instances) max_id = std::max(max_id, i.configured_id);
  if (writer != nullptr) {
    out.has_writer = true;
    out.writer = writer->configured_id;
  }
  for (const InstanceRole& i : instances) {
    int64_t id = i.configured_id;
    if (writer == &i) {
      id = 0;
    } else if (i.configured_id == 0) {
      id = writer != nullptr ? writer->configured_id : max_id + 1;
    }
    out.ids[i.configured_id] = id;
    if (i.writer && writer != &i) out.fenced.insert(i.configured_id);
  }
  return out;
}

Registry::Registry(const Clock* clock, absl::Duration default_expiry)
    : clock_(clock), default_expiry_(default_expiry) {}

absl::StatusOr<RegisterResult> Registry::Register(const v1::BrokerRegistration& r,
                                                  uint64_t session_id) {
  APOGEE_RETURN_IF_ERROR(ValidateRegistration(r));
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);

  auto group_it = groups_.find(r.broker_name());
  if (group_it != groups_.end()) {
    const Group& group = group_it->second;
    if (group.cluster_name != r.cluster_name()) {
      return absl::FailedPreconditionError(
          absl::StrCat("broker group \"", r.broker_name(), "\" belongs to cluster \"",
                       group.cluster_name, "\"; registration says cluster \"", r.cluster_name(),
                       "\" (broker names are unique across clusters)"));
    }
    auto existing = group.instances.find(r.broker_id());
    if (r.broker_id() == 0 && existing != group.instances.end() &&
        existing->second.client_endpoint != r.client_endpoint()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "broker group \"", r.broker_name(), "\" already has a live master (broker_id 0) at \"",
          existing->second.client_endpoint, "\"; \"", r.client_endpoint(),
          "\" cannot also be master until that one unregisters or expires"));
    }
  }

  RegisterResult result;
  Group* group = nullptr;
  Instance* instance = nullptr;
  if (group_it != groups_.end()) {
    group = &group_it->second;
    auto it = group->instances.find(r.broker_id());
    if (it != group->instances.end()) instance = &it->second;
  }

  if (!r.full() && (instance == nullptr || instance->data_version != r.data_version())) {
    // A refresh we cannot apply: keep a known instance alive, ask for topics.
    if (instance != nullptr) instance->last_update = now;
    result.full_registration_required = true;
    result.data_version = instance != nullptr ? instance->data_version : 0;
    return result;
  }

  if (group == nullptr) {
    group = &groups_[r.broker_name()];
    group->cluster_name = r.cluster_name();
  }
  const std::set<int64_t> fenced_before = IdsOf(*group).fenced;
  if (instance == nullptr) instance = &group->instances[r.broker_id()];
  const bool role_changed = instance->epoch != r.epoch() || instance->writer != r.writer();
  instance->broker_id = r.broker_id();
  instance->epoch = r.epoch();
  instance->writer = r.writer();
  instance->auto_create_queues = r.auto_create_queues();
  instance->client_endpoint = r.client_endpoint();
  instance->ha_endpoint = r.ha_endpoint();
  instance->last_update = now;
  instance->expiry = r.has_expiry() ? FromProtoDuration(r.expiry()) : default_expiry_;
  instance->session_id = session_id;
  if (r.full()) {
    instance->data_version = r.data_version();
    instance->topics.clear();
    for (const v1::TopicConfig& topic : r.topics()) instance->topics[topic.name()] = topic;
    RebuildTopicIndex();
  } else if (role_changed) {
    RebuildTopicIndex();  // the writer, whose topics the group serves, moved
  }
  LogNewlyFenced(r.broker_name(), *group, fenced_before);
  result.data_version = instance->data_version;
  return result;
}

absl::Status Registry::Unregister(const std::string& cluster_name, const std::string& broker_name,
                                  int64_t broker_id) {
  absl::MutexLock lock(&mu_);
  auto group = groups_.find(broker_name);
  if (group == groups_.end() || group->second.cluster_name != cluster_name ||
      group->second.instances.count(broker_id) == 0) {
    return absl::NotFoundError(absl::StrCat("broker \"", broker_name, "\" id ", broker_id,
                                            " of cluster \"", cluster_name,
                                            "\" is not registered"));
  }
  RemoveInstance(group, broker_id);
  RebuildTopicIndex();
  return absl::OkStatus();
}

int Registry::EndSession(uint64_t session_id) {
  if (session_id == 0) return 0;
  absl::MutexLock lock(&mu_);
  int removed = 0;
  for (auto group = groups_.begin(); group != groups_.end();) {
    auto next = std::next(group);
    std::vector<int64_t> ids;
    for (const auto& [id, instance] : group->second.instances) {
      if (instance.session_id == session_id) ids.push_back(id);
    }
    for (int64_t id : ids) {
      RemoveInstance(group, id);
      ++removed;
    }
    group = next;
  }
  if (removed > 0) RebuildTopicIndex();
  return removed;
}

int Registry::ExpireStale() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  int removed = 0;
  for (auto group = groups_.begin(); group != groups_.end();) {
    auto next = std::next(group);
    std::vector<int64_t> ids;
    for (const auto& [id, instance] : group->second.instances) {
      if (now - instance.last_update > instance.expiry) ids.push_back(id);
    }
    for (int64_t id : ids) {
      RemoveInstance(group, id);
      ++removed;
    }
    group = next;
  }
  if (removed > 0) RebuildTopicIndex();
  return removed;
}

void Registry::RemoveInstance(std::map<std::string, Group>::iterator group, int64_t broker_id) {
  group->second.instances.erase(broker_id);
  if (group->second.instances.empty()) groups_.erase(group);
}

RouteIds Registry::IdsOf(const Group& group) {
  std::vector<InstanceRole> roles;
  for (const auto& [id, instance] : group.instances) {
    roles.push_back({id, instance.epoch, instance.writer});
  }
  return AssignRouteIds(roles);
}

const Registry::Instance* Registry::TopicSource(const Group& group) {
  if (group.instances.empty()) return nullptr;
  const RouteIds ids = IdsOf(group);
  if (ids.has_writer) return &group.instances.at(ids.writer);
  const Instance* lowest = nullptr;
  for (const auto& [id, instance] : group.instances) {
    if (lowest == nullptr || ids.ids.at(id) < ids.ids.at(lowest->broker_id)) lowest = &instance;
  }
  return lowest;
}

void Registry::LogNewlyFenced(const std::string& broker_name, const Group& group,
                              const std::set<int64_t>& fenced_before) const {
  const RouteIds ids = IdsOf(group);
  for (int64_t id : ids.fenced) {
    if (fenced_before.count(id) > 0) continue;
    const Instance& fenced = group.instances.at(id);
    const Instance& writer = group.instances.at(ids.writer);
    // Two brokers claim to write: routes list only the newer epoch's.
    std::fprintf(stderr,
                 "event=writer_fenced broker=%s broker_id=%lld epoch=%lld endpoint=%s "
                 "writer_id=%lld writer_epoch=%lld writer_endpoint=%s\n",
                 broker_name.c_str(), static_cast<long long>(id),
                 static_cast<long long>(fenced.epoch), fenced.client_endpoint.c_str(),
                 static_cast<long long>(ids.writer), static_cast<long long>(writer.epoch),
                 writer.client_endpoint.c_str());
  }
}

void Registry::RebuildTopicIndex() {
  topic_index_.clear();
  for (const auto& [broker_name, group] : groups_) {
    const Instance* source = TopicSource(group);
    if (source == nullptr) continue;
    for (const auto& [topic, config] : source->topics) topic_index_[topic].insert(broker_name);
  }
}

void Registry::FillGroup(const std::string& broker_name, const Group& group,
                         v1::BrokerGroup* out) const {
  out->set_cluster_name(group.cluster_name);
  out->set_broker_name(broker_name);
  const RouteIds ids = IdsOf(group);
  std::map<int64_t, const Instance*> by_route_id;
  for (const auto& [id, instance] : group.instances) by_route_id[ids.ids.at(id)] = &instance;
  for (const auto& [route_id, instance] : by_route_id) {
    v1::BrokerInstance* b = out->add_brokers();
    b->set_broker_id(route_id);
    b->set_client_endpoint(instance->client_endpoint);
    b->set_ha_endpoint(instance->ha_endpoint);
    *b->mutable_last_update_time() = ToProtoTimestamp(instance->last_update);
    b->set_configured_id(instance->broker_id);
    b->set_epoch(instance->epoch);
  }
}

absl::StatusOr<v1::GetRouteResponse> Registry::GetRoute(const std::string& topic,
                                                        bool or_auto_create) const {
  APOGEE_RETURN_IF_ERROR(ValidateTopicName("topic", topic));
  absl::ReaderMutexLock lock(&mu_);
  auto it = topic_index_.find(topic);
  if (it == topic_index_.end()) {
    // A system topic is never auto-created: clients may not use one.
    if (or_auto_create) APOGEE_RETURN_IF_ERROR(ValidateClientTopic("topic", topic));
    if (!or_auto_create) {
      return absl::NotFoundError(
          absl::StrCat("topic \"", topic, "\" is not served by any live broker"));
    }
    v1::GetRouteResponse route = AutoCreateRoute(topic);
    if (route.queues_size() > 0) return route;
    return absl::NotFoundError(absl::StrCat("topic \"", topic,
                                            "\" is not served by any live broker (and no live "
                                            "master creates topics on first use)"));
  }
  v1::GetRouteResponse route;
  route.set_topic(topic);
  for (const std::string& broker_name : it->second) {
    const Group& group = groups_.at(broker_name);
    const Instance* source = TopicSource(group);
    const v1::TopicConfig& config = source->topics.at(topic);
    v1::QueueData* queue = route.add_queues();
    queue->set_broker_name(broker_name);
    queue->set_read_queues(config.read_queues());
    queue->set_write_queues(config.write_queues());
    queue->set_permission(config.permission());
    queue->set_message_type(config.message_type());
    FillGroup(broker_name, group, route.add_broker_groups());
  }
  return route;
}

v1::GetRouteResponse Registry::AutoCreateRoute(const std::string& topic) const {
  v1::GetRouteResponse route;
  route.set_topic(topic);
  for (const auto& [broker_name, group] : groups_) {
    const RouteIds ids = IdsOf(group);
    // Only a writer creates topics: a group without one cannot take the send.
    if (!ids.has_writer) continue;
    const int32_t queues = group.instances.at(ids.writer).auto_create_queues;
    if (queues <= 0) continue;
    v1::QueueData* queue = route.add_queues();
    queue->set_broker_name(broker_name);
    queue->set_read_queues(queues);
    queue->set_write_queues(queues);
    queue->set_permission(v1::TOPIC_PERMISSION_READ_WRITE);
    FillGroup(broker_name, group, route.add_broker_groups());
  }
  return route;
}

v1::GetClusterInfoResponse Registry::GetClusterInfo() const {
  absl::ReaderMutexLock lock(&mu_);
  std::map<std::string, v1::Cluster> clusters;
  for (const auto& [broker_name, group] : groups_) {
    v1::Cluster& cluster = clusters[group.cluster_name];
    cluster.set_name(group.cluster_name);
    FillGroup(broker_name, group, cluster.add_broker_groups());
  }
  v1::GetClusterInfoResponse out;
  for (auto& [name, cluster] : clusters) *out.add_clusters() = std::move(cluster);
  return out;
}

std::vector<std::string> Registry::ListTopics(const std::string& cluster_name) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [topic, brokers] : topic_index_) {
    bool in_cluster = cluster_name.empty();
    for (const std::string& b : brokers) {
      if (groups_.at(b).cluster_name == cluster_name) in_cluster = true;
    }
    if (in_cluster) out.push_back(topic);
  }
  return out;
}

RegistryStats Registry::Stats() const {
  absl::ReaderMutexLock lock(&mu_);
  RegistryStats stats;
  stats.broker_groups = static_cast<int64_t>(groups_.size());
  for (const auto& [name, group] : groups_) {
    stats.live_brokers += static_cast<int64_t>(group.instances.size());
  }
  stats.topics = static_cast<int64_t>(topic_index_.size());
  return stats;
}

}  // namespace apogee::nameserver
