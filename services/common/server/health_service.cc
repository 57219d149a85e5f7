#include "services/common/server/health_service.h"

#include <optional>
#include <string>

namespace apogee {

using health_v1::HealthCheckRequest;
using health_v1::HealthCheckResponse;

// One Watch stream: writes the status when it started and each change
// after (only the latest, if several came during a write) until the call
// ends. Changes come under the service's lock (SetServing).
class HealthService::WatchCall final : public WatchStream<HealthCheckRequest, HealthCheckResponse> {
 public:
  WatchCall(HealthService* service, grpc::ServerCompletionQueue* queue)
      : WatchStream(
            queue,
            [service](grpc::ServerContext* context, HealthCheckRequest* request,
                      grpc::ServerAsyncWriter<HealthCheckResponse>* writer,
                      grpc::ServerCompletionQueue* queue, void* tag) {
              service->RequestWatch(context, request, writer, queue, queue, tag);
            },
            &service->watch_calls_),
        service_(service) {}

  // Under the service's lock.
  void Update(HealthCheckResponse::ServingStatus status) {
    absl::MutexLock lock(&mu_);
    pending_ = status;
    WriteLocked();
  }

 private:
  void OnStart() override {
    (new WatchCall(service_, queue()))->Start();
    absl::MutexLock lock(&service_->mu_);
    service_->watches_.insert(this);
    Update(service_->Status(request().service()));
  }
  bool TakeLocked(HealthCheckResponse* out) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!pending_.has_value()) return false;
    out->set_status(*pending_);
    pending_.reset();
    return true;
  }
  void OnEnd() override {
    absl::MutexLock lock(&service_->mu_);
    service_->watches_.erase(this);  // no Update after this
  }

  HealthService* const service_;
  std::optional<HealthCheckResponse::ServingStatus> pending_ ABSL_GUARDED_BY(mu_);
};

HealthService::HealthService()
    : check_(
          "/grpc.health.v1.Health/Check",
          [this](grpc::ServerContext* context, grpc::ByteBuffer* raw,
                 grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* writer,
                 grpc::ServerCompletionQueue* queue,
                 void* tag) { RequestCheck(context, raw, writer, queue, queue, tag); },
          [this](grpc::ServerContext*, const HealthCheckRequest* request,
                 HealthCheckResponse* response, std::function<void(const grpc::Status&)> finish) {
            HealthCheckResponse::ServingStatus status;
            {
              absl::MutexLock lock(&mu_);
              status = Status(request->service());
            }
            if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
              finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                  "unknown service \"" + request->service() +
                                      "\" (this server reports only \"\")"));
              return;
            }
            response->set_status(status);
            finish(grpc::Status::OK);
          }) {}

HealthCheckResponse::ServingStatus HealthService::Status(const std::string& service) {
  if (!service.empty()) return HealthCheckResponse::SERVICE_UNKNOWN;
  return serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

void HealthService::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (serving_ == serving) return;
  serving_ = serving;
  for (WatchCall* watch : watches_) watch->Update(Status(""));
}

void HealthService::Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) {
  for (grpc::ServerCompletionQueue* queue : queues) {
    check_.ServeOn(queue, 2);
    (new WatchCall(this, queue))->Start();
  }
}

void HealthService::Detach() {
  check_.AwaitNoCalls();
  watch_calls_.AwaitNone();
}

}  // namespace apogee
