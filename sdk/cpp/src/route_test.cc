#include "sdk/cpp/src/route.h"

#include <atomic>
#include <memory>
#include <string>

#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "services/common/clock/clock.h"

namespace apogee::sdk {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
using ::testing::HasSubstr;

// An in-process NameServer that knows topic "T": broker group "a" (master
// and a slave) with 2 read/write queues, group "b" (slave only, so no
// master), and group "c" read-only with 3 queues.
class FakeNameServer final : public nsv1::NameServer::Service {
 public:
  grpc::Status GetRoute(grpc::ServerContext*, const nsv1::GetRouteRequest* request,
                        nsv1::GetRouteResponse* response) override {
    route_calls++;
    if (request->topic() != "T") return grpc::Status(grpc::StatusCode::NOT_FOUND, "no topic");
    AddQueues(response, "a", 2, nsv1::TOPIC_PERMISSION_READ_WRITE);
    AddQueues(response, "b", 2, nsv1::TOPIC_PERMISSION_READ_WRITE);
    AddQueues(response, "c", 3, nsv1::TOPIC_PERMISSION_READ);
    *response->add_broker_groups() = Group("a", {0, 1});
    *response->add_broker_groups() = Group("b", {1});
    *response->add_broker_groups() = Group("c", {0});
    return grpc::Status::OK;
  }
  grpc::Status GetClusterInfo(grpc::ServerContext*, const nsv1::GetClusterInfoRequest*,
                              nsv1::GetClusterInfoResponse* response) override {
    nsv1::Cluster* cluster = response->add_clusters();
    *cluster->add_broker_groups() = Group("a", {0, 1});
    *cluster->add_broker_groups() = Group("b", {1});
    return grpc::Status::OK;
  }

  std::atomic<int> route_calls{0};

 private:
  static void AddQueues(nsv1::GetRouteResponse* response, const std::string& broker, int n,
                        nsv1::TopicPermission permission) {
    nsv1::QueueData* q = response->add_queues();
    q->set_broker_name(broker);
    q->set_read_queues(n);
    q->set_write_queues(n);
    q->set_permission(permission);
  }
  static nsv1::BrokerGroup Group(const std::string& name, std::vector<int> ids) {
    nsv1::BrokerGroup g;
    g.set_broker_name(name);
    for (int id : ids) {
      nsv1::BrokerInstance* b = g.add_brokers();
      b->set_broker_id(id);
      b->set_client_endpoint(name + (id == 0 ? "-master:1" : "-slave:1"));
    }
    return g;
  }
};

class RouteCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override { server_->Shutdown(); }

  RouteCache Cache(std::vector<std::string> nameservers) {
    return RouteCache(&channels_, std::move(nameservers), absl::Seconds(5), absl::Seconds(30),
                      &clock_);
  }

  FakeNameServer fake_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  Channels channels_{"route-test"};
  ManualClock clock_;
};

TEST_F(RouteCacheTest, KeepsMasterQueuesOnly) {
  RouteCache cache = Cache({address_});
  auto route = cache.Get("T");
  ASSERT_TRUE(route.ok()) << route.status();
  // a: 2 writable + 2 readable on its master; b has no master; c is read-only.
  ASSERT_EQ((*route)->writable.size(), 2u);
  EXPECT_EQ((*route)->writable[0].endpoint, "a-master:1");
  EXPECT_EQ((*route)->writable[1].queue_id, 1);
  ASSERT_EQ((*route)->readable.size(), 5u);
  EXPECT_EQ((*route)->readable[4].broker, "c");
  EXPECT_EQ((*route)->readable[4].endpoint, "c-master:1");
}

TEST_F(RouteCacheTest, CachesUntilTheRefreshIntervalOrAnInvalidate) {
  RouteCache cache = Cache({address_});
  ASSERT_TRUE(cache.Get("T").ok());
  ASSERT_TRUE(cache.Get("T").ok());
  EXPECT_EQ(fake_.route_calls.load(), 1);
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(cache.Get("T").ok());
  EXPECT_EQ(fake_.route_calls.load(), 2);
  cache.Invalidate("T");
  ASSERT_TRUE(cache.Get("T").ok());
  EXPECT_EQ(fake_.route_calls.load(), 3);
  cache.RefreshAll();
  EXPECT_EQ(fake_.route_calls.load(), 4);
}

TEST_F(RouteCacheTest, FallsBackToTheNextNameServer) {
  RouteCache cache = Cache({"127.0.0.1:1", address_});  // nothing listens on port 1
  EXPECT_TRUE(cache.Get("T").ok());
}

TEST_F(RouteCacheTest, NoNameServerAnsweringIsUnavailableNamingEach) {
  RouteCache cache = Cache({"127.0.0.1:1"});
  auto route = cache.Get("T");
  EXPECT_EQ(route.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(route.status().message(), HasSubstr("127.0.0.1:1"));
}

TEST_F(RouteCacheTest, UnknownTopicIsNotFoundOrEveryMasterForProducers) {
  RouteCache cache = Cache({address_});
  EXPECT_EQ(cache.Get("New").status().code(), absl::StatusCode::kNotFound);
  auto route = cache.Get("New", /*any_master_if_unknown=*/true);
  ASSERT_TRUE(route.ok()) << route.status();
  ASSERT_EQ((*route)->writable.size(), 1u);  // b has no master
  EXPECT_EQ((*route)->writable[0].endpoint, "a-master:1");
  EXPECT_EQ((*route)->writable[0].queue_id, 0);
}

}  // namespace
}  // namespace apogee::sdk
