// Limits on what SendMessage requests may cost the broker: the size of one
// request (enforced by gRPC before it is buffered), the bytes of requests in
// flight at once (back-pressure with TOO_MANY_REQUESTS), and the part of a
// stored record that is not the body (so the store takes every body up to the
// advertised limit).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apogee/store/v1/store.pb.h"

namespace apogee::broker {

struct RequestLimits {
  // Largest request gRPC accepts (--max_request_bytes): four bodies at the
  // 4 MiB limit plus 1 MiB of properties and framing.
  int64_t max_request_bytes = 17 << 20;
  // Bytes of SendMessage requests held at once (--max_inflight_bytes). The
  // broker holds about three times this at peak: the request, its store
  // records and their serialised append.
  int64_t max_inflight_bytes = 256 << 20;
};

// The largest --max_request_bytes. A request's store records are about 1x
// its size for real messages but up to 4-6x for many tiny ones (each record
// repeats topic, id and keys and adds hosts and times); they must fit in one
// append to the store, whose receive limit is 130 MiB.
inline constexpr int64_t kMaxRequestBytesCeiling = 24 << 20;
inline constexpr int64_t kMaxStoreAppendBytes = 128 << 20;

// Checks the flags against each other and `max_body_bytes`; errors name the
// flag, its value and the allowed range.
absl::Status ValidateRequestLimits(const RequestLimits& limits, int64_t max_body_bytes);

// Counts the bytes of requests being handled. Thread-safe.
class InflightBytes {
 public:
  // Released when the last copy goes away.
  using Lease = std::shared_ptr<void>;

  explicit InflightBytes(int64_t limit) : limit_(limit) {}

  // Takes `bytes` for one request; RESOURCE_EXHAUSTED with v2 code
  // TOO_MANY_REQUESTS, naming the limit, when they do not fit now.
  absl::StatusOr<Lease> TryAcquire(int64_t bytes);

  int64_t InFlight() const { return in_flight_.load(std::memory_order_relaxed); }
  int64_t limit() const { return limit_; }

 private:
  void Release(int64_t bytes);

  const int64_t limit_;
  std::atomic<int64_t> in_flight_{0};
};

// Allocations of at least `threshold_bytes` (message bodies, serialised
// requests) get their own mapping, unmapped when freed (glibc; a no-op
// elsewhere). Call once at start-up.
void MapLargeBuffersOutsideTheHeap(size_t threshold_bytes = 256 << 10);

// Free memory malloc holds in its arenas (glibc; 0 elsewhere).
int64_t FreeHeapBytes();

// Gives free heap memory back to the system (malloc_trim) when malloc holds
// at least `min_free_bytes` of it; true if it did. Large requests, including
// ones gRPC refused as too large after buffering them, leave their freed
// buffers there. Call when the broker is idle: it walks every arena.
bool ReturnFreeMemory(int64_t min_free_bytes);

// Checks that `record` (made from messages[`index`], whose body is
// `body_bytes`) fits the store: what it holds beside the body must be at most
// kMaxSendHeadroomBytes. MESSAGE_PROPERTIES_TOO_LARGE otherwise.
absl::Status CheckRecordHeadroom(const store::v1::AppendRecord& record, int64_t body_bytes,
                                 int index);

// Checks that `records` fit in one append to the store (at most `limit`
// bytes); RESOURCE_EXHAUSTED (v2 PAYLOAD_TOO_LARGE: a retry cannot help)
// naming both otherwise.
absl::Status CheckAppendSize(const std::vector<store::v1::AppendRecord>& records,
                             int64_t limit = kMaxStoreAppendBytes);

}  // namespace apogee::broker
