#include "services/common/rocketmq/reactors.h"

namespace apogee::rocketmq {

TelemetryReactor::TelemetryReactor(absl::StatusOr<std::string> client_id, OnSettings on_settings,
                                   std::function<void(const std::string&)> on_close)
    : client_id_(std::move(client_id)),
      on_settings_(std::move(on_settings)),
      on_close_(std::move(on_close)) {
  StartRead(&request_);
}

void TelemetryReactor::OnReadDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status::OK);
    return;
  }
  if (request_.command_case() != v2::TelemetryCommand::kSettings) {
    StartRead(&request_);  // stack traces, verify results: nothing to answer
    return;
  }
  response_.Clear();
  absl::Status status = client_id_.status();
  if (status.ok()) {
    auto settings = on_settings_(*client_id_, request_.settings());
    status = settings.status();
    if (settings.ok()) *response_.mutable_settings() = std::move(settings).value();
  }
  ToV2Status(status, response_.mutable_status());
  StartWrite(&response_);
}

void TelemetryReactor::OnWriteDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "telemetry write failed"));
    return;
  }
  StartRead(&request_);
}

void TelemetryReactor::OnDone() {
  if (client_id_.ok() && on_close_) on_close_(*client_id_);
  delete this;
}

}  // namespace apogee::rocketmq
