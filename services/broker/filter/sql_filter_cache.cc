#include "services/broker/filter/sql_filter_cache.h"

#include <utility>

namespace apogee::broker::filter {

absl::StatusOr<std::shared_ptr<const SqlFilter>> SqlFilterCache::Get(absl::string_view expression) {
  {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(expression);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
    ++compilations_;
  }
  // Compiled outside the lock: two threads may both compile a new
  // expression; the second insert finds the first and keeps it.
  absl::StatusOr<std::shared_ptr<const SqlFilter>> compiled = CompileSql(expression);
  if (!compiled.ok()) return compiled;
  absl::MutexLock lock(&mu_);
  auto it = index_.find(expression);
  if (it != index_.end()) return it->second->second;
  lru_.emplace_front(std::string(expression), *compiled);
  index_.emplace(lru_.front().first, lru_.begin());
  if (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return compiled;
}

size_t SqlFilterCache::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

int64_t SqlFilterCache::compilations() const {
  absl::MutexLock lock(&mu_);
  return compilations_;
}

}  // namespace apogee::broker::filter
