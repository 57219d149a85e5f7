// Reads the RocketMQ v2 request headers (protocol-v2.md section 5).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace apogee::rocketmq {

// The value of header `key`, or "" when absent.
std::string Header(const grpc::ServerContextBase& context, const std::string& key);

// `x-mq-client-id`, or CLIENT_ID_REQUIRED naming the header.
absl::StatusOr<std::string> RequireClientId(const grpc::ServerContextBase& context);

// The resource name with its namespace applied: the `x-mq-namespace` header
// wins over `resource_namespace`; namespaced names are "<namespace>%<name>".
std::string QualifiedName(const grpc::ServerContextBase& context,
                          const std::string& resource_namespace, const std::string& name);

}  // namespace apogee::rocketmq
