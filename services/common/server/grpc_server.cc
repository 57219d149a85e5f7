#include "services/common/server/grpc_server.h"

#include <signal.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "services/common/server/completion_queues.h"
#include "services/common/server/health_service.h"
#include "services/common/server/unparsed_request.h"

namespace apogee {

namespace {

// `listen` ("host:port") with the port the server bound.
std::string WithPort(const std::string& listen, int port) {
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
}

int Millis(absl::Duration d) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d), INT32_MAX));
}

void ApplyConnectionLimits(const ConnectionLimits& limits, grpc::ServerBuilder* builder) {
  if (limits.min_client_ping_interval > absl::ZeroDuration()) {
    builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                                Millis(limits.min_client_ping_interval));
    builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  } else {
    builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
    builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);  // never enforced
  }
  if (limits.max_streams_per_connection > 0) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_streams_per_connection);
  }
  if (limits.max_idle > absl::ZeroDuration()) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, Millis(limits.max_idle));
  }
  if (limits.max_age > absl::ZeroDuration()) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Millis(limits.max_age));
  }
  if (limits.memory_bytes > 0) {
    grpc::ResourceQuota quota("apogee-server");
    quota.Resize(static_cast<size_t>(limits.memory_bytes));
    builder->SetResourceQuota(quota);  // the builder keeps its own reference
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& options, const std::vector<grpc::Service*>& services) {
  const bool is_unix = absl::StartsWith(options.listen, "unix:");
  if (!is_unix) {
    // Validate early so a typo gets a clear error instead of gRPC's log spam.
    size_t colon = options.listen.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.listen_flag, " \"", options.listen,
                       "\" has no port (want host:port or unix:/path)"));
    }
  }
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(
      options.listen,
      options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
      is_unix ? nullptr : &selected_port);
  int extra_port = 0;
  if (!options.extra_listen.empty()) {
    builder.AddListeningPort(options.extra_listen,
                             options.extra_credentials != nullptr
                                 ? options.extra_credentials
                                 : grpc::InsecureServerCredentials(),
                             &extra_port);
  }
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // Ping idle peers so a dead connection (a broker whose host vanished) ends
  // its streams in seconds, and accept the same pings from our clients.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, options.keepalive_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options.keepalive_timeout_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  ApplyConnectionLimits(options.connections, &builder);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
  // Services first: at shutdown they wait for their calls, which may still
  // need the other users (the broker's store appends) to be answered.
  // Our own grpc.health.v1 (health_service.h says why not gRPC's).
  auto health = std::make_unique<HealthService>();
  builder.RegisterService(health.get());
  std::vector<CompletionQueueUser*> queue_users = {health.get()};
  for (grpc::Service* service : services) {
    builder.RegisterService(service);
    if (auto* user = dynamic_cast<CompletionQueueUser*>(service)) queue_users.push_back(user);
  }
  for (CompletionQueueUser* user : options.queue_users) queue_users.push_back(user);
  // One queue and one poller: every thread waiting on a polling queue takes
  // turns in the poller (completion_queues.h), so a second would cost
  // switches, not save them.
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  queues.push_back(builder.AddCompletionQueue());
  {
    // A garbage payload gets INVALID_ARGUMENT naming the method, not gRPC's
    // bare UNIMPLEMENTED (see unparsed_request.h).
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(UnparsedRequestInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || (!is_unix && selected_port == 0) ||
      (!options.extra_listen.empty() && extra_port == 0)) {
    const bool extra = server != nullptr && (is_unix || selected_port != 0);
    if (server != nullptr) {  // started on the first port: stop it cleanly
      server->Shutdown();
      for (auto& queue : queues) {
        queue->Shutdown();
        void* tag = nullptr;
        bool ok = false;
        while (queue->Next(&tag, &ok)) {
        }
      }
    }
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", extra ? options.extra_listen_flag : options.listen_flag,
                     " \"", extra ? options.extra_listen : options.listen,
                     "\" (address in use, or not an address of this host)"));
  }
  std::string bound = options.listen;
  if (!is_unix) bound = WithPort(options.listen, selected_port);
  auto out =
      std::unique_ptr<GrpcServer>(new GrpcServer(std::move(server), bound, std::move(queues)));
  out->health_ = std::move(health);
  if (extra_port != 0) out->extra_bound_address_ = WithPort(options.extra_listen, extra_port);
  out->queue_users_ = queue_users;
  std::vector<grpc::ServerCompletionQueue*> raw;
  for (const auto& queue : out->queues_) raw.push_back(queue.get());
  for (CompletionQueueUser* user : queue_users) user->Attach(raw);
  out->health_->SetServing(true);
  return out;
}

GrpcServer::GrpcServer(std::unique_ptr<grpc::Server> server, std::string bound_address,
                       std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues)
    : server_(std::move(server)),
      bound_address_(std::move(bound_address)),
      queues_(std::move(queues)) {
  for (auto& queue : queues_) {
    pollers_.emplace_back([queue = queue.get()] { PollCompletionQueue(queue); });
  }
}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

void GrpcServer::SetServing(bool serving) { health_->SetServing(serving); }

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  health_->SetServing(false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  // Nothing may reach a queue after its shutdown: wait for the calls the
  // handlers still hold (gRPC's Shutdown does not) and for the waiting
  // requests to come back failed.
  for (CompletionQueueUser* user : queue_users_) user->Detach();
  for (auto& queue : queues_) queue->Shutdown();
  for (std::thread& poller : pollers_) poller.join();
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int signal_number = 0;
  while (sigwait(&set, &signal_number) != 0) {
  }
  return signal_number;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << contents;
    out.close();
    if (!out) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::Status PublishAddresses(const std::string& grpc_address, const std::string& metrics_address,
                              const std::string& admin_address) {
  const std::string path = absl::GetFlag(FLAGS_address_file);
  if (path.empty()) return absl::OkStatus();
  std::string contents = absl::StrCat("grpc=", grpc_address, "\n");
  if (!metrics_address.empty()) absl::StrAppend(&contents, "metrics=", metrics_address, "\n");
  if (!admin_address.empty()) absl::StrAppend(&contents, "admin=", admin_address, "\n");
  return WriteFileAtomically(path, contents);
}

}  // namespace apogee

ABSL_FLAG(std::string, address_file, "",
          "If set, write the bound gRPC address here once serving (for tests and scripts)");
