#include "services/common/rocketmq/v2_route.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "services/common/naming/names.h"

namespace apogee::rocketmq {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;

bool Readable(nsv1::TopicPermission p) {
  return p == nsv1::TOPIC_PERMISSION_READ || p == nsv1::TOPIC_PERMISSION_READ_WRITE ||
         p == nsv1::TOPIC_PERMISSION_UNSPECIFIED;
}

bool Writable(nsv1::TopicPermission p) {
  return p == nsv1::TOPIC_PERMISSION_WRITE || p == nsv1::TOPIC_PERMISSION_READ_WRITE ||
         p == nsv1::TOPIC_PERMISSION_UNSPECIFIED;
}

v2::Permission Combine(bool read, bool write) {
  if (read && write) return v2::READ_WRITE;
  if (read) return v2::READ;
  if (write) return v2::WRITE;
  return v2::NONE;
}

}  // namespace

absl::StatusOr<v2::Endpoints> ToV2Endpoints(const std::string& host_port) {
  auto parsed = ParseHostPort("broker client_endpoint", host_port);
  if (!parsed.ok()) return parsed.status();
  v2::Endpoints endpoints;
  endpoints.set_scheme(parsed->host_is_ipv4 ? v2::IPv4 : v2::DOMAIN_NAME);
  v2::Address* address = endpoints.add_addresses();
  address->set_host(parsed->host);
  address->set_port(parsed->port);
  return endpoints;
}

std::vector<v2::MessageType> AcceptedMessageTypes(nsv1::TopicMessageType type) {
  switch (type) {
    case nsv1::TOPIC_MESSAGE_TYPE_NORMAL:
      return {v2::NORMAL};
    case nsv1::TOPIC_MESSAGE_TYPE_FIFO:
      return {v2::FIFO};
    case nsv1::TOPIC_MESSAGE_TYPE_DELAY:
      return {v2::DELAY};
    case nsv1::TOPIC_MESSAGE_TYPE_TRANSACTION:
      return {v2::TRANSACTION};
    default:
      return {v2::NORMAL, v2::FIFO, v2::DELAY, v2::TRANSACTION};
  }
}

absl::StatusOr<std::vector<v2::MessageQueue>> ToV2MessageQueues(
    const nsv1::GetRouteResponse& route) {
  std::map<std::string, const nsv1::BrokerGroup*> groups;
  for (const nsv1::BrokerGroup& g : route.broker_groups()) groups[g.broker_name()] = &g;

  std::vector<v2::MessageQueue> out;
  for (const nsv1::QueueData& queues : route.queues()) {
    auto group = groups.find(queues.broker_name());
    if (group == groups.end() || group->second->brokers_size() == 0) continue;
    // Brokers are sorted by route id: the first one is the writer when alive.
    const nsv1::BrokerInstance& instance = group->second->brokers(0);
    const bool master = instance.broker_id() == 0;
    auto endpoints = ToV2Endpoints(instance.client_endpoint());
    if (!endpoints.ok()) return endpoints.status();

    v2::Broker broker;
    broker.set_name(queues.broker_name());
    broker.set_id(static_cast<int32_t>(instance.broker_id()));
    *broker.mutable_endpoints() = *endpoints;

    const bool topic_read = Readable(queues.permission());
    const bool topic_write = master && Writable(queues.permission());
    const int total = std::max(queues.read_queues(), queues.write_queues());
    const std::vector<v2::MessageType> types = AcceptedMessageTypes(queues.message_type());
    for (int id = 0; id < total; ++id) {
      v2::MessageQueue mq;
      mq.mutable_topic()->set_name(route.topic());
      mq.set_id(id);
      mq.set_permission(Combine(topic_read && id < queues.read_queues(),
                                topic_write && id < queues.write_queues()));
      *mq.mutable_broker() = broker;
      for (v2::MessageType t : types) mq.add_accept_message_types(t);
      out.push_back(std::move(mq));
    }
  }
  return out;
}

absl::StatusOr<std::vector<v2::MessageQueue>> ToV2QueryRouteQueues(
    const nsv1::GetRouteResponse& route) {
  absl::StatusOr<std::vector<v2::MessageQueue>> out = ToV2MessageQueues(route);
  if (!out.ok()) return out;
  std::map<std::string, const nsv1::BrokerGroup*> groups;
  for (const nsv1::BrokerGroup& g : route.broker_groups()) groups[g.broker_name()] = &g;
  for (const nsv1::QueueData& queues : route.queues()) {
    auto group = groups.find(queues.broker_name());
    if (group == groups.end() || group->second->brokers_size() < 2) continue;
    if (group->second->brokers(0).broker_id() != 0) continue;  // no live writer
    if (!Writable(queues.permission()) || queues.write_queues() < 1) continue;
    const std::vector<v2::MessageType> types = AcceptedMessageTypes(queues.message_type());
    for (int i = 1; i < group->second->brokers_size(); ++i) {
      auto endpoints = ToV2Endpoints(group->second->brokers(i).client_endpoint());
      if (!endpoints.ok()) return endpoints.status();
      v2::MessageQueue mq;
      mq.mutable_topic()->set_name(route.topic());
      mq.set_id(0);
      mq.set_permission(v2::WRITE);
      mq.mutable_broker()->set_name(queues.broker_name());
      mq.mutable_broker()->set_id(0);
      *mq.mutable_broker()->mutable_endpoints() = *endpoints;
      for (v2::MessageType t : types) mq.add_accept_message_types(t);
      out->push_back(std::move(mq));
    }
  }
  return out;
}

}  // namespace apogee::rocketmq
