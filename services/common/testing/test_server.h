// An Apogee gRPC server (GrpcServer: the same interceptors and options as the
// processes) serving services of the test's own process on 127.0.0.1:0, with
// a channel to it: for tests of reactors and interceptors over real gRPC.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "services/common/server/grpc_server.h"

namespace apogee::testing {

struct TestServer {
  std::unique_ptr<GrpcServer> server;
  std::shared_ptr<grpc::Channel> channel;
};

// `services` must outlive the server.
absl::StatusOr<TestServer> StartTestServer(const std::vector<grpc::Service*>& services);

// Sends `payload` as the raw request of `method` ("/package.Service/Method")
// and returns the call's status (DEADLINE_EXCEEDED after 20 s).
grpc::Status CallRaw(grpc::Channel* channel, const std::string& method, const std::string& payload);

}  // namespace apogee::testing
