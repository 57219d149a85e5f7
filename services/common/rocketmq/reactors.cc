#include "services/common/rocketmq/reactors.h"

#include "absl/strings/str_cat.h"

namespace apogee::rocketmq {

int TelemetryMethodIndex() {
  static const int index = MethodIndex("apache.rocketmq.v2.MessagingService.Telemetry");
  return index;
}

grpc::internal::MethodHandler* TelemetryHandler(
    std::function<TelemetryReactor*(grpc::CallbackServerContext*)> open) {
  return RawBidiHandler([open = std::move(open)](grpc::CallbackServerContext* context) {
    return static_cast<RawBidiReactor*>(open(context));
  });
}

}  // namespace apogee::rocketmq
