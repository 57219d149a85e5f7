// The C++ SDK's RouteCache (sdk/cpp/src/route.h) against a real
// apogee-nameserver process on a free port. Broker groups are registered with
// the NameServer's own API (apogee.nameserver.v1 RegisterBroker); no broker
// runs, so the endpoints are names only and never dialled.
#include <signal.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "sdk/cpp/src/route.h"
#include "services/common/clock/clock.h"
#include "services/common/testing/process.h"

#ifndef APOGEE_NAMESERVER_BIN
#error "APOGEE_NAMESERVER_BIN must name the apogee-nameserver binary"
#endif

namespace apogee::sdk {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
using ::apogee::testing::ServiceProcess;
using ::apogee::testing::TempDir;
using ::testing::HasSubstr;

// Broker `name` id `id` serving `topic` with the given queues and permission.
// The expiry is the NameServer's maximum (1 h), so nothing expires mid-test.
nsv1::BrokerRegistration Registration(const std::string& name, int64_t id, int32_t read_queues,
                                      int32_t write_queues, nsv1::TopicPermission permission,
                                      int64_t data_version = 1, const std::string& topic = "T") {
  nsv1::BrokerRegistration r;
  r.set_cluster_name("DefaultCluster");
  r.set_broker_name(name);
  r.set_broker_id(id);
  r.set_client_endpoint(name + (id == 0 ? "-master:1" : "-slave:1"));
  r.set_data_version(data_version);
  r.set_full(true);
  r.mutable_expiry()->set_seconds(3600);
  nsv1::TopicConfig* t = r.add_topics();
  t->set_name(topic);
  t->set_read_queues(read_queues);
  t->set_write_queues(write_queues);
  t->set_permission(permission);
  return r;
}

class RouteCacheTest : public ::testing::Test {
 protected:
  // The NameServer knows topic "T": broker group "a" (master and a slave) with
  // 2 read/write queues, group "b" (slave only, so no master), and group "c"
  // read-only with 3 queues. The registry takes a group's topic config from
  // its master, or from its lowest-id slave when there is none, so b's
  // queues are in the route but only a slave serves them, and c's READ
  // permission is per topic on c's master.
  void SetUp() override {
    auto ns = ServiceProcess::Start("ns", APOGEE_NAMESERVER_BIN, {"--metrics_listen=127.0.0.1:0"},
                                    dir_.path());
    ASSERT_TRUE(ns.ok()) << ns.status();
    nameserver_ = std::move(ns).value();
    address_ = nameserver_->address();
    stub_ = nsv1::NameServer::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
    ASSERT_NO_FATAL_FAILURE(RegisterAll(stub_.get()));
  }

  // The registrations described above, with `a_write_queues` write queues
  // on a's master.
  void RegisterAll(nsv1::NameServer::Stub* stub, int32_t a_write_queues = 2) {
    for (const nsv1::BrokerRegistration& r : {
             Registration("a", 0, 2, a_write_queues, nsv1::TOPIC_PERMISSION_READ_WRITE),
             Registration("a", 1, 2, 2, nsv1::TOPIC_PERMISSION_READ_WRITE),
             Registration("b", 1, 2, 2, nsv1::TOPIC_PERMISSION_READ_WRITE),
             Registration("c", 0, 3, 3, nsv1::TOPIC_PERMISSION_READ),
         }) {
      ASSERT_NO_FATAL_FAILURE(Register(r, stub));
    }
  }

  // Restarts the NameServer on its port: an empty registry, as after a
  // crash, until brokers register again. Waits until the cache's channel
  // is connected again (gRPC backs off reconnecting to a dead peer).
  void RestartNameServer() {
    absl::Status restarted = nameserver_->Restart(/*same_port=*/true);
    ASSERT_TRUE(restarted.ok()) << restarted;
    ASSERT_TRUE(channels_.Get(address_)->WaitForConnected(
        absl::ToChronoTime(absl::Now() + absl::Seconds(10))));
  }

  void Register(const nsv1::BrokerRegistration& r, nsv1::NameServer::Stub* stub = nullptr) {
    if (stub == nullptr) stub = stub_.get();
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    context.set_wait_for_ready(true);  // the NameServer may be restarting
    nsv1::RegisterBrokerRequest request;
    *request.mutable_registration() = r;
    nsv1::RegisterBrokerResponse response;
    grpc::Status status = stub->RegisterBroker(&context, request, &response);
    ASSERT_TRUE(status.ok()) << r.broker_name() << " id " << r.broker_id() << ": "
                             << status.error_message() << "\n"
                             << nameserver_->LogTail();
    ASSERT_FALSE(response.full_registration_required());
  }

