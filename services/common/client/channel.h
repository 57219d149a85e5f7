// gRPC channels the way Apogee processes dial each other: keepalive pings so
// a dead peer breaks streams in seconds, and large message limits.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/channel.h"

namespace apogee {

// `target` is "host:port" or "unix:/path". Plaintext.
std::shared_ptr<grpc::Channel> CreateApogeeChannel(const std::string& target);

}  // namespace apogee
