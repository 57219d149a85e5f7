// gRPC's callback server answers a unary or server-streaming call whose
// request payload does not parse with UNIMPLEMENTED and an empty message:
// the status is hard-coded in grpcpp's callback handlers
// (impl/codegen/server_callback_handlers.h), and the service never sees the
// call, so a client cannot tell a garbage payload from a method the server
// lacks. This interceptor notices the failed parse (POST_RECV_MESSAGE
// without a message) and rewrites that status to INVALID_ARGUMENT naming
// the method. Client- and bidi-streaming methods are not covered here: for
// them a failed parse looks exactly like the client's half-close (see
// services/common/rocketmq/reactors.h for how Apogee's streams handle it).
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/support/server_interceptor.h"

namespace apogee {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
UnparsedRequestInterceptorFactory();

// The error text for a request of `method` ("/package.Service/Method") that
// does not parse.
std::string UnparsedRequestMessage(absl::string_view method);

}  // namespace apogee
