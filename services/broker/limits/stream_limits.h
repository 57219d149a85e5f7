// Limits on long-lived streams (Telemetry, push Consume): how many one
// client id may hold and how many all clients may, so thousands of idle
// streams cannot take the broker's memory. Past a limit the stream ends with
// RESOURCE_EXHAUSTED naming the flag.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace apogee::broker {

struct StreamLimits {
  // Open Telemetry streams (--max_telemetry_streams, _per_client). A client
  // opens one per broker; a few more cover reconnects whose old stream the
  // broker has not yet seen close.
  int32_t max_telemetry_streams = 10000;
  int32_t max_telemetry_streams_per_client = 16;
  // Open push Consume streams (--max_push_streams, _per_client): one per
  // (client, group, topic).
  int32_t max_push_streams = 10000;
  int32_t max_push_streams_per_client = 256;
};

// Each between 1 and 1,000,000, and a per-client limit at most its total;
// errors name the flag, its value and the range.
absl::Status ValidateStreamLimits(const StreamLimits& limits);

// Counts the open streams of one kind, in total and per client id.
// Thread-safe.
class StreamCounter {
 public:
  // Released (the count goes down) when the last copy goes away.
  using Lease = std::shared_ptr<void>;

  // `kind` ("telemetry", "push") and the flag names appear in errors.
  StreamCounter(std::string kind, std::string total_flag, int32_t max_total,
                std::string per_client_flag, int32_t max_per_client);

  // Takes a place among all streams; RESOURCE_EXHAUSTED naming the total
  // limit when there is none.
  absl::StatusOr<Lease> OpenAny();
  // Takes a place among `client_id`'s streams; RESOURCE_EXHAUSTED naming the
  // per-client limit and the client when there is none.
  absl::StatusOr<Lease> OpenForClient(const std::string& client_id);
  // OpenAny and OpenForClient together (both or neither).
  absl::StatusOr<Lease> Open(const std::string& client_id);

  int64_t total() const;
  int64_t of_client(const std::string& client_id) const;

 private:
  const std::string kind_;
  const std::string total_flag_;
  const int32_t max_total_;
  const std::string per_client_flag_;
  const int32_t max_per_client_;
  mutable absl::Mutex mu_;
  int64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> per_client_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::broker
