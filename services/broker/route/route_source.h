// Where the broker gets topic routes for QueryRoute and QueryAssignment
// when a client uses the broker itself as its access point: the NameServers
// (every broker of the cluster), else this broker's own topics.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "services/broker/route/registrar.h"
#include "services/broker/topic/topic_manager.h"

namespace apogee::broker {

// Thread-safe; blocking (NameServer calls): use from worker threads.
class RouteSource {
 public:
  RouteSource(BrokerIdentity self, std::vector<std::string> nameservers, TopicManager* topics);

  // The route of `topic`. Auto-creates it on this broker when allowed and no
  // broker serves it yet (so v2 producers, which ask for a route before
  // sending, can use auto-created topics).
  absl::StatusOr<nameserver::v1::GetRouteResponse> Route(const std::string& topic);

  // Set once the server bound its port.
  void SetClientEndpoint(const std::string& endpoint);
  // The replication role (services/broker/ha): a local route lists this
  // broker as writable (id 0) only while it is its group's writer.
  void SetWriter(bool writer);

 private:
  nameserver::v1::GetRouteResponse LocalRoute(const TopicConfig& config) const;

  const std::string broker_name_;
  TopicManager* const topics_;
  std::vector<std::unique_ptr<nameserver::v1::NameServer::Stub>> stubs_;
  mutable absl::Mutex mu_;
  BrokerIdentity self_ ABSL_GUARDED_BY(mu_);
  // Until told otherwise, id 0 writes (static roles).
  bool writer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::broker
