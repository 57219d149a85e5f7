#include "services/common/tls/flags.h"

#include "absl/flags/flag.h"
#include "services/common/client/channel.h"
#include "services/common/tls/tls.h"

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve TLS only on the gRPC port(s) (plaintext when empty)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle that signs client certificates (for --tls_client_auth)");
ABSL_FLAG(std::string, tls_client_auth, "none",
          "Client certificates (mTLS): none, request (verified when sent) or require");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Minutes(1),
          "How often the --tls_* and --client_tls_* files are re-read (rotation without "
          "restart; min 1s)");
ABSL_FLAG(bool, client_tls, false,
          "Dial other Apogee servers (NameServers, stores over TCP, brokers) over TLS; implied "
          "by --client_tls_ca");
ABSL_FLAG(std::string, client_tls_ca, "",
          "PEM CA bundle that signs the servers' certificates (default: system roots)");
ABSL_FLAG(std::string, client_tls_cert, "",
          "PEM client certificate presented to servers that ask for one (mTLS)");
ABSL_FLAG(std::string, client_tls_key, "", "PEM private key of --client_tls_cert");

namespace apogee::tls {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFlags() {
  ServerTls tls;
  tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  tls.key_file = absl::GetFlag(FLAGS_tls_key);
  tls.ca_file = absl::GetFlag(FLAGS_tls_ca);
  auto client_auth = ParseClientAuth("--tls_client_auth", absl::GetFlag(FLAGS_tls_client_auth));
  if (!client_auth.ok()) return client_auth.status();
  tls.client_auth = *client_auth;
  tls.reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  return ServerCredentials(tls);
}

absl::Status ApplyClientTlsFlags() {
  ClientTls tls;
  tls.ca_file = absl::GetFlag(FLAGS_client_tls_ca);
  tls.cert_file = absl::GetFlag(FLAGS_client_tls_cert);
  tls.key_file = absl::GetFlag(FLAGS_client_tls_key);
  tls.enabled = absl::GetFlag(FLAGS_client_tls) || !tls.ca_file.empty() || !tls.cert_file.empty();
  tls.reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  auto credentials = ChannelCredentials(
      tls, FlagNames{"--client_tls_cert", "--client_tls_key", "--client_tls_ca"});
  if (!credentials.ok()) return credentials.status();
  SetDefaultChannelCredentials(*credentials);
  return absl::OkStatus();
}

}  // namespace apogee::tls