  // Changes a's master to `write_queues` write queues (read queues stay 2).
  void SetWriteQueuesOfA(int32_t write_queues) {
    ASSERT_NO_FATAL_FAILURE(
        Register(Registration("a", 0, 2, write_queues, nsv1::TOPIC_PERMISSION_READ_WRITE,
                              /*data_version=*/++a_data_version_)));
  }

  RouteCache Cache(std::vector<std::string> nameservers) {
    return RouteCache(&channels_, std::move(nameservers), absl::Seconds(5), absl::Seconds(30),
                      &clock_);
  }

  TempDir dir_;
  std::unique_ptr<ServiceProcess> nameserver_;
  std::unique_ptr<nsv1::NameServer::Stub> stub_;
  std::string address_;
  int64_t a_data_version_ = 1;
  Channels channels_{"route-test", grpc::InsecureChannelCredentials()};
  ManualClock clock_;
};

TEST_F(RouteCacheTest, WritesToMastersAndReadsFromASlaveOnlyWithoutAMaster) {
  RouteCache cache = Cache({address_});
  auto route = cache.Get("T");
  ASSERT_TRUE(route.ok()) << route.status();
  // a: 2 writable + 2 readable on its master; b has no master: its 2 queues
  // are read from its slave; c is read-only.
  ASSERT_EQ((*route)->writable.size(), 2u);
  EXPECT_EQ((*route)->writable[0].endpoint, "a-master:1");
  EXPECT_EQ((*route)->writable[1].queue_id, 1);
  ASSERT_EQ((*route)->readable.size(), 7u);
  std::map<std::string, int> by_endpoint;
  for (const QueueRef& q : (*route)->readable) by_endpoint[q.endpoint]++;
  EXPECT_EQ(by_endpoint["a-master:1"], 2);
  EXPECT_EQ(by_endpoint["b-slave:1"], 2);
  EXPECT_EQ(by_endpoint["c-master:1"], 3);
}

// The NameServer cannot count GetRoute calls, so each step changes what the
// NameServer answers (a's master re-registers with another number of write
// queues) and checks whether the cache shows the change.
TEST_F(RouteCacheTest, GetServesTheCacheAndRefreshAllFetchesStaleOrInvalidatedRoutes) {
  RouteCache cache = Cache({address_});
  auto first = cache.Get("T");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ((*first)->writable.size(), 2u);

  ASSERT_NO_FATAL_FAILURE(SetWriteQueuesOfA(3));
  auto cached = cache.Get("T");
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->get(), first->get());  // not fetched again
  clock_.Advance(absl::Seconds(29));
  cache.RefreshAll();  // not stale yet
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 2u);

  clock_.Advance(absl::Seconds(1));  // 30 s: the refresh interval
  // A stale route is still served as is: only the refresher fetches.
  EXPECT_EQ(cache.Get("T").value().get(), first->get());
  cache.RefreshAll();
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 3u);

  ASSERT_NO_FATAL_FAILURE(SetWriteQueuesOfA(4));
  cache.RefreshAll();  // fresh: nothing to do
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 3u);
  cache.Invalidate("T");
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 3u);  // kept until refreshed
  cache.RefreshAll();
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 4u);
}

// The NameServer SIGKILLed: Get keeps answering from the stale route, and
// failed refreshes back off (RefreshTick(30 s) = 1 s, then 2 s, ...).
TEST_F(RouteCacheTest, KeepsTheStaleRouteWhileNoNameServerAnswersAndBacksOff) {
  ASSERT_EQ(RouteCache::RefreshTick(absl::Seconds(30)), absl::Seconds(1));
  RouteCache cache = Cache({address_});
  auto first = cache.Get("T");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(nameserver_->Stop(SIGKILL).ok());

  clock_.Advance(absl::Seconds(30));
  cache.RefreshAll();  // fails: retry in 1 s
  auto stale = cache.Get("T");
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_EQ(stale->get(), first->get());
  clock_.Advance(absl::Seconds(1));
  cache.RefreshAll();  // fails again: retry in 2 s
  EXPECT_EQ(cache.Get("T").value().get(), first->get());

  ASSERT_NO_FATAL_FAILURE(RestartNameServer());
  ASSERT_NO_FATAL_FAILURE(RegisterAll(stub_.get(), /*a_write_queues=*/3));
  clock_.Advance(absl::Seconds(1));
  cache.RefreshAll();  // 1 s into the 2 s backoff: not tried
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 2u);
  clock_.Advance(absl::Seconds(1));
  cache.RefreshAll();
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 3u);
  // A success resets the backoff: the next failure waits 1 s again.
  ASSERT_TRUE(nameserver_->Stop(SIGKILL).ok());
  clock_.Advance(absl::Seconds(30));
  cache.RefreshAll();
  ASSERT_NO_FATAL_FAILURE(RestartNameServer());
  ASSERT_NO_FATAL_FAILURE(RegisterAll(stub_.get(), /*a_write_queues=*/4));
  clock_.Advance(absl::Seconds(1));
  cache.RefreshAll();
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 4u);
}

