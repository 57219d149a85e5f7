// The NameServer's Prometheus families. Business code calls the probe
// (`probe.OnRouteQuery(...)`), never the registry.
#pragma once

#include <memory>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/nameserver/registry/registry.h"

namespace apogee::nameserver {

// Thread-safe (prometheus-cpp metrics are atomic).
class Probe {
 public:
  explicit Probe(std::shared_ptr<prometheus::Registry> registry);

  // Registration outcomes: "ok", "full_required", "rejected".
  void OnRegistration(const std::string& result);
  void OnRemoval(RemovalReason reason, int count);
  // api: "v1" (apogee.nameserver.v1) or "v2" (RocketMQ QueryRoute);
  // result: "ok", "not_found", "invalid".
  void OnRouteQuery(const std::string& api, const std::string& result);
  void SetTable(const RegistryStats& stats);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& registrations_;
  prometheus::Family<prometheus::Counter>& removals_;
  prometheus::Family<prometheus::Counter>& route_queries_;
  prometheus::Gauge& live_brokers_;
  prometheus::Gauge& broker_groups_;
  prometheus::Gauge& topics_;
};

}  // namespace apogee::nameserver
