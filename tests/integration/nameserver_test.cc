// NameServer integration tests: real apogee-nameserver processes on free
// ports, real gRPC clients, no shared state between NameServers.
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"

#ifndef APOGEE_NAMESERVER_BIN
#error "APOGEE_NAMESERVER_BIN must name the apogee-nameserver binary"
#endif
#ifndef APOGEE_SOURCE_DIR
#error "APOGEE_SOURCE_DIR must name the source tree"
#endif

namespace apogee {
namespace {

namespace v1 = ::apogee::nameserver::v1;
namespace v2 = ::apache::rocketmq::v2;
using ::apogee::testing::PollUntil;
using ::apogee::testing::ServiceProcess;
using ::apogee::testing::TempDir;
using ::testing::HasSubstr;

v1::BrokerRegistration Registration(const std::string& broker, int64_t id,
                                    const std::string& endpoint,
                                    const std::string& topic = "TopicTest") {
  v1::BrokerRegistration r;
  r.set_cluster_name("DefaultCluster");
  r.set_broker_name(broker);
  r.set_broker_id(id);
  r.set_client_endpoint(endpoint);
  r.set_ha_endpoint("127.0.0.1:10912");
  r.set_data_version(1);
  r.set_full(true);
  v1::TopicConfig* t = r.add_topics();
  t->set_name(topic);
  t->set_read_queues(4);
  t->set_write_queues(4);
  t->set_permission(v1::TOPIC_PERMISSION_READ_WRITE);
  return r;
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context->AddMetadata("x-mq-client-id", "integration@1@0@test");
  return context;
}

class NameServerTest : public ::testing::Test {
 protected:
  std::unique_ptr<ServiceProcess> StartNameServer(const std::string& name,
                                                  std::vector<std::string> extra = {}) {
    extra.push_back("--metrics_listen=127.0.0.1:0");
    auto process = ServiceProcess::Start(name, APOGEE_NAMESERVER_BIN, extra, dir_.path());
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? std::move(process).value() : nullptr;
  }

  static std::unique_ptr<v1::NameServer::Stub> V1(const ServiceProcess& ns) {
    return v1::NameServer::NewStub(
        grpc::CreateChannel(ns.address(), grpc::InsecureChannelCredentials()));
  }
  static std::unique_ptr<v2::MessagingService::Stub> V2(const ServiceProcess& ns) {
    return v2::MessagingService::NewStub(
        grpc::CreateChannel(ns.address(), grpc::InsecureChannelCredentials()));
  }

  static grpc::Status Register(v1::NameServer::Stub& stub, const v1::BrokerRegistration& r) {
    v1::RegisterBrokerRequest request;
    *request.mutable_registration() = r;
    v1::RegisterBrokerResponse response;
    return stub.RegisterBroker(Context().get(), request, &response);
  }

  static grpc::Status Route(v1::NameServer::Stub& stub, const std::string& topic,
                            v1::GetRouteResponse* response) {
    v1::GetRouteRequest request;
    request.set_topic(topic);
    return stub.GetRoute(Context().get(), request, response);
  }

