#include "services/broker/auth/v2_access.h"

#include <string>

#include "grpcpp/server_context.h"
#include "gtest/gtest.h"

namespace apogee::broker {
namespace {

using auth::Action;
using auth::ResourceKind;

std::string Render(const Accesses& accesses) {
  std::string out;
  for (const auth::Access& a : accesses) {
    if (!out.empty()) out += " ";
    out += auth::AccessResourceName(a) + "=";
    for (size_t i = 0; i < a.actions.size(); ++i) {
      out += std::string(i > 0 ? "|" : "") + std::string(auth::ActionName(a.actions[i]));
    }
  }
  return out;
}

TEST(V2Access, FollowsRocketMqMapping) {
  grpc::ServerContext context;  // no x-mq-namespace: resource_namespace applies

  v2a::SendMessageRequest send;
  for (const char* topic : {"A", "B", "A"}) send.add_messages()->mutable_topic()->set_name(topic);
  EXPECT_EQ(Render(AccessesOf(context, send)), "topic:A=pub topic:B=pub");

  v2a::QueryRouteRequest route;
  route.mutable_topic()->set_name("A");
  route.mutable_topic()->set_resource_namespace("ns");
  EXPECT_EQ(Render(AccessesOf(context, route)), "topic:ns%A=pub|sub");

  v2a::ReceiveMessageRequest receive;
  receive.mutable_group()->set_name("G");
  receive.mutable_message_queue()->mutable_topic()->set_name("A");
  EXPECT_EQ(Render(AccessesOf(context, receive)), "group:G=sub topic:A=sub");

  v2a::HeartbeatRequest heartbeat;
  heartbeat.set_client_type(v2a::PRODUCER);
  heartbeat.mutable_group()->set_name("G");
  EXPECT_TRUE(AccessesOf(context, heartbeat).empty());
  heartbeat.set_client_type(v2a::SIMPLE_CONSUMER);
  EXPECT_EQ(Render(AccessesOf(context, heartbeat)), "group:G=sub");

  v2a::UpdateOffsetRequest commit;
  commit.mutable_group()->set_name("G");
  commit.mutable_message_queue()->mutable_topic()->set_name("A");
  EXPECT_EQ(Render(AccessesOf(context, commit)), "group:G=sub|update topic:A=sub|update");

  v2a::Settings settings;
  settings.mutable_publishing()->add_topics()->set_name("P");
  EXPECT_EQ(Render(AccessesOf(context, settings)), "topic:P=pub");
  settings.Clear();
  settings.mutable_subscription()->mutable_group()->set_name("G");
  settings.mutable_subscription()->add_subscriptions()->mutable_topic()->set_name("S");
  EXPECT_EQ(Render(AccessesOf(context, settings)), "group:G=sub topic:S=sub");
}

}  // namespace
}  // namespace apogee::broker
