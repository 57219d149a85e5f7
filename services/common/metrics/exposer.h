// Serves a Prometheus registry over HTTP (/metrics). One per process:
// destroying an exposer takes about two seconds (civetweb shutdown).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace apogee {

// Thread-safe: the registry may be updated from any thread.
class MetricsEndpoint {
 public:
  // `listen` is "host:port" (port 0 picks one). Empty listen means metrics
  // are collected but not served.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen, std::shared_ptr<prometheus::Registry> registry);

  // The bound "host:port", or "" when not serving.
  const std::string& bound_address() const { return bound_address_; }

 private:
  MetricsEndpoint() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string bound_address_;
};

}  // namespace apogee