// A NameServer that has just restarted knows no broker: its NOT_FOUND must
// not wipe a good route; the route changes once the brokers registered.
TEST_F(RouteCacheTest, ARestartedEmptyNameServerDoesNotWipeAGoodRoute) {
  RouteCache cache = Cache({address_});
  auto first = cache.Get("T");
  ASSERT_TRUE(first.ok()) << first.status();
  auto producer_route = cache.Get("P", /*any_master_if_unknown=*/true);  // every master
  ASSERT_TRUE(producer_route.ok()) << producer_route.status();
  ASSERT_EQ((*producer_route)->writable.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(RestartNameServer());

  clock_.Advance(absl::Seconds(30));
  cache.RefreshAll();  // NOT_FOUND, and no cluster for "P": both kept
  EXPECT_EQ(cache.Get("T").value().get(), first->get());
  EXPECT_EQ(cache.Get("P").value().get(), producer_route->get());
  // A topic with no route yet still gets the NameServer's answer.
  EXPECT_EQ(cache.Get("New").status().code(), absl::StatusCode::kNotFound);

  ASSERT_NO_FATAL_FAILURE(RegisterAll(stub_.get(), /*a_write_queues=*/3));
  clock_.Advance(absl::Seconds(1));  // the first backoff
  cache.RefreshAll();
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 3u);
}

// The same with a second NameServer that still knows the topic: the empty
// answer of the first (the one the cache sticks to) sends it to the second.
TEST_F(RouteCacheTest, AnEmptyAnswerFallsThroughToTheNextNameServer) {
  auto ns = ServiceProcess::Start("ns2", APOGEE_NAMESERVER_BIN, {"--metrics_listen=127.0.0.1:0"},
                                  dir_.path());
  ASSERT_TRUE(ns.ok()) << ns.status();
  std::unique_ptr<ServiceProcess> second = std::move(ns).value();
  auto stub = nsv1::NameServer::NewStub(
      grpc::CreateChannel(second->address(), grpc::InsecureChannelCredentials()));
  ASSERT_NO_FATAL_FAILURE(RegisterAll(stub.get(), /*a_write_queues=*/3));

  RouteCache cache = Cache({address_, second->address()});
  ASSERT_EQ(cache.Get("T").value()->writable.size(), 2u);  // from the first
  ASSERT_NO_FATAL_FAILURE(RestartNameServer());
  clock_.Advance(absl::Seconds(30));
  cache.RefreshAll();
  EXPECT_EQ(cache.Get("T").value()->writable.size(), 3u);  // from the second
}

// A route without writable queues (here: group "d" has only a slave) is fetched
// again without waiting for the refresh interval, but with backoff.
TEST_F(RouteCacheTest, AnEmptyRouteIsRefetchedWithBackoffUntilItHasQueues) {
  ASSERT_NO_FATAL_FAILURE(
      Register(Registration("d", 1, 2, 2, nsv1::TOPIC_PERMISSION_READ_WRITE, 1, "S")));
  RouteCache cache = Cache({address_});
  auto empty = cache.Get("S");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE((*empty)->writable.empty());
  EXPECT_EQ((*empty)->readable.size(), 2u);  // from the slave
  cache.RefreshAll();                        // due at once; still empty: next try in 1 s

  ASSERT_NO_FATAL_FAILURE(
      Register(Registration("d", 0, 2, 2, nsv1::TOPIC_PERMISSION_READ_WRITE, 1, "S")));
  cache.RefreshAll();
  EXPECT_TRUE(cache.Get("S").value()->writable.empty());
  clock_.Advance(absl::Seconds(1));
  cache.RefreshAll();
  EXPECT_EQ(cache.Get("S").value()->writable.size(), 2u);
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
  // The real GetClusterInfo lists every live group, c included (the old fake
  // left c out). c is read-only for "T" only: permission is per topic, so its
  // master is a candidate for a new topic. b has no master.
  ASSERT_EQ((*route)->writable.size(), 2u);
  EXPECT_EQ((*route)->writable[0].endpoint, "a-master:1");
  EXPECT_EQ((*route)->writable[0].queue_id, 0);
  EXPECT_EQ((*route)->writable[1].endpoint, "c-master:1");
  EXPECT_EQ((*route)->writable[1].queue_id, 0);
}

}  // namespace
}  // namespace apogee::sdk
