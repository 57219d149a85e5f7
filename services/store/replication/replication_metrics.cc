#include "services/store/replication/replication_metrics.h"

#include <set>

#include "google/protobuf/util/time_util.h"

namespace apogee::store {
namespace {

using ::google::protobuf::util::TimeUtil;

prometheus::Histogram::BucketBoundaries AckBuckets() {
  return {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};
}

}  // namespace

ReplicationMetrics::ReplicationMetrics(prometheus::Registry& registry)
    : sent_(prometheus::BuildCounter()
                .Name("apogee_store_replication_sent_bytes_total")
                .Help("Commit-log bytes this store streamed to its followers (as master)")
                .Register(registry)
                .Add({})),
      received_(prometheus::BuildCounter()
                    .Name("apogee_store_replication_received_bytes_total")
                    .Help("Commit-log bytes this store received from its master (as slave)")
                    .Register(registry)
                    .Add({})),
      truncated_(prometheus::BuildCounter()
                     .Name("apogee_store_replication_truncated_bytes_total")
                     .Help("Bytes of divergent log tail dropped before following a master")
                     .Register(registry)
                     .Add({})),
      sync_ack_(prometheus::BuildHistogram()
                    .Name("apogee_store_replication_sync_ack_seconds")
                    .Help("How long sync-mode appends waited for their in-sync followers")
                    .Register(registry)
                    .Add({}, AckBuckets())),
      sync_timeouts_(prometheus::BuildCounter()
                         .Name("apogee_store_replication_sync_timeouts_total")
                         .Help("Sync-mode appends answered ABORTED (not enough in-sync "
                               "followers within replication_timeout)")
                         .Register(registry)
                         .Add({})),
      insync_(prometheus::BuildGauge()
                  .Name("apogee_store_replication_insync_followers")
                  .Help("Followers in the in-sync set (as master)")
                  .Register(registry)
                  .Add({})),
      epoch_(prometheus::BuildGauge()
                 .Name("apogee_store_replication_epoch")
                 .Help("The store's role epoch")
                 .Register(registry)
                 .Add({})),
      role_(prometheus::BuildGauge()
                .Name("apogee_store_replication_role")
                .Help("1 = master, 2 = slave")
                .Register(registry)
                .Add({})),
      slave_lag_bytes_(prometheus::BuildGauge()
                           .Name("apogee_store_replication_slave_lag_bytes")
                           .Help("As slave: the master's log end as last heard minus ours")
                           .Register(registry)
                           .Add({})),
      slave_connected_(prometheus::BuildGauge()
                           .Name("apogee_store_replication_slave_connected")
                           .Help("As slave: 1 while following the master")
                           .Register(registry)
                           .Add({})),
      lag_bytes_(prometheus::BuildGauge()
                     .Name("apogee_store_replication_follower_lag_bytes")
                     .Help("Per follower: the master's log end minus what it acknowledged")
                     .Register(registry)),
      lag_seconds_(prometheus::BuildGauge()
                       .Name("apogee_store_replication_follower_lag_seconds")
                       .Help("Per follower: age of the oldest record it lacks (0 when caught up)")
                       .Register(registry)),
      in_sync_(prometheus::BuildGauge()
                   .Name("apogee_store_replication_follower_in_sync")
                   .Help("Per follower: 1 while in the in-sync set")
                   .Register(registry)) {}

void ReplicationMetrics::OnSyncAck(absl::Duration latency, bool ok) {
  sync_ack_.Observe(absl::ToDoubleSeconds(latency));
  if (!ok) sync_timeouts_.Increment();
}

void ReplicationMetrics::Refresh(const ::apogee::store::v1::GetReplicationStatusResponse& status) {
  epoch_.Set(static_cast<double>(status.epoch()));
  role_.Set(static_cast<double>(status.role()));
  slave_lag_bytes_.Set(static_cast<double>(status.lag_bytes()));
  slave_connected_.Set(status.connected() ? 1 : 0);
  int insync = 0;
  absl::MutexLock lock(&mu_);
  std::set<std::string> present;
  for (const auto& f : status.followers()) {
    present.insert(f.replica_id());
    auto it = followers_.find(f.replica_id());
    if (it == followers_.end()) {
      const std::map<std::string, std::string> labels = {{"replica", f.replica_id()}};
      it = followers_
               .emplace(f.replica_id(),
                        PerFollower{&lag_bytes_.Add(labels), &lag_seconds_.Add(labels),
                                    &in_sync_.Add(labels)})
               .first;
    }
    it->second.lag_bytes->Set(static_cast<double>(f.lag_bytes()));
    it->second.lag_seconds->Set(
        static_cast<double>(TimeUtil::DurationToMilliseconds(f.lag_time())) / 1000.0);
    it->second.in_sync->Set(f.in_sync() ? 1 : 0);
    if (f.in_sync()) ++insync;
  }
  for (auto it = followers_.begin(); it != followers_.end();) {
    if (present.count(it->first) > 0) {
      ++it;
      continue;
    }
    lag_bytes_.Remove(it->second.lag_bytes);
    lag_seconds_.Remove(it->second.lag_seconds);
    in_sync_.Remove(it->second.in_sync);
    it = followers_.erase(it);
  }
  insync_.Set(insync);
}

}  // namespace apogee::store
