#include "services/broker/ha/read_advisor.h"

#include <unistd.h>

#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace apogee::broker::ha {
namespace {

namespace sv1 = ::apogee::store::v1;

// "<broker_name>/<configured id>" (RoleManager::Follow) -> the id routes
// list the follower under.
std::optional<int64_t> RouteId(const std::string& replica_id, int64_t self_id) {
  const size_t slash = replica_id.rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  int64_t configured;
  if (!absl::SimpleAtoi(absl::string_view(replica_id).substr(slash + 1), &configured)) {
    return std::nullopt;
  }
  if (configured == self_id) return std::nullopt;  // not a follower of ours
  // The writer takes route id 0; a configured-0 follower takes its id.
  return configured == 0 ? self_id : configured;
}

}  // namespace

std::optional<ReadAdvice> AdviseRead(const sv1::GetReplicationStatusResponse& status,
                                     int64_t self_id, int64_t position, int64_t lag_bytes) {
  if (lag_bytes <= 0) return std::nullopt;
  const int64_t behind = status.log_end() - position;
  if (status.role() == sv1::MASTER) {
    if (behind <= lag_bytes) return std::nullopt;
    std::optional<ReadAdvice> best;
    int64_t best_acked = position;  // must hold more than the reader has read
    for (const sv1::FollowerStatus& f : status.followers()) {
      if (!f.in_sync() || f.acked_offset() <= best_acked) continue;
      std::optional<int64_t> id = RouteId(f.replica_id(), self_id);
      if (!id.has_value()) continue;
      best = ReadAdvice{*id, Role::kSlave};
      best_acked = f.acked_offset();
    }
    return best;
  }
  if (status.role() == sv1::SLAVE && status.connected() && behind <= lag_bytes / 2) {
    return ReadAdvice{0, Role::kMaster};
  }
  return std::nullopt;
}

int64_t DefaultSlaveReadLagBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return int64_t{4} << 30;  // unknown: 4 GiB
  return static_cast<int64_t>(pages) * page_size / 10 * 4;
}

ReadAdvisor::ReadAdvisor(int64_t lag_bytes, int64_t self_id, StatusSource source,
                         const Clock* clock, absl::Duration refresh)
    : lag_bytes_(lag_bytes),
      self_id_(self_id),
      source_(std::move(source)),
      clock_(clock),
      refresh_(refresh) {}

void ReadAdvisor::Refresh() {
  const absl::Time now = clock_->Now();
  if (now - fetched_ < refresh_) return;
  // One refresh at a time (under the lock); a failure (a store without
  // replication) clears the status: no advice until it answers again.
  absl::StatusOr<sv1::GetReplicationStatusResponse> fresh = source_();
  fetched_ = now;
  if (fresh.ok()) {
    status_ = *std::move(fresh);
  } else {
    status_.reset();
  }
}

std::optional<ReadAdvice> ReadAdvisor::AfterRead(int64_t position) {
  if (lag_bytes_ <= 0) return std::nullopt;
  absl::MutexLock lock(&mu_);
  Refresh();
  if (!status_.has_value()) return std::nullopt;
  return AdviseRead(*status_, self_id_, position, lag_bytes_);
}

bool ReadAdvisor::MaySuggestSlave() {
  if (lag_bytes_ <= 0) return false;
  absl::MutexLock lock(&mu_);
  Refresh();
  if (!status_.has_value() || status_->role() != sv1::MASTER) return false;
  for (const sv1::FollowerStatus& f : status_->followers()) {
    if (f.in_sync()) return true;
  }
  return false;
}

}  // namespace apogee::broker::ha
