#include "services/common/metrics/exposer.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace apogee {

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen, std::shared_ptr<prometheus::Registry> registry) {
  auto endpoint = std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint());
  if (listen.empty()) return endpoint;
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen \"", listen, "\" has no port (want host:port)"));
  }
  try {
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on --metrics_listen \"", listen, "\": ", e.what()));
  }
  endpoint->exposer_->RegisterCollectable(registry);
  std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  endpoint->bound_address_ =
      absl::StrCat(listen.substr(0, colon), ":", ports.empty() ? 0 : ports.front());
  return endpoint;
}

}  // namespace apogee
