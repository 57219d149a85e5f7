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

// Per broker group, queues 0..n-1 of the group's writer (route broker_id 0:
// the NameServer gives id 0 to the writer with the highest epoch, whatever
// its configured id), pointing at its client endpoint (one address, IPv4 or
// DOMAIN_NAME). Queue 0 is READ_WRITE whenever the topic has both read and
// write queues: the Node client only uses queue id 0. A group without a live
// writer is listed read-only through its lowest-id reader, so consumers keep
// reading while producers go elsewhere. Readers are never listed beside a
// live writer: Node 1.0.8 keeps every readable queue with queue id 0 (it
// confuses queue and broker ids), so its simple consumer would pop the same
// messages from the writer and each slave (each has its own POP state);
// Java clients read id 0 only anyway. Apogee's own SDK reads slaves through
// the NameServer route (apogee.nameserver.v1), which lists every broker.
absl::StatusOr<std::vector<v2::MessageQueue>> ToV2MessageQueues(
    const ::apogee::nameserver::v1::GetRouteResponse& route);

// The QueryRoute answer: ToV2MessageQueues, plus one standby write queue per
// other live member of each group with a live writer: queue id 0,
// permission WRITE (never read: see above), labelled broker id 0 (official
// clients write to id 0 only), at the member's endpoint. Official clients
// cache the queues they publish to (Node 1.0.8 forever), so when the writer
// dies they isolate its endpoint and write through a standby queue; a member
// that is not the writer relays the send to the writer
// (services/broker/ha/send_forwarder.h), and after a failover the promoted
// member is the writer itself.
absl::StatusOr<std::vector<v2::MessageQueue>> ToV2QueryRouteQueues(
    const ::apogee::nameserver::v1::GetRouteResponse& route);

// Endpoints for "host:port" (DNS names allowed).
absl::StatusOr<v2::Endpoints> ToV2Endpoints(const std::string& host_port);

// The message types a topic accepts: untyped and mixed topics accept all four.
std::vector<v2::MessageType> AcceptedMessageTypes(::apogee::nameserver::v1::TopicMessageType type);

}  // namespace apogee::rocketmq
