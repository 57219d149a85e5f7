// Starts a gRPC server the way every Apogee process wants it: callback API
// services, grpc.health.v1 health service, server reflection, large message
// limits, the bound address published for tests, and graceful shutdown.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"

namespace apogee {

class CompletionQueueUser;  // completion_queues.h
class HealthService;        // health_service.h

// What connections may cost a server (services/common/server/README.md).
// Zero leaves gRPC's default (no limit) for each.
struct ConnectionLimits {
  // Concurrent calls (HTTP/2 streams) per connection; more wait in the
  // client until one ends (GRPC_ARG_MAX_CONCURRENT_STREAMS).
  int max_streams_per_connection = 0;
  // Memory gRPC may hold for all connections (its ResourceQuota): read and
  // write buffers shrink under pressure, then connections are closed.
  int64_t memory_bytes = 0;
  // A connection without calls for this long is closed (GOAWAY).
  absl::Duration max_idle = absl::ZeroDuration();
  // A connection this old is asked to go away (its calls may finish; the
  // client reconnects, e.g. to another replica).
  absl::Duration max_age = absl::ZeroDuration();
  // Keepalive enforcement: a client pinging more often than this (without
  // data) more than twice gets GOAWAY "too_many_pings". Zero: any rate.
  absl::Duration min_client_ping_interval = absl::ZeroDuration();
};

struct GrpcServerOptions {
  // "host:port" (port 0 picks a free one) or "unix:/path/to.sock".
  std::string listen;
  std::string listen_flag = "--listen";  // named in errors
  // The RocketMQ proxy accepts 130 MiB; a 4 MiB body plus properties must fit.
  int max_receive_message_bytes = 130 * 1024 * 1024;
  int max_send_message_bytes = 130 * 1024 * 1024;
  // Keepalive pings to peers: a dead peer is noticed within about
  // keepalive_ms + keepalive_timeout_ms.
  int keepalive_ms = 10'000;
  int keepalive_timeout_ms = 5'000;
  // TLS for a host:port listen (services/common/tls); null: plaintext.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  ConnectionLimits connections;
  // Users of the server's completion queue besides its services (not
  // owned; attached after the services, detached after them).
  std::vector<CompletionQueueUser*> queue_users;
  // One more host:port on the same server (and the same polling thread),
  // e.g. the store's --ha_listen: `flag` is named in errors; `credentials`
  // null means plaintext. Its bound address is extra_bound_address().
  std::string extra_listen;
  std::string extra_listen_flag;
  std::shared_ptr<grpc::ServerCredentials> extra_credentials;
};

// Thread-safe after Start(). Shutdown() may be called from any thread once.
class GrpcServer {
 public:
  // Starts serving `services` (not owned; they must outlive the server).
  // Those that are also CompletionQueueUsers get completion queues.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, const std::vector<grpc::Service*>& services);

  ~GrpcServer();

  // The address actually bound, with the real port when 0 was asked for.
  const std::string& bound_address() const { return bound_address_; }
  const std::string& extra_bound_address() const { return extra_bound_address_; }

  // Marks the server NOT_SERVING, lets in-flight calls finish for `grace`,
  // then cancels the rest; then stops the completion-queue pollers.
  void Shutdown(absl::Duration grace);

  grpc::Server* server() { return server_.get(); }
  // What grpc.health.v1 reports for the server (SERVING from Start until
  // Shutdown); a draining process sets it false first.
  void SetServing(bool serving);

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, std::string bound_address,
             std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues);

  std::unique_ptr<HealthService> health_;  // outlives server_
  std::unique_ptr<grpc::Server> server_;
  std::string bound_address_;
  std::string extra_bound_address_;
  // Shut down after server_ (gRPC's rule); each drained by its poller.
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> pollers_;
  std::vector<CompletionQueueUser*> queue_users_;
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
// `grpc=HOST:PORT` and, when serving metrics, `metrics=HOST:PORT` lines, and
// `admin=HOST:PORT` for a broker with --admin_listen. Tests start servers on
// port 0 and read the real ports from it.
absl::Status PublishAddresses(const std::string& grpc_address, const std::string& metrics_address,
                              const std::string& admin_address = "");

}  // namespace apogee

// Shared by every server binary: where to publish the bound address.
ABSL_DECLARE_FLAG(std::string, address_file);
