// The connection-limit flags of the servers that face clients (broker,
// NameServer): what one connection, and all of them, may cost. Link this
// library only into those binaries.
#pragma once

#include <cstdint>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/server/grpc_server.h"

namespace apogee {

// --max_streams_per_connection, --grpc_memory_bytes, --max_connection_idle,
// --max_connection_age, --min_client_ping_interval, checked; errors name the
// flag, its value and the allowed range.
absl::StatusOr<ConnectionLimits> ConnectionLimitsFromFlags();

// The checks of ConnectionLimitsFromFlags, for limits from elsewhere.
absl::Status ValidateConnectionLimits(const ConnectionLimits& limits);

}  // namespace apogee

ABSL_DECLARE_FLAG(int32_t, max_streams_per_connection);
ABSL_DECLARE_FLAG(int64_t, grpc_memory_bytes);
ABSL_DECLARE_FLAG(absl::Duration, max_connection_idle);
ABSL_DECLARE_FLAG(absl::Duration, max_connection_age);
ABSL_DECLARE_FLAG(absl::Duration, min_client_ping_interval);
