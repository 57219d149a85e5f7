#include "services/common/client/channel.h"

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace apogee {
namespace {

struct DefaultCredentials {
  absl::Mutex mu;
  std::shared_ptr<grpc::ChannelCredentials> credentials ABSL_GUARDED_BY(mu);
};

DefaultCredentials& Defaults() {
  static auto* defaults = new DefaultCredentials();  // never destroyed: used until exit
  return *defaults;
}

}  // namespace

void SetDefaultChannelCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials) {
  DefaultCredentials& defaults = Defaults();
  absl::MutexLock lock(&defaults.mu);
  defaults.credentials = std::move(credentials);
}

std::shared_ptr<grpc::Channel> CreateApogeeChannel(const std::string& target) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!absl::StartsWith(target, "unix:")) {
    DefaultCredentials& defaults = Defaults();
    absl::MutexLock lock(&defaults.mu);
    credentials = defaults.credentials;
  }
  return CreateApogeeChannel(target, std::move(credentials));
}

std::shared_ptr<grpc::Channel> CreateApogeeChannel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials) {
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetMaxReceiveMessageSize(130 * 1024 * 1024);
  args.SetMaxSendMessageSize(130 * 1024 * 1024);
  // Reconnect quickly after a peer restarts (default backoff grows to 120 s).
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
  return grpc::CreateCustomChannel(target, credentials, args);
}

}  // namespace apogee
