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
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "services/common/server/unparsed_request.h"

namespace apogee {

namespace {

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
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(
      options.listen,
      options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
      is_unix ? nullptr : &selected_port);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // Ping idle peers so a dead connection (a broker whose host vanished) ends
  // its streams in seconds, and accept the same pings from our clients.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, options.keepalive_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options.keepalive_timeout_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  ApplyConnectionLimits(options.connections, &builder);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
  for (grpc::Service* service : services) builder.RegisterService(service);
  {
    // A garbage payload gets INVALID_ARGUMENT naming the method, not gRPC's
    // bare UNIMPLEMENTED (see unparsed_request.h).
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(UnparsedRequestInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || (!is_unix && selected_port == 0)) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_flag, " \"", options.listen,
                     "\" (address in use, or not an address of this host)"));
  }
  std::string bound = options.listen;
  if (!is_unix) {
    bound = absl::StrCat(options.listen.substr(0, options.listen.rfind(':')), ":", selected_port);
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  auto out = std::unique_ptr<GrpcServer>(new GrpcServer(std::move(server), bound));
  return out;
}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
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
