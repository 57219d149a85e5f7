// apogee-probe: asks a gRPC server's grpc.health.v1 Health.Check once and
// exits 0 when the answer is SERVING. For container HEALTHCHECKs and
// Kubernetes exec probes, where no shell or grpcurl is available.
//
//   apogee-probe --addr=127.0.0.1:9876 [--service=NAME] [--timeout=2s]
//   apogee-probe --addr=unix:/run/apogee/store.sock
//
// Exit status: 0 SERVING, 1 anything else (NOT_SERVING, SERVICE_UNKNOWN,
// unreachable, timed out), 2 bad flags. One line says which on stdout (0)
// or stderr (1, 2).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, addr, "",
          "Server to ask: HOST:PORT or unix:/path/to.sock (default: $APOGEE_PROBE_ADDR, so an "
          "image's HEALTHCHECK can stay the same for every service)");
ABSL_FLAG(std::string, service, "",
          "Service name to ask about; empty asks about the server as a whole");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(2),
          "Deadline of the whole check, connecting included (10ms..1m)");

namespace {

constexpr int kNotServing = 1;
constexpr int kUsage = 2;

int UsageError(const std::string& message) {
  std::fprintf(stderr, "apogee-probe: error: %s\n", message.c_str());
  return kUsage;
}

// --help lists this file's flags (absl's default filter matches none here).
bool IsProbeFlagFile(absl::string_view file) { return absl::StrContains(file, "tools/probe/"); }

const char* StatusName(grpc::health::v1::HealthCheckResponse::ServingStatus status) {
  using Response = grpc::health::v1::HealthCheckResponse;
  switch (status) {
    case Response::SERVING:
      return "SERVING";
    case Response::NOT_SERVING:
      return "NOT_SERVING";
    case Response::SERVICE_UNKNOWN:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsProbeFlagFile;
  usage.contains_helpshort_flags = IsProbeFlagFile;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "apogee-probe --addr=HOST:PORT|unix:/path [--service=NAME] [--timeout=2s]\n"
      "Exits 0 when the server's grpc.health.v1 Check answers SERVING, 1 otherwise.");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    return UsageError(absl::StrCat("unexpected argument \"", positional[1], "\""));
  }

  std::string addr = absl::GetFlag(FLAGS_addr);
  if (addr.empty()) {
    const char* env = std::getenv("APOGEE_PROBE_ADDR");
    if (env != nullptr) addr = env;
  }
  if (addr.empty()) return UsageError("no address: set --addr=HOST:PORT or APOGEE_PROBE_ADDR");
  if (!absl::StartsWith(addr, "unix:") && addr.rfind(':') == std::string::npos) {
    return UsageError(
        absl::StrCat("--addr \"", addr, "\" has no port (want HOST:PORT or unix:/path)"));
  }
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout < absl::Milliseconds(10) || timeout > absl::Minutes(1)) {
    return UsageError(absl::StrCat("--timeout=", absl::FormatDuration(timeout),
                                   " is out of range (allowed: 10ms..1m)"));
  }

  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  // Wait for the connection within the deadline instead of failing at the
  // first refused attempt: a probe right after start-up should not flap.
  context.set_wait_for_ready(true);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(absl::GetFlag(FLAGS_service));
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);

  const std::string what =
      request.service().empty() ? addr : absl::StrCat(addr, " service \"", request.service(), "\"");
  if (!status.ok()) {
    // The server answers NOT_FOUND for a service it does not know.
    std::fprintf(
        stderr, "apogee-probe: %s: %s (%s)\n", what.c_str(),
        status.error_code() == grpc::StatusCode::NOT_FOUND ? "SERVICE_UNKNOWN" : "UNREACHABLE",
        status.error_message().c_str());
    return kNotServing;
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    std::fprintf(stderr, "apogee-probe: %s: %s\n", what.c_str(), StatusName(response.status()));
    return kNotServing;
  }
  std::printf("apogee-probe: %s: SERVING\n", what.c_str());
  return 0;
}
