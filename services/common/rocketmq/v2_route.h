// Turns an Apogee route (apogee.nameserver.v1) into the RocketMQ v2
// QueryRoute answer that official clients expect. Shared by the NameServer
// and the broker, which both answer QueryRoute.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "apogee/nameserver/v1/nameserver.pb.h"

namespace apogee::rocketmq {

namespace v2 = ::apache::rocketmq::v2;

// Per broker group, queues 0..n-1 of the group's master, pointing at its
// client endpoint (one address, IPv4 or DOMAIN_NAME). Queue 0 is READ_WRITE
// whenever the topic has both read and write queues: the Node client only
// uses queue id 0. A group without a live master is listed read-only through
// its lowest-id slave, so consumers keep reading while producers go
// elsewhere. Slaves are never listed beside a live master: the Node client
// would send to them.
absl::StatusOr<std::vector<v2::MessageQueue>> ToV2MessageQueues(
    const ::apogee::nameserver::v1::GetRouteResponse& route);

// Endpoints for "host:port" (DNS names allowed).
absl::StatusOr<v2::Endpoints> ToV2Endpoints(const std::string& host_port);

// The message types a topic accepts: untyped and mixed topics accept all four.
std::vector<v2::MessageType> AcceptedMessageTypes(::apogee::nameserver::v1::TopicMessageType type);

}  // namespace apogee::rocketmq
