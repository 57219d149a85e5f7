#include "sdk/cpp/src/client_common.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/security/credentials.h"
#include "services/common/naming/names.h"
#include "services/common/tls/tls.h"

namespace apogee::sdk {
namespace {

tls::ClientTls ToClientTls(const TlsOptions& options) {
  tls::ClientTls out;
  out.enabled = options.enabled;
  out.ca_file = options.ca_file;
  out.cert_file = options.cert_file;
  out.key_file = options.key_file;
  out.reload_interval = options.reload_interval;
  return out;
}

const tls::FlagNames kTlsNames{"tls.cert_file", "tls.key_file", "tls.ca_file"};

std::shared_ptr<grpc::ChannelCredentials> Credentials(const TlsOptions& options) {
  auto credentials = tls::ChannelCredentials(ToClientTls(options), kTlsNames);
  if (credentials.ok()) return *credentials;
  // The files were valid in ValidateClientOptions and vanished since: TLS
  // with the system roots (handshakes fail), never plaintext.
  return grpc::SslCredentials(grpc::SslCredentialsOptions());
}

}  // namespace

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
  return tls::Validate(ToClientTls(options.tls), kTlsNames);
}

ClientCore::ClientCore(const ClientOptions& options)
    : channels(options.client_id.empty() ? NewClientId() : options.client_id,
               Credentials(options.tls), options.access_key, options.access_secret),
      routes(&channels, options.endpoints, options.request_timeout, options.route_refresh,
             RealClock::Default()),
      refresher(RouteCache::RefreshTick(options.route_refresh), [this] { routes.RefreshAll(); }) {}

}  // namespace apogee::sdk
