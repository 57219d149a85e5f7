// The one place where absl::Status becomes a wire status. Domain code returns
// absl::Status; adapters call these at the edge and nowhere else.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace apogee {

// Same code and message; the code numbers of absl and gRPC agree.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The inverse, for clients that receive a gRPC status.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace apogee
