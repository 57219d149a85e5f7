// The live Telemetry stream of each client, so the broker can push commands
// to a client (print its thread stack trace today; transaction checks when
// transactional messages land) and collect the answers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/common/rocketmq/reactors.h"

namespace apogee::broker {

namespace v2 = ::apache::rocketmq::v2;

// Thread-safe. Holds stream pointers only between Register and Unregister
// (the reactor's close callback), so it never touches a finished stream.
class TelemetryHub {
 public:
  void Register(const std::string& client_id, rocketmq::TelemetrySender* stream);
  // Forgets `stream` if it is still the client's current one.
  void Unregister(const std::string& client_id, rocketmq::TelemetrySender* stream);
  // Client ids with an open Telemetry stream, sorted.
  std::vector<std::string> Connected() const;

  // Asks the client for its thread stack trace and waits for the answer.
  // NOT_FOUND when the client has no stream here, DEADLINE_EXCEEDED when it
  // does not answer within `timeout`. Blocks: call from a worker thread.
  absl::StatusOr<std::string> RequestStackTrace(const std::string& client_id,
                                                absl::Duration timeout);

  // Sends `command` (a transaction check) without waiting for an answer;
  // false when the client has no open stream here.
  bool Send(const std::string& client_id, v2::TelemetryCommand command);

  // A command the client sent on its stream (answers to our requests).
  void OnClientCommand(const std::string& client_id, const v2::TelemetryCommand& command);

 private:
  struct Pending {
    absl::Notification done;
    std::string text;
  };

  mutable absl::Mutex mu_;
  std::map<std::string, rocketmq::TelemetrySender*> streams_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Pending>> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t next_nonce_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace apogee::broker
