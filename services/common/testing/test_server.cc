#include "services/common/testing/test_server.h"

#include <chrono>

#include "absl/synchronization/notification.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
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

grpc::Status CallRaw(grpc::Channel* channel, const std::string& method,
                     const std::string& payload) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::Slice slice(payload);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();  // the deadline bounds it
  return status;
}

}  // namespace apogee::testing
