#include "services/broker/auth/v2_access.h"

#include <set>
#include <string>

#include "services/common/rocketmq/metadata.h"

namespace apogee::broker {
namespace {

using auth::Access;
using auth::Action;
using auth::ResourceKind;

Access Topic(const grpc::ServerContextBase& c, const v2a::Resource& r, std::vector<Action> a) {
  return Access{ResourceKind::kTopic, rocketmq::QualifiedName(c, r.resource_namespace(), r.name()),
                std::move(a)};
}

Access Group(const grpc::ServerContextBase& c, const v2a::Resource& r, std::vector<Action> a) {
  return Access{ResourceKind::kGroup, rocketmq::QualifiedName(c, r.resource_namespace(), r.name()),
                std::move(a)};
}

Accesses Sub(const grpc::ServerContextBase& c, const v2a::Resource& group,
             const v2a::Resource& topic) {
  return {Group(c, group, {Action::kSub}), Topic(c, topic, {Action::kSub})};
}

bool IsConsumer(v2a::ClientType type) {
  return type == v2a::PUSH_CONSUMER || type == v2a::SIMPLE_CONSUMER || type == v2a::PULL_CONSUMER ||
         type == v2a::LITE_PUSH_CONSUMER || type == v2a::LITE_SIMPLE_CONSUMER;
}

}  // namespace

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::QueryRouteRequest& r) {
  return {Topic(c, r.topic(), {Action::kPub, Action::kSub})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::HeartbeatRequest& r) {
  if (!IsConsumer(r.client_type()) || r.group().name().empty()) return {};
  return {Group(c, r.group(), {Action::kSub})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::SendMessageRequest& r) {
  Accesses out;
  std::set<std::string> seen;
  for (const v2a::Message& m : r.messages()) {
    Access a = Topic(c, m.topic(), {Action::kPub});
    if (seen.insert(a.name).second) out.push_back(std::move(a));
  }
  return out;
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::QueryAssignmentRequest& r) {
  return Sub(c, r.group(), r.topic());
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::ReceiveMessageRequest& r) {
  return Sub(c, r.group(), r.message_queue().topic());
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::AckMessageRequest& r) {
  return Sub(c, r.group(), r.topic());
}

Accesses AccessesOf(const grpc::ServerContextBase& c,
                    const v2a::ForwardMessageToDeadLetterQueueRequest& r) {
  return Sub(c, r.group(), r.topic());
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::PullMessageRequest& r) {
  return Sub(c, r.group(), r.message_queue().topic());
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::UpdateOffsetRequest& r) {
  return {Group(c, r.group(), {Action::kSub, Action::kUpdate}),
          Topic(c, r.message_queue().topic(), {Action::kSub, Action::kUpdate})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::GetOffsetRequest& r) {
  return {Group(c, r.group(), {Action::kSub, Action::kGet}),
          Topic(c, r.message_queue().topic(), {Action::kSub, Action::kGet})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::QueryOffsetRequest& r) {
  return {Topic(c, r.message_queue().topic(), {Action::kSub, Action::kGet})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::EndTransactionRequest& r) {
  return {Topic(c, r.topic(), {Action::kPub})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c,
                    const v2a::ChangeInvisibleDurationRequest& r) {
  return {Group(c, r.group(), {Action::kSub})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c,
                    const v2a::NotifyClientTerminationRequest& r) {
  if (r.group().name().empty()) return {};  // producers
  return {Group(c, r.group(), {Action::kSub})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::RecallMessageRequest& r) {
  return {Topic(c, r.topic(), {Action::kPub})};
}

Accesses AccessesOf(const grpc::ServerContextBase& c, const v2a::Settings& settings) {
  Accesses out;
  if (settings.has_publishing()) {
    for (const v2a::Resource& t : settings.publishing().topics()) {
      out.push_back(Topic(c, t, {Action::kPub}));
    }
  }
  if (settings.has_subscription()) {
    out.push_back(Group(c, settings.subscription().group(), {Action::kSub}));
    for (const v2a::SubscriptionEntry& e : settings.subscription().subscriptions()) {
      out.push_back(Topic(c, e.topic(), {Action::kSub}));
    }
  }
  return out;
}

}  // namespace apogee::broker
