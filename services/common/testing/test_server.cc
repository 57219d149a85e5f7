#include "services/common/testing/test_server.h"

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace apogee::testing {

absl::StatusOr<TestServer> StartTestServer(const std::vector<grpc::Service*>& services) {
  GrpcServerOptions options;
  options.listen = "127.0.0.1:0";
  auto server = GrpcServer::Start(options, services);
  if (!server.ok()) return server.status();
  TestServer out;
  out.channel = grpc::CreateChannel((*server)->bound_address(), grpc::InsecureChannelCredentials());
  out.server = std::move(server).value();
  return out;
}

}  // namespace apogee::testing
