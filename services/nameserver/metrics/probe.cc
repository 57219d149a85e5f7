#include "services/nameserver/metrics/probe.h"

namespace apogee::nameserver {

Probe::Probe(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      registrations_(prometheus::BuildCounter()
                         .Name("apogee_nameserver_registrations_total")
                         .Help("Broker registrations and refreshes by result")
                         .Register(*registry_)),
      removals_(prometheus::BuildCounter()
                    .Name("apogee_nameserver_broker_removals_total")
                    .Help("Broker instances removed from the route table, by reason")
                    .Register(*registry_)),
      route_queries_(prometheus::BuildCounter()
                         .Name("apogee_nameserver_route_queries_total")
                         .Help("Route queries by API and result")
                         .Register(*registry_)),
      live_brokers_(prometheus::BuildGauge()
                        .Name("apogee_nameserver_live_brokers")
                        .Help("Broker instances currently registered")
                        .Register(*registry_)
                        .Add({})),
      broker_groups_(prometheus::BuildGauge()
                         .Name("apogee_nameserver_broker_groups")
                         .Help("Broker groups (broker names) with a live instance")
                         .Register(*registry_)
                         .Add({})),
      topics_(prometheus::BuildGauge()
                  .Name("apogee_nameserver_topics")
                  .Help("Topics served by at least one live broker")
                  .Register(*registry_)
                  .Add({})) {}

void Probe::OnRegistration(const std::string& result) {
  registrations_.Add({{"result", result}}).Increment();
}

void Probe::OnRemoval(RemovalReason reason, int count) {
  if (count > 0) removals_.Add({{"reason", RemovalReasonName(reason)}}).Increment(count);
}

void Probe::OnRouteQuery(const std::string& api, const std::string& result) {
  route_queries_.Add({{"api", api}, {"result", result}}).Increment();
}

void Probe::SetTable(const RegistryStats& stats) {
  live_brokers_.Set(static_cast<double>(stats.live_brokers));
  broker_groups_.Set(static_cast<double>(stats.broker_groups));
  topics_.Set(static_cast<double>(stats.topics));
}

}  // namespace apogee::nameserver
