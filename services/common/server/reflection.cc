#include "services/common/server/reflection.h"

#include "grpcpp/ext/proto_server_reflection_plugin.h"

namespace apogee {

void EnableServerReflection() { grpc::reflection::InitProtoReflectionServerBuilderPlugin(); }

}  // namespace apogee
