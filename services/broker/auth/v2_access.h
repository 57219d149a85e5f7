// What each apache.rocketmq.v2 call needs under --auth, following RocketMQ
// 5's mapping: sends and transaction ends pub on the topic; receive, ack,
// DLQ forward, assignment and pull sub on the group and the topic; change
// invisible duration and consumer heartbeats sub on the group; QueryRoute
// pub or sub on the topic; offsets sub|update (commit) or sub|get (read);
// Telemetry settings pub on published topics, sub on the group and the
// subscribed topics. Calls not listed need only a valid signature. Names
// carry the call's namespace (x-mq-namespace).
#pragma once

#include <vector>

#include "apache/rocketmq/v2/service.pb.h"
#include "grpcpp/server_context.h"
#include "services/common/auth/policy.h"

namespace apogee::broker {

namespace v2a = ::apache::rocketmq::v2;
using Accesses = std::vector<auth::Access>;

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::QueryRouteRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::HeartbeatRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::SendMessageRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::QueryAssignmentRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::ReceiveMessageRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::AckMessageRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c,
                    const v2a::ForwardMessageToDeadLetterQueueRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::PullMessageRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::UpdateOffsetRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::GetOffsetRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::QueryOffsetRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::EndTransactionRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::ChangeInvisibleDurationRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::NotifyClientTerminationRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::RecallMessageRequest& r);
Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::Settings& settings);

}  // namespace apogee::broker
