// gRPC channels the way Apogee processes dial each other: keepalive pings so
// a dead peer breaks streams in seconds, and large message limits.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"

namespace apogee {

// The credentials CreateApogeeChannel(target) uses for host:port targets:
// plaintext until set. A process sets them once, in main, before it makes
// any channel (services/common/tls/flags.h does it from --client_tls*).
void SetDefaultChannelCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials);

// `target` is "host:port" (the default credentials above) or "unix:/path"
// (always plaintext: a local socket guarded by file permissions).
std::shared_ptr<grpc::Channel> CreateApogeeChannel(const std::string& target);

// The same with explicit credentials (the SDK: one set per client).
std::shared_ptr<grpc::Channel> CreateApogeeChannel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials);

}  // namespace apogee
