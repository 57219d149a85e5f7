// Authentication and authorization (--auth, services/common/auth) against
// real NameServer, store and broker processes: signed SDK and admin calls,
// UNAUTHORIZED for unsigned / wrong / stale signatures, FORBIDDEN naming
// user, resource and action, grants and deny-wins, the admin API for super
// users only, a rogue broker refused by the NameServer, and the official
// Node client with sessionCredentials.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/auth/authenticator.h"
#include "services/common/auth/signature.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

namespace av1 = ::apogee::admin::v1;
namespace v2 = ::apache::rocketmq::v2;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

const auth::Credential kRoot{"root", "root-secret"};
const std::string kInitAdmin = "--init_admin=root:root-secret";

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.set_nameserver_flags({"--auth=true", kInitAdmin});
    absl::Status started = cluster_.Start({"--auth=true", kInitAdmin});
    ASSERT_TRUE(started.ok()) << started;
    admin_ = av1::Admin::NewStub(
        grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<grpc::ClientContext> Signed(const auth::Credential& cred) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auth::SignCall(context.get(), cred, absl::Now());
    return context;
  }

  void CreateUser(const std::string& name, const std::string& secret) {
    av1::CreateUserRequest request;
    request.mutable_user()->set_username(name);
    request.mutable_user()->set_secret(secret);
    av1::CreateUserResponse response;
    grpc::Status s = admin_->CreateUser(Signed(kRoot).get(), request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  void Grant(const std::string& user, const std::string& resource, std::vector<std::string> actions,
             const std::string& decision = "allow") {
    av1::GrantAclRequest request;
    request.set_username(user);
    request.mutable_policy()->set_resource(resource);
    for (const std::string& a : actions) request.mutable_policy()->add_actions(a);
    request.mutable_policy()->set_decision(decision);
    av1::GrantAclResponse response;
    grpc::Status s = admin_->GrantAcl(Signed(kRoot).get(), request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  void CreateTopic(const std::string& topic) {
    av1::CreateTopicRequest request;
    request.mutable_topic()->set_name(topic);
    request.mutable_topic()->set_read_queues(2);
    request.mutable_topic()->set_write_queues(2);
    av1::CreateTopicResponse response;
    grpc::Status s = admin_->CreateTopic(Signed(kRoot).get(), request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::unique_ptr<Producer> NewProducer(const auth::Credential& cred) {
    ProducerOptions options;
    options.endpoints = {cluster_.nameserver_address()};
    options.access_key = cred.access_key;
    options.access_secret = cred.access_secret;
    auto producer = Producer::Create(options);
    EXPECT_TRUE(producer.ok()) << producer.status();
    return producer.ok() ? std::move(producer).value() : nullptr;
  }

  absl::Status SendOne(const auth::Credential& cred, const std::string& topic) {
    std::unique_ptr<Producer> producer = NewProducer(cred);
    if (producer == nullptr) return absl::InternalError("no producer");
    Message m;
    m.topic = topic;
    m.body = "hello";
    return producer->Send(m).status();
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::unique_ptr<av1::Admin::Stub> admin_;
};

TEST_F(AuthTest, SignaturesUsersAndPolicies) {
  // The admin API: unsigned refused, root allowed.
  av1::ListTopicsResponse topics;
  grpc::ClientContext unsigned_context;
  grpc::Status unsigned_call = admin_->ListTopics(&unsigned_context, {}, &topics);
  EXPECT_EQ(unsigned_call.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(unsigned_call.error_message(), HasSubstr("no authorization header"));
  CreateTopic("Orders");
  CreateUser("alice", "alice-secret");
  const auth::Credential alice{"alice", "alice-secret"};

  // A normal user may not use the admin API.
  grpc::Status by_alice = admin_->ListTopics(Signed(alice).get(), {}, &topics);
  EXPECT_EQ(by_alice.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(by_alice.error_message(), HasSubstr("user \"alice\" may not use the admin API"));

  // The broker signed its registration, so the NameServer routes the topic:
  // a signed SDK send works.
  ASSERT_TRUE(PollUntil([&] { return SendOne(kRoot, "Orders").ok(); }, absl::Seconds(15)))
      << SendOne(kRoot, "Orders");

  // No policy yet: FORBIDDEN naming user, resource and action.
  absl::Status denied = SendOne(alice, "Orders");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied) << denied;
  EXPECT_THAT(denied.message(), HasSubstr("user \"alice\" may not pub on topic:Orders"));

  // Wrong secret and unsigned: UNAUTHORIZED.
  absl::Status wrong = SendOne({"alice", "guess"}, "Orders");
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated) << wrong;
  EXPECT_THAT(wrong.message(), HasSubstr("does not match"));
  absl::Status anonymous = SendOne({}, "Orders");
  EXPECT_EQ(anonymous.code(), absl::StatusCode::kUnauthenticated) << anonymous;

  // A prefix grant allows; a deny on the exact topic wins over it.
  Grant("alice", "topic:Ord*", {"pub", "sub"});
  EXPECT_TRUE(SendOne(alice, "Orders").ok()) << SendOne(alice, "Orders");
  Grant("alice", "topic:Orders", {"pub"}, "deny");
  EXPECT_EQ(SendOne(alice, "Orders").code(), absl::StatusCode::kPermissionDenied);

  // Push streams: signed at open, the subscription needs sub on the group.
  PushConsumerOptions push;
  push.endpoints = {cluster_.nameserver_address()};
  push.group = "G";
  push.topic = "Orders";
  push.access_key = alice.access_key;
  push.access_secret = alice.access_secret;
  auto consumer =
      PushConsumer::Create(push, [](const ReceivedMessage&) { return ConsumeResult::kSuccess; });
  ASSERT_FALSE(consumer.ok());
  EXPECT_EQ(consumer.status().code(), absl::StatusCode::kPermissionDenied) << consumer.status();
  EXPECT_THAT(consumer.status().message(), HasSubstr("user \"alice\" may not sub on group:G"));
  Grant("alice", "group:G", {"sub"});
  consumer =
      PushConsumer::Create(push, [](const ReceivedMessage&) { return ConsumeResult::kSuccess; });
  EXPECT_TRUE(consumer.ok()) << consumer.status();

  // A stale signature (an hour old) is refused, in-band as UNAUTHORIZED.
  auto v2_stub = v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext stale;
  const std::string old_time = auth::FormatDateTime(absl::Now() - absl::Hours(1));
  stale.AddMetadata("x-mq-client-id", "auth-test@1");
  stale.AddMetadata(auth::kDateTimeHeader, old_time);
  stale.AddMetadata(auth::kAuthorizationHeader,
                    auth::AuthorizationValue("root", "root-secret", old_time));
  v2::QueryRouteRequest route;
  route.mutable_topic()->set_name("Orders");
  v2::QueryRouteResponse route_response;
  ASSERT_TRUE(v2_stub->QueryRoute(&stale, route, &route_response).ok());
  EXPECT_EQ(route_response.status().code(), v2::UNAUTHORIZED);
  EXPECT_THAT(route_response.status().message(), HasSubstr("away from the server clock"));

  // Users list without secrets; the secret never reaches the logs.
  av1::ListUsersResponse users;
  ASSERT_TRUE(admin_->ListUsers(Signed(kRoot).get(), {}, &users).ok());
  ASSERT_EQ(users.users_size(), 2);  // root (bootstrap) and alice
  EXPECT_EQ(users.users(1).username(), "alice");
  EXPECT_TRUE(users.users(1).secret().empty());
  EXPECT_EQ(users.users(1).policies_size(), 3);
  for (testing::ServiceProcess* p : {cluster_.broker(), cluster_.nameserver()}) {
    std::ifstream log(p->log_path());
    std::stringstream text;
    text << log.rdbuf();
    EXPECT_THAT(text.str(), ::testing::Not(HasSubstr("alice-secret")));
    EXPECT_THAT(text.str(), ::testing::Not(HasSubstr("root-secret")));
  }
}

// Users live in the store: a slave's store receives them with the other
// configs, and the slave broker serves them.
TEST(AuthReplicationTest, SlaveKnowsUsersCreatedOnTheMaster) {
  LocalCluster cluster({APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN});
  cluster.enable_replication();
  ASSERT_TRUE(cluster.Start({"--auth=true", kInitAdmin}).ok());
  auto slave = cluster.AddSlave(0, 1, {"--auth=true", kInitAdmin});
  ASSERT_TRUE(slave.ok()) << slave.status();
  auto on = [&](int index) {
    return av1::Admin::NewStub(
        grpc::CreateChannel(cluster.broker(index)->address(), grpc::InsecureChannelCredentials()));
  };
  auto signed_as = [](const auth::Credential& cred) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    auth::SignCall(context.get(), cred, absl::Now());
    return context;
  };
  av1::CreateUserRequest create;
  create.mutable_user()->set_username("ops");
  create.mutable_user()->set_secret("ops-secret");
  create.mutable_user()->set_type("super");
  av1::CreateUserResponse created;
  grpc::Status s = on(0)->CreateUser(signed_as(kRoot).get(), create, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The slave's broker reloads users every second once its store has them.
  auto slave_admin = on(*slave);
  std::string last;
  EXPECT_TRUE(PollUntil(
      [&] {
        av1::ListUsersResponse users;
        grpc::Status listed =
            slave_admin->ListUsers(signed_as({"ops", "ops-secret"}).get(), {}, &users);
        last = listed.error_message();
        return listed.ok() && users.users_size() == 2;
      },
      absl::Seconds(15)))
      << last;
}

TEST_F(AuthTest, NameServerRefusesRogueBroker) {
  auto rogue =
      cluster_.AddBroker("rogue", {"--auth=true", kInitAdmin, "--nameserver_access_key=root",
                                   "--nameserver_access_secret=guess"});
  ASSERT_TRUE(rogue.ok()) << rogue.status();
  auto ns = nameserver::v1::NameServer::NewStub(
      grpc::CreateChannel(cluster_.nameserver_address(), grpc::InsecureChannelCredentials()));
  auto clusters = [&] {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    nameserver::v1::GetClusterInfoResponse info;
    (void)ns->GetClusterInfo(&context, {}, &info);
    return info.DebugString();
  };
  // The NameServer logs each refusal; by then broker-a (signed) is in.
  ASSERT_TRUE(PollUntil(
      [&] {
        return absl::StrContains(cluster_.nameserver()->LogTail(), "event=registration_refused") &&
               absl::StrContains(clusters(), "broker-a");
      },
      absl::Seconds(15)))
      << cluster_.nameserver()->LogTail();
  EXPECT_THAT(cluster_.nameserver()->LogTail(), HasSubstr("does not match"));
  EXPECT_THAT(clusters(), ::testing::Not(HasSubstr("rogue")));
}

TEST_F(AuthTest, OfficialNodeClientWithSessionCredentials) {
  CreateTopic("NodeAuth");
  CreateUser("node", "node-secret");
  Grant("node", "topic:NodeAuth", {"pub", "sub"});
  Grant("node", "group:node-g", {"sub"});
  CreateUser("reader", "reader-secret");
  Grant("reader", "topic:NodeAuth", {"sub"});
  // Wait until the NameServer routes the topic (the broker re-registers).
  ASSERT_TRUE(PollUntil([&] { return SendOne(kRoot, "NodeAuth").ok(); }, absl::Seconds(15)));

  auto run = [&](const std::string& args, const std::string& log) {
    return testing::RunNodeInterop(APOGEE_SOURCE_DIR, "auth.js",
                                   absl::StrCat(cluster_.broker_address(), " NodeAuth ", args),
                                   absl::StrCat(cluster_.dir(), "/", log, ".log"));
  };
  auto [ok_code, ok_output] = run("node-g node node-secret ok", "node-ok");
  ASSERT_EQ(ok_code, 0) << ok_output;
  EXPECT_THAT(ok_output, HasSubstr("acked 1"));

  auto [wrong_code, wrong_output] = run("node-g node guess 40100", "node-wrong");
  ASSERT_EQ(wrong_code, 0) << wrong_output;
  EXPECT_THAT(wrong_output, HasSubstr("refused 40100"));

  auto [denied_code, denied_output] = run("node-g reader reader-secret 40300", "node-denied");
  ASSERT_EQ(denied_code, 0) << denied_output;
  EXPECT_THAT(denied_output, HasSubstr("user \"reader\" may not pub on topic:NodeAuth"));
}

}  // namespace
}  // namespace apogee
