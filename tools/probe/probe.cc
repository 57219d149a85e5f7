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
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
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
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

ABSL_FLAG(std::string, addr, "",
          "Server to ask: HOST:PORT or unix:/path/to.sock (default: $APOGEE_PROBE_ADDR, so an "
          "image's HEALTHCHECK can stay the same for every service)");
ABSL_FLAG(std::string, service, "",
          "Service name to ask about; empty asks about the server as a whole");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(2),
          "Deadline of the whole check, connecting included (10ms..1m)");
ABSL_FLAG(bool, tls, false, "Dial TLS (implied by the other --tls_* flags)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle that signs the server's certificate (default: $APOGEE_PROBE_TLS_CA)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate, for a server with --tls_client_auth=require (default: "
          "$APOGEE_PROBE_TLS_CERT)");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key of --tls_cert (default: $APOGEE_PROBE_TLS_KEY)");
ABSL_FLAG(bool, tls_skip_verify, false,
          "Do not verify the server's certificate (like the kubelet's HTTPS probes: a probe of "
          "its own pod over loopback, whose certificate names the pod's DNS names)");

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

// The file's bytes; false (and `error` naming the flag) when unreadable.
bool ReadPem(const char* flag, const std::string& path, std::string* out, std::string* error) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) {
    *error = absl::StrCat("--", flag, " file \"", path, "\" cannot be read");
    return false;
  }
  *out = buffer.str();
  if (out->empty()) {
    *error = absl::StrCat("--", flag, " file \"", path, "\" is missing or empty");
    return false;
  }
  return true;
}

// The flag's value, or else the environment variable's (like --addr, so an
// image's HEALTHCHECK stays the same and containers set the environment).
std::string FlagOrEnv(const absl::Flag<std::string>& flag, const char* env) {
  std::string value = absl::GetFlag(flag);
  if (value.empty()) {
    const char* from_env = std::getenv(env);
    if (from_env != nullptr) value = from_env;
  }
  return value;
}

// Plaintext, or TLS from --tls*; nullptr and `error` on a bad flag.
std::shared_ptr<grpc::ChannelCredentials> Credentials(std::string* error) {
  const std::string ca_file = FlagOrEnv(FLAGS_tls_ca, "APOGEE_PROBE_TLS_CA");
  const std::string cert_file = FlagOrEnv(FLAGS_tls_cert, "APOGEE_PROBE_TLS_CERT");
  const std::string key_file = FlagOrEnv(FLAGS_tls_key, "APOGEE_PROBE_TLS_KEY");
  const bool skip_verify = absl::GetFlag(FLAGS_tls_skip_verify);
  if (!absl::GetFlag(FLAGS_tls) && ca_file.empty() && cert_file.empty() && key_file.empty() &&
      !skip_verify) {
    return grpc::InsecureChannelCredentials();
  }
  if (cert_file.empty() != key_file.empty()) {
    *error = "--tls_cert and --tls_key go together";
    return nullptr;
  }
  std::string ca;
  if (!ca_file.empty() && !ReadPem("tls_ca", ca_file, &ca, error)) return nullptr;
  std::vector<grpc::experimental::IdentityKeyCertPair> identity;
  if (!cert_file.empty()) {
    grpc::experimental::IdentityKeyCertPair pair;
    if (!ReadPem("tls_key", key_file, &pair.private_key, error) ||
        !ReadPem("tls_cert", cert_file, &pair.certificate_chain, error)) {
      return nullptr;
    }
    identity.push_back(std::move(pair));
  }
  grpc::experimental::TlsChannelCredentialsOptions options;
  if (!ca.empty() || !identity.empty()) {
    options.set_certificate_provider(
        std::make_shared<grpc::experimental::StaticDataCertificateProvider>(ca, identity));
    if (!ca.empty()) options.watch_root_certs();
    if (!identity.empty()) options.watch_identity_key_cert_pairs();
  }
  if (skip_verify) {
    options.set_verify_server_certs(false);
    options.set_check_call_host(false);
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  }
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace

int main(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsProbeFlagFile;
  usage.contains_helpshort_flags = IsProbeFlagFile;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "apogee-probe --addr=HOST:PORT|unix:/path [--service=NAME] [--timeout=2s]\n"
      "  [--tls_ca=PEM] [--tls_cert=PEM --tls_key=PEM] [--tls_skip_verify]\n"
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

  std::string tls_error;
  std::shared_ptr<grpc::ChannelCredentials> credentials = Credentials(&tls_error);
  if (credentials == nullptr) return UsageError(tls_error);
  auto channel = grpc::CreateChannel(addr, credentials);
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
