// Starts a gRPC server the way every Apogee process wants it: callback API
// services, grpc.health.v1 health service, server reflection, large message
// limits, the bound address published for tests, and graceful shutdown.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"

namespace apogee {

struct GrpcServerOptions {
  // "host:port" (port 0 picks a free one) or "unix:/path/to.sock".
  std::string listen;
  // The RocketMQ proxy accepts 130 MiB; a 4 MiB body plus properties must fit.
  int max_receive_message_bytes = 130 * 1024 * 1024;
  int max_send_message_bytes = 130 * 1024 * 1024;
  // Keepalive pings to peers: a dead peer is noticed within about
  // keepalive_ms + keepalive_timeout_ms.
  int keepalive_ms = 10'000;
  int keepalive_timeout_ms = 5'000;
  // TLS for a host:port listen (services/common/tls); null: plaintext.
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

// Thread-safe after Start(). Shutdown() may be called from any thread once.
class GrpcServer {
 public:
  // Starts serving `services` (not owned; they must outlive the server).
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, const std::vector<grpc::Service*>& services);

  ~GrpcServer();

  // The address actually bound, with the real port when 0 was asked for.
  const std::string& bound_address() const { return bound_address_; }

  // Marks the server NOT_SERVING, lets in-flight calls finish for `grace`,
  // then cancels the rest.
  void Shutdown(absl::Duration grace);

  grpc::Server* server() { return server_.get(); }

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, std::string bound_address)
      : server_(std::move(server)), bound_address_(std::move(bound_address)) {}

  std::unique_ptr<grpc::Server> server_;
  std::string bound_address_;
  bool shut_down_ = false;
};

// Blocks SIGTERM and SIGINT in the calling thread and every thread it
// creates afterwards. Call first thing in main, before any thread starts.
void BlockTerminationSignals();

// Waits (in the calling thread) until SIGTERM or SIGINT arrives; returns it.
int WaitForTerminationSignal();

// Writes `contents` to `path` atomically (write a temp file, rename).
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents);

// Writes the --address_file (if the flag is set) once a process is fully up:
// `grpc=HOST:PORT` and, when serving metrics, `metrics=HOST:PORT` lines.
// Tests start servers on port 0 and read the real ports from it.
absl::Status PublishAddresses(const std::string& grpc_address, const std::string& metrics_address);

}  // namespace apogee

// Shared by every server binary: where to publish the bound address.
ABSL_DECLARE_FLAG(std::string, address_file);
