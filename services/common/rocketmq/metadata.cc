#include "services/common/rocketmq/metadata.h"

#include "absl/strings/str_cat.h"
#include "services/common/status/v2_status.h"

namespace apogee::rocketmq {

std::string Header(const grpc::ServerContextBase& context, const std::string& key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

absl::StatusOr<std::string> RequireClientId(const grpc::ServerContextBase& context) {
  std::string client_id = Header(context, "x-mq-client-id");
  if (client_id.empty()) {
    return WithV2Code(absl::InvalidArgumentError(
                          "header x-mq-client-id is missing (every RocketMQ v2 client sends it)"),
                      apache::rocketmq::v2::CLIENT_ID_REQUIRED);
  }
  return client_id;
}

std::string QualifiedName(const grpc::ServerContextBase& context,
                          const std::string& resource_namespace, const std::string& name) {
  std::string ns = Header(context, "x-mq-namespace");
  if (ns.empty()) ns = resource_namespace;
  return ns.empty() ? name : absl::StrCat(ns, "%", name);
}

}  // namespace apogee::rocketmq
