#include "services/broker/ha/writer_lookup.h"

#include <utility>

#include "grpcpp/client_context.h"
#include "services/common/client/channel.h"

namespace apogee::broker::ha {

namespace nsv1 = ::apogee::nameserver::v1;

std::optional<WriterLocation> FindWriter(const nsv1::GetClusterInfoResponse& info,
                                         const std::string& cluster, const std::string& broker_name,
                                         int64_t self_id) {
  for (const nsv1::Cluster& c : info.clusters()) {
    if (c.name() != cluster) continue;
    for (const nsv1::BrokerGroup& g : c.broker_groups()) {
      if (g.broker_name() != broker_name) continue;
      for (const nsv1::BrokerInstance& b : g.brokers()) {
        // Route id 0 is the writer (the NameServer's rule).
        if (b.broker_id() != 0 || b.configured_id() == self_id || b.ha_endpoint().empty()) {
          continue;
        }
        return WriterLocation{b.ha_endpoint(), b.client_endpoint(), b.configured_id(), b.epoch()};
      }
    }
  }
  return std::nullopt;
}

WriterLookup::WriterLookup(BrokerIdentity self, const std::vector<std::string>& nameservers)
    : self_(std::move(self)) {
  for (const std::string& address : nameservers) {
    nameservers_.push_back(nsv1::NameServer::NewStub(CreateApogeeChannel(address)));
  }
}

std::optional<WriterLocation> WriterLookup::Find(
    absl::Duration per_call, absl::FunctionRef<bool(const WriterLocation&)> accept) {
  for (auto& stub : nameservers_) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + per_call));
    nsv1::GetClusterInfoResponse info;
    if (!stub->GetClusterInfo(&context, nsv1::GetClusterInfoRequest(), &info).ok()) continue;
    std::optional<WriterLocation> writer =
        FindWriter(info, self_.cluster_name, self_.broker_name, self_.broker_id);
    if (writer.has_value() && accept(*writer)) return writer;
  }
  return std::nullopt;
}

}  // namespace apogee::broker::ha
