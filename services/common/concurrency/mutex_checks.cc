#include "services/common/concurrency/mutex_checks.h"

#include "absl/synchronization/mutex.h"

namespace apogee {

void ConfigureMutexChecks() {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

}  // namespace apogee
