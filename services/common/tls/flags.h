// The TLS flags every Apogee server binary shares (NameServer, broker,
// store): --tls_* for its own gRPC ports, --client_tls_* for the channels
// it opens to other Apogee servers. Link this library only into server
// binaries; the tools define their own client flags.
#pragma once

#include <memory>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"

namespace apogee::tls {

// Credentials for this process's TCP gRPC ports from --tls_cert, --tls_key,
// --tls_ca, --tls_client_auth, --tls_reload_interval (plaintext without
// --tls_cert). Errors name the flag and the file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFlags();

// Applies --client_tls* to every channel this process opens to a TCP target
// through CreateApogeeChannel (services/common/client). Call in main before
// any channel is made.
absl::Status ApplyClientTlsFlags();

}  // namespace apogee::tls

ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_client_auth);
ABSL_DECLARE_FLAG(absl::Duration, tls_reload_interval);
ABSL_DECLARE_FLAG(bool, client_tls);
ABSL_DECLARE_FLAG(std::string, client_tls_ca);
ABSL_DECLARE_FLAG(std::string, client_tls_cert);
ABSL_DECLARE_FLAG(std::string, client_tls_key);
