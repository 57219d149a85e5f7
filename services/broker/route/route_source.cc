#include "services/broker/route/route_source.h"

#include <algorithm>

#include "grpcpp/client_context.h"
#include "services/common/client/channel.h"

namespace apogee::broker {

namespace nsv1 = ::apogee::nameserver::v1;

RouteSource::RouteSource(BrokerIdentity self, std::vector<std::string> nameservers,
                         TopicManager* topics)
    : broker_name_(self.broker_name),
      topics_(topics),
      self_(std::move(self)),
      writer_(self_.broker_id == 0) {
  for (const std::string& address : nameservers) {
    stubs_.push_back(nsv1::NameServer::NewStub(CreateApogeeChannel(address)));
  }
}

void RouteSource::SetClientEndpoint(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  self_.client_endpoint = endpoint;
}

void RouteSource::SetWriter(bool writer) {
  absl::MutexLock lock(&mu_);
  writer_ = writer;
}

nsv1::GetRouteResponse RouteSource::LocalRoute(const TopicConfig& config) const {
  absl::MutexLock lock(&mu_);
  nsv1::GetRouteResponse route;
  route.set_topic(config.name());
  nsv1::QueueData* q = route.add_queues();
  q->set_broker_name(self_.broker_name);
  q->set_read_queues(config.read_queues());
  q->set_write_queues(config.write_queues());
  q->set_permission(config.permission());
  q->set_message_type(config.message_type());
  nsv1::BrokerGroup* g = route.add_broker_groups();
  g->set_cluster_name(self_.cluster_name);
  g->set_broker_name(self_.broker_name);
  nsv1::BrokerInstance* b = g->add_brokers();
  // Route ids: 0 for the writer; a configured-0 reader must not look like
  // one (official clients write to id 0 only).
  b->set_broker_id(writer_ ? 0 : std::max<int64_t>(self_.broker_id, 1));
  b->set_configured_id(self_.broker_id);
  b->set_client_endpoint(self_.client_endpoint);
  b->set_ha_endpoint(self_.ha_endpoint);
  return route;
}

absl::StatusOr<nsv1::GetRouteResponse> RouteSource::Route(const std::string& topic) {
  for (auto& stub : stubs_) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    nsv1::GetRouteRequest request;
    request.set_topic(topic);
    nsv1::GetRouteResponse response;
    grpc::Status status = stub->GetRoute(&context, request, &response);
    if (status.ok()) {
      // A fresh local topic may not have reached the NameServers yet.
      bool has_self = false;
      for (const nsv1::QueueData& q : response.queues()) {
        has_self |= q.broker_name() == broker_name_;
      }
      auto local = topics_->Get(topic);
      if (has_self || !local.ok()) return response;
      break;
    }
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) break;
    // Unreachable NameServer: try the next, then fall back to local topics.
  }
  auto config = topics_->GetOrAutoCreate(topic);
  if (!config.ok()) return config.status();
  return LocalRoute(*config);
}

}  // namespace apogee::broker
