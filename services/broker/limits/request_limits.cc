#include "services/broker/limits/request_limits.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "services/common/naming/names.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {

namespace v2 = ::apache::rocketmq::v2;

absl::Status ValidateRequestLimits(const RequestLimits& limits, int64_t max_body_bytes) {
  // One message at the body limit, with its properties, must fit a request.
  const int64_t min_request = max_body_bytes + kRecordHeadroomBytes;
  if (limits.max_request_bytes < min_request ||
      limits.max_request_bytes > kMaxRequestBytesCeiling) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_request_bytes=", limits.max_request_bytes,
        " is out of range (allowed: ", min_request, "..", kMaxRequestBytesCeiling, ": one ",
        max_body_bytes, "-byte body plus properties, up to what the store's receive limit takes)"));
  }
  if (limits.max_inflight_bytes < limits.max_request_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_inflight_bytes=", limits.max_inflight_bytes, " is below --max_request_bytes=",
        limits.max_request_bytes, " (the largest request must fit in flight)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<InflightBytes::Lease> InflightBytes::TryAcquire(int64_t bytes) {
  int64_t current = in_flight_.load(std::memory_order_relaxed);
  do {
    if (current + bytes > limit_) {
      return WithV2Code(
          absl::ResourceExhaustedError(absl::StrCat(
              "broker busy: ", current, " bytes of requests in flight; this request's ", bytes,
              " bytes would pass --max_inflight_bytes=", limit_, "; retry later")),
          v2::TOO_MANY_REQUESTS);
    }
  } while (!in_flight_.compare_exchange_weak(current, current + bytes, std::memory_order_relaxed));
  // A token object: only its deleter matters.
  return Lease(static_cast<void*>(this),
               [bytes](void* self) { static_cast<InflightBytes*>(self)->Release(bytes); });
}

void InflightBytes::Release(int64_t bytes) {
  in_flight_.fetch_sub(bytes, std::memory_order_relaxed);
}

void MapLargeBuffersOutsideTheHeap(size_t threshold_bytes) {
#if defined(__GLIBC__)
  // A fixed threshold also stops glibc from raising it after each large free,
  // which would put later large bodies on the heap, where they stay.
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold_bytes));
#endif
}

int64_t FreeHeapBytes() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  return static_cast<int64_t>(mallinfo2().fordblks);
#else
  return 0;
#endif
}

bool ReturnFreeMemory(int64_t min_free_bytes) {
#if defined(__GLIBC__)
  if (FreeHeapBytes() < min_free_bytes) return false;
  malloc_trim(0);
  return true;
#else
  return false;
#endif
}

absl::Status CheckRecordHeadroom(const store::v1::AppendRecord& record, int64_t body_bytes,
                                 int index) {
  const int64_t rest = static_cast<int64_t>(record.body().size()) - body_bytes;
  if (rest <= kMaxSendHeadroomBytes) return absl::OkStatus();
  return WithV2Code(absl::InvalidArgumentError(absl::StrCat(
                        "messages[", index, "] carries ", rest,
                        " bytes beside its body (properties, keys, ids, trace context; max ",
                        kMaxSendHeadroomBytes, ")")),
                    v2::MESSAGE_PROPERTIES_TOO_LARGE);
}

absl::Status CheckAppendSize(const std::vector<store::v1::AppendRecord>& records, int64_t limit) {
  int64_t bytes = 0;
  for (const store::v1::AppendRecord& r : records) bytes += static_cast<int64_t>(r.ByteSizeLong());
  if (bytes <= limit) return absl::OkStatus();
  return WithV2Code(
      absl::ResourceExhaustedError(absl::StrCat("the request's ", records.size(), " messages make ",
                                                bytes, " bytes of store records (max ", limit,
                                                " per request); send fewer messages per request")),
      v2::PAYLOAD_TOO_LARGE);
}

}  // namespace apogee::broker
