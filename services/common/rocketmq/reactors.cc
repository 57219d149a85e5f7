#include "services/common/rocketmq/reactors.h"

#include "absl/strings/str_cat.h"

namespace apogee::rocketmq {

TelemetryReactor::TelemetryReactor(absl::StatusOr<std::string> client_id, OnSettings on_settings,
                                   OnCommand on_command,
                                   std::function<void(const std::string&)> on_close)
    : client_id_(std::move(client_id)),
      on_settings_(std::move(on_settings)),
      on_command_(std::move(on_command)),
      on_close_(std::move(on_close)) {}

void TelemetryReactor::Start() { ReadRequest(); }

void TelemetryReactor::Refuse(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  reads_done_ = true;
  end_ = grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
  MaybeFinish();
}

bool TelemetryReactor::Send(v2::TelemetryCommand command) {
  absl::MutexLock lock(&mu_);
  if (finished_ || reads_done_) return false;
  writes_.push_back(std::move(command));
  MaybeWrite();
  return true;
}

void TelemetryReactor::OnRequest(bool ok) {
  if (!ok) {
    absl::MutexLock lock(&mu_);
    reads_done_ = true;
    MaybeFinish();
    return;
  }
  const v2::TelemetryCommand& request = this->request();
  if (request.command_case() == v2::TelemetryCommand::kSettings) {
    v2::TelemetryCommand reply;
    absl::Status status = client_id_.status();
    if (status.ok()) {
      auto settings = on_settings_(*client_id_, request.settings());
      status = settings.status();
      if (settings.ok()) *reply.mutable_settings() = std::move(settings).value();
    }
    ToV2Status(status, reply.mutable_status());
    absl::MutexLock lock(&mu_);
    writes_.push_back(std::move(reply));
    MaybeWrite();
  } else if (client_id_.ok() && on_command_) {
    on_command_(*client_id_, request);  // stack traces, verify results
  }
  absl::MutexLock lock(&mu_);
  if (!finished_) ReadRequest();
}

void TelemetryReactor::OnUnparsed(std::string error) {
  absl::MutexLock lock(&mu_);
  reads_done_ = true;
  end_ = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("Telemetry: ", error));
  MaybeFinish();
}

void TelemetryReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (!ok) {
    // The stream broke; the pending read fails too and ends the call.
    writes_.clear();
    reads_done_ = true;
    MaybeFinish();
    return;
  }
  writes_.pop_front();
  MaybeWrite();
  MaybeFinish();
}

void TelemetryReactor::MaybeWrite() {
  if (writing_ || finished_ || writes_.empty()) return;
  writing_ = true;
  WriteResponse(writes_.front());
}

void TelemetryReactor::MaybeFinish() {
  if (finished_ || !reads_done_ || writing_ || !writes_.empty()) return;
  finished_ = true;
  Finish(end_);
}

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

void TelemetryReactor::OnDone() {
  if (client_id_.ok() && on_close_) on_close_(*client_id_);
  delete this;
}

}  // namespace apogee::rocketmq
