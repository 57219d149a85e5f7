#include "services/broker/client/telemetry_hub.h"

#include "absl/strings/str_cat.h"

namespace apogee::broker {

void TelemetryHub::Register(const std::string& client_id, rocketmq::TelemetrySender* stream) {
  absl::MutexLock lock(&mu_);
  streams_[client_id] = stream;  // a reconnecting client's newest stream wins
}

void TelemetryHub::Unregister(const std::string& client_id, rocketmq::TelemetrySender* stream) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(client_id);
  if (it != streams_.end() && it->second == stream) streams_.erase(it);
}

std::vector<std::string> TelemetryHub::Connected() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [id, stream] : streams_) out.push_back(id);
  return out;
}

absl::StatusOr<std::string> TelemetryHub::RequestStackTrace(const std::string& client_id,
                                                            absl::Duration timeout) {
  auto pending = std::make_shared<Pending>();
  std::string nonce;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(client_id);
    if (it == streams_.end()) {
      return absl::NotFoundError(
          absl::StrCat("client \"", client_id, "\" has no telemetry stream on this broker"));
    }
    nonce = absl::StrCat("stack-", next_nonce_++);
    pending_[nonce] = pending;
    v2::TelemetryCommand command;
    command.mutable_print_thread_stack_trace_command()->set_nonce(nonce);
    // Under the lock: the stream cannot be unregistered (and freed) meanwhile.
    if (!it->second->Send(std::move(command))) {
      pending_.erase(nonce);
      return absl::UnavailableError(
          absl::StrCat("telemetry stream of client \"", client_id, "\" is closing"));
    }
  }
  const bool answered = pending->done.WaitForNotificationWithTimeout(timeout);
  absl::MutexLock lock(&mu_);
  pending_.erase(nonce);
  if (!answered) {
    return absl::DeadlineExceededError(absl::StrCat(
        "client \"", client_id, "\" did not answer within ", absl::FormatDuration(timeout)));
  }
  return pending->text;
}

bool TelemetryHub::Send(const std::string& client_id, v2::TelemetryCommand command) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(client_id);
  // Under the lock: the stream cannot be unregistered (and freed) meanwhile.
  return it != streams_.end() && it->second->Send(std::move(command));
}

void TelemetryHub::OnClientCommand(const std::string& client_id,
                                   const v2::TelemetryCommand& command) {
  if (command.command_case() != v2::TelemetryCommand::kThreadStackTrace) return;
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(command.thread_stack_trace().nonce());
  if (it == pending_.end() || it->second->done.HasBeenNotified()) return;
  it->second->text = command.thread_stack_trace().thread_stack_trace();
  it->second->done.Notify();
}

}  // namespace apogee::broker
