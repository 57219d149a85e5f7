#include "services/common/server/connection_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "services/common/config/flags.h"

ABSL_FLAG(int32_t, max_streams_per_connection, 1000,
          "Concurrent calls (HTTP/2 streams) one client connection may have; more wait in the "
          "client (1..100000)");
ABSL_FLAG(int64_t, grpc_memory_bytes, int64_t{1} << 30,
          "Memory gRPC may use for all connections' buffers; under pressure it shrinks them, "
          "then closes connections (16 MiB..1 TiB)");
ABSL_FLAG(absl::Duration, max_connection_idle, absl::Minutes(10),
          "A client connection without calls for this long is closed; 0: never (else 1s..24h)");
ABSL_FLAG(absl::Duration, max_connection_age, absl::ZeroDuration(),
          "A client connection this old is asked to go away once its calls end; 0: never "
          "(else 1m..30d)");
ABSL_FLAG(absl::Duration, min_client_ping_interval, absl::Seconds(5),
          "Keepalive enforcement: a client pinging more often than this without calls gets "
          "GOAWAY too_many_pings; 0: any rate (else 1s..1h)");

namespace apogee {
namespace {

// 0 (off) or min..max.
absl::Status CheckOptionalDuration(const char* flag, absl::Duration value, absl::Duration min,
                                   absl::Duration max) {
  if (value == absl::ZeroDuration()) return absl::OkStatus();
  absl::Status s = CheckDurationFlag(flag, value, min, max);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(s.message(), "; 0 turns it off"));
}

}  // namespace

absl::Status ValidateConnectionLimits(const ConnectionLimits& limits) {
  if (limits.max_streams_per_connection < 1 || limits.max_streams_per_connection > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_streams_per_connection=", limits.max_streams_per_connection,
                     " is out of range (allowed: 1..100000)"));
  }
  constexpr int64_t kMinMemory = int64_t{16} << 20;
  constexpr int64_t kMaxMemory = int64_t{1} << 40;
  if (limits.memory_bytes < kMinMemory || limits.memory_bytes > kMaxMemory) {
    return absl::InvalidArgumentError(absl::StrCat("--grpc_memory_bytes=", limits.memory_bytes,
                                                   " is out of range (allowed: ", kMinMemory, "..",
                                                   kMaxMemory, ", 16 MiB..1 TiB)"));
  }
  if (absl::Status s = CheckOptionalDuration("max_connection_idle", limits.max_idle,
                                             absl::Seconds(1), absl::Hours(24));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckOptionalDuration("max_connection_age", limits.max_age, absl::Minutes(1),
                                             absl::Hours(24 * 30));
      !s.ok()) {
    return s;
  }
  return CheckOptionalDuration("min_client_ping_interval", limits.min_client_ping_interval,
                               absl::Seconds(1), absl::Hours(1));
}

absl::StatusOr<ConnectionLimits> ConnectionLimitsFromFlags() {
  ConnectionLimits limits;
  limits.max_streams_per_connection = absl::GetFlag(FLAGS_max_streams_per_connection);
  limits.memory_bytes = absl::GetFlag(FLAGS_grpc_memory_bytes);
  limits.max_idle = absl::GetFlag(FLAGS_max_connection_idle);
  limits.max_age = absl::GetFlag(FLAGS_max_connection_age);
  limits.min_client_ping_interval = absl::GetFlag(FLAGS_min_client_ping_interval);
  if (absl::Status s = ValidateConnectionLimits(limits); !s.ok()) return s;
  return limits;
}

}  // namespace apogee
