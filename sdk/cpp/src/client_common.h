// What every client shares: option checks and the channels + routes core.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "apogee/client_options.h"
#include "sdk/cpp/src/channels.h"
#include "sdk/cpp/src/route.h"
#include "services/common/concurrency/periodic_task.h"

namespace apogee::sdk {

// Endpoints present and host:port; durations positive.
absl::Status ValidateClientOptions(const ClientOptions& options);

// What every client owns: channels (with its client id) and a route cache
// whose refresher looks for stale or invalidated routes every
// RouteCache::RefreshTick(route_refresh). Thread-safe.
struct ClientCore {
  explicit ClientCore(const ClientOptions& options);
  Channels channels;
  RouteCache routes;
  PeriodicTask refresher;  // declared last: stops first
};

}  // namespace apogee::sdk
