// Compiled SQL filters by expression text, for callers that get the
// expression again on every request (v2 ReceiveMessage and PullMessage carry
// it each time), so a consumer's expression is compiled once, not per poll.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/broker/filter/sql_filter.h"

namespace apogee::broker::filter {

// Thread-safe. Keeps the `capacity` most recently used expressions that
// compiled; errors are not kept (a malformed expression is answered at once
// and rarely sent again).
class SqlFilterCache {
 public:
  explicit SqlFilterCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // The compiled `expression` (CompileSql's error when it does not compile).
  absl::StatusOr<std::shared_ptr<const SqlFilter>> Get(absl::string_view expression);

  size_t size() const;
  // Compilations so far (misses), for tests and metrics.
  int64_t compilations() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const SqlFilter>>;

  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mu_);
  int64_t compilations_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace apogee::broker::filter
