// grpc.health.v1.Health served from completion queues. gRPC's default
// health service runs on its callback API, whose threads poll and cost
// every call of the process hand-offs (completion_queues.h); GrpcServer
// serves this one instead. Only the whole server ("") is known: Check of
// another name is NOT_FOUND, Watch of one reports SERVICE_UNKNOWN (the
// protocol's rules).
#pragma once

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "services/common/server/async_unary.h"
#include "services/common/server/completion_queues.h"
#include "services/common/server/watch_stream.h"

namespace apogee {

namespace health_v1 = ::grpc::health::v1;

class HealthService final
    : public ServiceWithMethods<health_v1::Health::Service, health_v1::Health::WithRawMethod_Check,
                                health_v1::Health::WithAsyncMethod_Watch>,
      public CompletionQueueUser {
 public:
  HealthService();
  // Starts NOT_SERVING; Check and Watch report each change at once.
  void SetServing(bool serving);

  void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) override;
  void Detach() override;

 private:
  class WatchCall;
  health_v1::HealthCheckResponse::ServingStatus Status(const std::string& service);

  AsyncUnaryMethod<health_v1::HealthCheckRequest, health_v1::HealthCheckResponse> check_;
  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<WatchCall*> watches_ ABSL_GUARDED_BY(mu_);  // started, not over
  LiveCalls watch_calls_;
};

}  // namespace apogee
