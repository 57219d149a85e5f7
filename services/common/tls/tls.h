// TLS for Apogee's gRPC ports and channels, on gRPC's own machinery: a
// FileWatcherCertificateProvider re-reads the PEM files every reload
// interval, so rotated certificates reach new connections without a
// restart. The files are checked once up front (present, readable, PEM,
// key matches certificate) so a bad path fails start-up with a clear error
// instead of handshakes failing later. See README.md.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace apogee::tls {

// Whether a TLS server asks clients for a certificate (mTLS).
enum class ClientAuth {
  kNone,     // no client certificate
  kRequest,  // asked for; verified against the CA when sent, optional
  kRequire,  // must be sent and verify against the CA
};

// "none" | "request" | "require"; the error names `flag` and the choices.
absl::StatusOr<ClientAuth> ParseClientAuth(absl::string_view flag, absl::string_view text);

// A server port's TLS. Disabled (plaintext) when cert_file is empty.
struct ServerTls {
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
  std::string ca_file;    // PEM roots that sign client certificates
  ClientAuth client_auth = ClientAuth::kNone;
  absl::Duration reload_interval = absl::Minutes(1);

  bool enabled() const { return !cert_file.empty(); }
};

// A client's TLS to Apogee servers. Disabled (plaintext) unless `enabled`.
struct ClientTls {
  bool enabled = false;
  std::string ca_file;    // PEM roots that sign server certificates; empty: system roots
  std::string cert_file;  // optional client certificate (mTLS), with key_file
  std::string key_file;
  absl::Duration reload_interval = absl::Minutes(1);
};

// Flag names, for error messages: which flag named which file.
struct FlagNames {
  std::string cert = "--tls_cert";
  std::string key = "--tls_key";
  std::string ca = "--tls_ca";
};

// Checks the files and the combination (a key with a certificate, a CA for
// client_auth request/require). Errors name the flag, the file and the
// problem: missing, unreadable, not PEM, key not matching the certificate.
absl::Status Validate(const ServerTls& tls, const FlagNames& names = {});
absl::Status Validate(const ClientTls& tls, const FlagNames& names = {});

// Validates, then builds credentials that re-read the files every
// reload_interval. Plaintext credentials when TLS is disabled.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ServerTls& tls, const FlagNames& names = {});
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientTls& tls, const FlagNames& names = {});

}  // namespace apogee::tls
