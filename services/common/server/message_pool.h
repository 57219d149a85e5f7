// Request and response messages kept from finished calls for the next ones.
// A protobuf message's Clear() keeps its strings and repeated elements
// allocated, so parsing a request shaped like the last one into it allocates
// nothing, and nothing is freed when the call ends: on the broker's send
// path, parsing a request and freeing it were a quarter of its CPU
// (docs/benchmarks.md, "Where async window 1000 goes in the broker now").
//
// Bounded: a message that held more than `max_bytes_each` is freed rather
// than kept (it would pin that much), and the pool keeps at most
// `max_bytes` of them in all. Under AddressSanitizer nothing is kept, so a
// handler that touches its request after the call ended is still caught.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "absl/synchronization/mutex.h"

namespace apogee {

#if defined(ABSL_HAVE_ADDRESS_SANITIZER)  // under gcc or clang
inline constexpr bool kPoolKeepsMessages = false;
#else
inline constexpr bool kPoolKeepsMessages = true;
#endif

// Thread-safe. T: default-constructible with Clear() (protobuf messages,
// WithBytes).
template <typename T>
class MessagePool {
 public:
  MessagePool(int64_t max_bytes_each, int64_t max_bytes)
      : max_bytes_each_(max_bytes_each), max_bytes_(max_bytes) {}

  // A cleared message from a finished call, else a new one.
  std::unique_ptr<T> Take() {
    {
      absl::MutexLock lock(&mu_);
      if (!kept_.empty()) {
        Kept last = std::move(kept_.back());
        kept_.pop_back();
        kept_bytes_ -= last.bytes;
        return std::move(last.message);
      }
    }
    return std::make_unique<T>();
  }

  // Takes back `message`, which held about `bytes` (its encoded size).
  void Give(std::unique_ptr<T> message, int64_t bytes) {
    if (!kPoolKeepsMessages || message == nullptr || bytes > max_bytes_each_) return;
    message->Clear();  // outside the lock
    {
      absl::MutexLock lock(&mu_);
      if (kept_bytes_ + bytes <= max_bytes_) {
        kept_bytes_ += bytes;
        kept_.push_back(Kept{std::move(message), bytes});
        return;
      }
    }
    // Full: `message` is freed here, outside the lock.
  }

  int kept() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(kept_.size());
  }

 private:
  struct Kept {
    std::unique_ptr<T> message;
    int64_t bytes = 0;
  };

  const int64_t max_bytes_each_;
  const int64_t max_bytes_;
  mutable absl::Mutex mu_;
  std::vector<Kept> kept_ ABSL_GUARDED_BY(mu_);
  int64_t kept_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace apogee