  TempDir dir_;
};

TEST_F(NameServerTest, EachNameServerHoldsTheFullTableOnItsOwn) {
  auto ns1 = StartNameServer("ns1");
  auto ns2 = StartNameServer("ns2");
  ASSERT_TRUE(ns1 && ns2);
  // A broker registers with every NameServer; they never talk to each other.
  for (ServiceProcess* ns : {ns1.get(), ns2.get()}) {
    auto stub = V1(*ns);
    ASSERT_TRUE(Register(*stub, Registration("broker-a", 0, "127.0.0.1:8081")).ok());
    ASSERT_TRUE(Register(*stub, Registration("broker-a", 1, "127.0.0.1:8091")).ok());
    ASSERT_TRUE(Register(*stub, Registration("broker-b", 0, "broker-b-0.apogee.svc:8081")).ok());
  }
  ASSERT_TRUE(ns1->Stop(SIGKILL).ok());

  auto stub = V1(*ns2);
  v1::GetRouteResponse route;
  ASSERT_TRUE(Route(*stub, "TopicTest", &route).ok());
  ASSERT_EQ(route.queues_size(), 2);
  ASSERT_EQ(route.broker_groups_size(), 2);
  EXPECT_EQ(route.broker_groups(0).brokers_size(), 2);
  EXPECT_EQ(route.broker_groups(0).brokers(1).client_endpoint(), "127.0.0.1:8091");
  EXPECT_EQ(route.broker_groups(1).brokers(0).client_endpoint(), "broker-b-0.apogee.svc:8081");

  v1::GetClusterInfoResponse info;
  ASSERT_TRUE(stub->GetClusterInfo(Context().get(), v1::GetClusterInfoRequest(), &info).ok());
  ASSERT_EQ(info.clusters_size(), 1);
  EXPECT_EQ(info.clusters(0).broker_groups_size(), 2);

  v1::ListTopicsResponse topics;
  ASSERT_TRUE(stub->ListTopics(Context().get(), v1::ListTopicsRequest(), &topics).ok());
  EXPECT_THAT(topics.topics(), ::testing::ElementsAre("TopicTest"));
}

TEST_F(NameServerTest, BrokerOnABrokenSessionDisappearsWithinSeconds) {
  auto ns = StartNameServer("ns");
  ASSERT_TRUE(ns);
  auto stub = V1(*ns);
  auto session_context = Context(absl::Minutes(5));
  auto session = stub->BrokerSession(session_context.get());
  v1::BrokerSessionRequest request;
  *request.mutable_registration() = Registration("broker-a", 0, "127.0.0.1:8081");
  ASSERT_TRUE(session->Write(request));
  v1::BrokerSessionResponse response;
  ASSERT_TRUE(session->Read(&response));
  EXPECT_FALSE(response.full_registration_required());

  // A cheap refresh on the same stream.
  request.mutable_registration()->clear_topics();
  request.mutable_registration()->set_full(false);
  ASSERT_TRUE(session->Write(request));
  ASSERT_TRUE(session->Read(&response));
  EXPECT_FALSE(response.full_registration_required());
  EXPECT_EQ(response.data_version(), 1);

  v1::GetRouteResponse route;
  ASSERT_TRUE(Route(*stub, "TopicTest", &route).ok());

  session_context->TryCancel();  // the broker's connection breaks
  const absl::Time broken = absl::Now();
  EXPECT_TRUE(PollUntil(
      [&] {
        v1::GetRouteResponse r;
        return Route(*stub, "TopicTest", &r).error_code() == grpc::StatusCode::NOT_FOUND;
      },
      absl::Seconds(10)));
  // Far below the 120 s expiry: the stream's end removed it.
  EXPECT_LT(absl::Now() - broken, absl::Seconds(10));
}

TEST_F(NameServerTest, SilentBrokerExpires) {
  auto ns = StartNameServer("ns", {"--broker_expiry=1s", "--scan_interval=50ms"});
  ASSERT_TRUE(ns);
  auto stub = V1(*ns);
  ASSERT_TRUE(Register(*stub, Registration("broker-a", 0, "127.0.0.1:8081")).ok());
  EXPECT_TRUE(PollUntil(
      [&] {
        v1::GetRouteResponse r;
        return Route(*stub, "TopicTest", &r).error_code() == grpc::StatusCode::NOT_FOUND;
      },
      absl::Seconds(20)));
  auto metrics = testing::HttpGet(ns->metrics_address(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(*metrics, HasSubstr("apogee_nameserver_broker_removals_total{reason=\"expired\"} 1"));
  EXPECT_THAT(*metrics, HasSubstr("apogee_nameserver_live_brokers 0"));
}

TEST_F(NameServerTest, BadRegistrationsAreRejectedAndTableStaysConsistent) {
  auto ns = StartNameServer("ns");
  ASSERT_TRUE(ns);
  auto stub = V1(*ns);
  ASSERT_TRUE(Register(*stub, Registration("broker-a", 0, "127.0.0.1:8081")).ok());

  grpc::Status bad_name = Register(*stub, Registration("broker a", 0, "127.0.0.1:8082"));
  EXPECT_EQ(bad_name.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad_name.error_message(),
              HasSubstr("registration.broker_name \"broker a\" has invalid character ' '"));

  grpc::Status bad_id = Register(*stub, Registration("broker-c", -2, "127.0.0.1:8082"));
  EXPECT_THAT(bad_id.error_message(), HasSubstr("registration.broker_id is -2"));

  grpc::Status bad_topic = Register(*stub, Registration("broker-c", 0, "127.0.0.1:8082", "a/b"));
  EXPECT_THAT(bad_topic.error_message(), HasSubstr("registration.topics[0].name \"a/b\""));

  grpc::Status two_masters = Register(*stub, Registration("broker-a", 0, "127.0.0.1:9999", "X"));
  EXPECT_EQ(two_masters.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(two_masters.error_message(), HasSubstr("already has a live master"));

  v1::GetRouteResponse route;
  EXPECT_EQ(Route(*stub, "X", &route).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Route(*stub, "TopicTest", &route).ok());
  EXPECT_EQ(route.broker_groups(0).brokers(0).client_endpoint(), "127.0.0.1:8081");
  EXPECT_THAT(Route(*stub, "", &route).error_message(), HasSubstr("topic is empty"));

  v1::UnregisterBrokerRequest unregister;
  unregister.set_cluster_name("DefaultCluster");
  unregister.set_broker_name("broker-zzz");
  v1::UnregisterBrokerResponse unregistered;
  EXPECT_EQ(stub->UnregisterBroker(Context().get(), unregister, &unregistered).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(NameServerTest, V2QueryRouteAnswersLikeARocketMqProxy) {
  auto ns = StartNameServer("ns");
  ASSERT_TRUE(ns);
  auto v1_stub = V1(*ns);
  ASSERT_TRUE(Register(*v1_stub, Registration("broker-a", 0, "127.0.0.1:8081")).ok());
  ASSERT_TRUE(Register(*v1_stub, Registration("broker-a", 1, "127.0.0.1:8091")).ok());
  ASSERT_TRUE(Register(*v1_stub, Registration("broker-b", 0, "broker-b.apogee:8081")).ok());
  auto stub = V2(*ns);

  v2::QueryRouteRequest request;
  request.mutable_topic()->set_name("TopicTest");
  v2::QueryRouteResponse response;
  ASSERT_TRUE(stub->QueryRoute(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status().code(), v2::OK);
  // 4 per master, no slave queues to read, and broker-a's slave as one
  // write-only standby queue (v2_route.h) at the end.
  ASSERT_EQ(response.message_queues_size(), 9);
  std::set<std::string> endpoints;
  for (int i = 0; i < 8; ++i) {
    const v2::MessageQueue& q = response.message_queues(i);
    EXPECT_EQ(q.topic().name(), "TopicTest");
    EXPECT_EQ(q.permission(), v2::READ_WRITE);
    EXPECT_EQ(q.broker().id(), 0);
    ASSERT_EQ(q.broker().endpoints().addresses_size(), 1);
    endpoints.insert(absl::StrCat(q.broker().endpoints().addresses(0).host(), ":",
                                  q.broker().endpoints().addresses(0).port()));
  }
  EXPECT_THAT(endpoints, ::testing::ElementsAre("127.0.0.1:8081", "broker-b.apogee:8081"));
  EXPECT_EQ(response.message_queues(0).id(), 0);
  EXPECT_EQ(response.message_queues(0).broker().endpoints().scheme(), v2::IPv4);
  EXPECT_EQ(response.message_queues(4).broker().endpoints().scheme(), v2::DOMAIN_NAME);
  const v2::MessageQueue& standby = response.message_queues(8);
  EXPECT_EQ(standby.permission(), v2::WRITE);
  EXPECT_EQ(standby.id(), 0);
  EXPECT_EQ(standby.broker().name(), "broker-a");
  EXPECT_EQ(standby.broker().endpoints().addresses(0).port(), 8091);

  request.mutable_topic()->set_name("Missing");
  response.Clear();
  ASSERT_TRUE(stub->QueryRoute(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status().code(), v2::TOPIC_NOT_FOUND);
  EXPECT_THAT(response.status().message(), HasSubstr("\"Missing\""));

  request.mutable_topic()->set_name("bad topic!");
  response.Clear();
  ASSERT_TRUE(stub->QueryRoute(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status().code(), v2::ILLEGAL_TOPIC);

  // Broker-only RPCs answer in-band, naming where to go.
  v2::SendMessageRequest send;
  v2::SendMessageResponse sent;
  ASSERT_TRUE(stub->SendMessage(Context().get(), send, &sent).ok());
  EXPECT_EQ(sent.status().code(), v2::UNSUPPORTED);
  EXPECT_THAT(sent.status().message(), HasSubstr("broker endpoint"));

  auto metrics = testing::HttpGet(ns->metrics_address(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics,
              HasSubstr("apogee_nameserver_route_queries_total{api=\"v2\",result=\"ok\"} 1"));
  EXPECT_THAT(
      *metrics,
      HasSubstr("apogee_nameserver_route_queries_total{api=\"v2\",result=\"not_found\"} 1"));
  EXPECT_THAT(*metrics, HasSubstr("apogee_nameserver_live_brokers 3"));
}

TEST_F(NameServerTest, TelemetryRepliesSettingsOnTheSameStream) {
  auto ns = StartNameServer("ns");
  ASSERT_TRUE(ns);
  auto stub = V2(*ns);
  auto context = Context();
  auto stream = stub->Telemetry(context.get());
  v2::TelemetryCommand hello;
  hello.mutable_settings()->set_client_type(v2::PRODUCER);
  hello.mutable_settings()->mutable_publishing()->add_topics()->set_name("TopicTest");
  ASSERT_TRUE(stream->Write(hello));
  v2::TelemetryCommand reply;
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.status().code(), v2::OK);
  ASSERT_TRUE(reply.has_settings());
  EXPECT_GT(reply.settings().publishing().max_body_size(), 0);
  EXPECT_TRUE(reply.settings().backoff_policy().has_exponential_backoff());
  // Every later Settings is answered too (clients resend every 5 minutes).
  ASSERT_TRUE(stream->Write(hello));
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.status().code(), v2::OK);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // Without x-mq-client-id the answer is an in-band CLIENT_ID_REQUIRED.
  grpc::ClientContext anonymous;
  auto bare = stub->Telemetry(&anonymous);
  ASSERT_TRUE(bare->Write(hello));
  ASSERT_TRUE(bare->Read(&reply));
  EXPECT_EQ(reply.status().code(), v2::CLIENT_ID_REQUIRED);
  bare->WritesDone();
  bare->Finish();

  v2::NotifyClientTerminationResponse bye;
  ASSERT_TRUE(
      stub->NotifyClientTermination(Context().get(), v2::NotifyClientTerminationRequest(), &bye)
          .ok());
  EXPECT_EQ(bye.status().code(), v2::OK);
}

TEST_F(NameServerTest, OfficialNodeClientBootstrapsFromTheNameServer) {
  auto ns = StartNameServer("ns");
  ASSERT_TRUE(ns);
  // The "broker" is the NameServer itself: it answers Telemetry, Heartbeat and
  // NotifyClientTermination, which is all a client does during start-up and
  // shutdown.
  auto stub = V1(*ns);
  ASSERT_TRUE(Register(*stub, Registration("broker-a", 0, ns->address())).ok());
  auto [code, output] = testing::RunNodeInterop(
      APOGEE_SOURCE_DIR, "nameserver_bootstrap.js",
      absl::StrCat(ns->address(), " TopicTest NoSuchTopic"), dir_.path() + "/node.log");
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("producer started"));
  EXPECT_THAT(output, HasSubstr("consumer started"));
  EXPECT_THAT(output, HasSubstr("route queues=4"));
  EXPECT_THAT(output, HasSubstr("missing topic rejected"));
  EXPECT_THAT(output, HasSubstr("shutdown ok"));
}

TEST_F(NameServerTest, SigtermShutsDownCleanly) {
  auto ns = StartNameServer("ns");
  ASSERT_TRUE(ns);
  auto status = ns->Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0) << ns->LogTail();
}

TEST_F(NameServerTest, BadFlagsFailWithAClearError) {
  auto ns = ServiceProcess::Start("ns-bad", APOGEE_NAMESERVER_BIN,
                                  {"--broker_expiry=0s", "--metrics_listen="}, dir_.path(),
                                  absl::Seconds(10));
  ASSERT_FALSE(ns.ok());
  EXPECT_THAT(ns.status().message(), HasSubstr("--broker_expiry=0 is out of range"));
}

}  // namespace
}  // namespace apogee
