// Prometheus families of store-to-store replication
// (apogee_store_replication_*), on the store's registry.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/store/v1/store.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace apogee::store {

// Thread-safe.
class ReplicationMetrics {
 public:
  explicit ReplicationMetrics(prometheus::Registry& registry);

  void OnSent(int64_t bytes) { sent_.Increment(static_cast<double>(bytes)); }
  void OnReceived(int64_t bytes) { received_.Increment(static_cast<double>(bytes)); }
  void OnTruncated(int64_t bytes) { truncated_.Increment(static_cast<double>(bytes)); }
  // A sync-mode append waited this long for its followers.
  void OnSyncAck(absl::Duration latency, bool ok);
  // Per-follower gauges, in-sync count, role and epoch from a status.
  void Refresh(const ::apogee::store::v1::GetReplicationStatusResponse& status);

 private:
  prometheus::Counter& sent_;
  prometheus::Counter& received_;
  prometheus::Counter& truncated_;
  prometheus::Histogram& sync_ack_;
  prometheus::Counter& sync_timeouts_;
  prometheus::Gauge& insync_;
  prometheus::Gauge& epoch_;
  prometheus::Gauge& role_;
  prometheus::Gauge& slave_lag_bytes_;
  prometheus::Gauge& slave_connected_;
  prometheus::Family<prometheus::Gauge>& lag_bytes_;
  prometheus::Family<prometheus::Gauge>& lag_seconds_;
  prometheus::Family<prometheus::Gauge>& in_sync_;

  absl::Mutex mu_;
  struct PerFollower {
    prometheus::Gauge* lag_bytes;
    prometheus::Gauge* lag_seconds;
    prometheus::Gauge* in_sync;
  };
  std::map<std::string, PerFollower> followers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::store
