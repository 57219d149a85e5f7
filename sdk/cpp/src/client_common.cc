#include "sdk/cpp/src/client_common.h"

#include "absl/strings/str_cat.h"
#include "services/common/naming/names.h"

namespace apogee::sdk {

absl::Status ValidateClientOptions(const ClientOptions& options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError(
        "endpoints is empty (need at least one NameServer host:port)");
  }
  for (size_t i = 0; i < options.endpoints.size(); ++i) {
    auto parsed = ParseHostPort(absl::StrCat("endpoints[", i, "]"), options.endpoints[i]);
    if (!parsed.ok()) return parsed.status();
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request_timeout is ", absl::FormatDuration(options.request_timeout), " (must be > 0)"));
  }
  if (options.route_refresh < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "route_refresh is ", absl::FormatDuration(options.route_refresh), " (min 100ms)"));
  }
  return absl::OkStatus();
}

ClientCore::ClientCore(const ClientOptions& options)
    : channels(options.client_id.empty() ? NewClientId() : options.client_id, options.access_key,
               options.access_secret),
      routes(&channels, options.endpoints, options.request_timeout, options.route_refresh,
             RealClock::Default()),
      refresher(RouteCache::RefreshTick(options.route_refresh), [this] { routes.RefreshAll(); }) {}

}  // namespace apogee::sdk
