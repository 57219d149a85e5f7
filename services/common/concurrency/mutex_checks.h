#pragma once

namespace apogee {

// Call first thing in main(). Debian's Abseil is built without NDEBUG, so by
// default every absl::Mutex lock feeds its deadlock detector (a lock graph
// update per acquisition: a fifth of the store's CPU per append). Our
// optimized builds switch it off; debug and sanitizer builds (no NDEBUG)
// keep it, so tests there still catch lock-order inversions.
void ConfigureMutexChecks();

}  // namespace apogee
