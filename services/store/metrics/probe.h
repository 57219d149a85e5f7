// The store sidecar's Prometheus families (apogee_store_*). The service and
// main call the probe (`probe.OnAppend(...)`), never the registry. Gauges
// that mirror engine state are refreshed by Refresh(), which main runs from
// a periodic task.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/store/engine/store.h"

namespace apogee::store {

// Thread-safe (prometheus-cpp metrics are atomic; Refresh keeps its own
// last-seen values under a mutex).
class Probe {
 public:
  explicit Probe(std::shared_ptr<prometheus::Registry> registry);

  // A client batch was stored: `records` records with `body_bytes` of bodies.
  void OnAppend(int records, int64_t body_bytes);
  // A client batch was rejected or failed; nothing of it was stored.
  void OnAppendError(absl::StatusCode code);
  // One engine Append call that carried `batches` client batches (the
  // service merges what queued up). In sync mode it includes the fdatasync.
  void OnEngineAppend(int batches, absl::Duration latency);
  // One explicit Store::Flush (fdatasync of the log plus RocksDB's WAL).
  void OnFlush(absl::Duration latency, bool ok);
  // A unary call finished. `method` is the RPC name.
  void OnRequest(const char* method, absl::StatusCode code);
  void OnRead(int records);
  // Store::Create took `took` (log scan, index replay).
  void OnRecovery(absl::Duration took, const RecoveryReport& report);
  // Updates the gauges from the engine (Stats, offsets) and the size of
  // `data_dir` on disk. Walks the directory: call it every few seconds at most.
  void Refresh(const Store& store, const std::string& data_dir);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter& messages_in_;
  prometheus::Counter& batches_in_;
  prometheus::Counter& bytes_in_;
  prometheus::Family<prometheus::Counter>& append_errors_;
  prometheus::Counter& engine_appends_;
  prometheus::Histogram& append_latency_;
  prometheus::Histogram& flush_latency_;
  prometheus::Counter& flush_errors_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Counter& messages_out_;
  prometheus::Gauge& dispatch_lag_;
  prometheus::Gauge& segments_;
  prometheus::Gauge& disk_bytes_;
  prometheus::Family<prometheus::Gauge>& log_offsets_;
  prometheus::Gauge& topics_;
  prometheus::Gauge& queues_;
  prometheus::Gauge& dispatch_failing_;
  prometheus::Gauge& recovery_seconds_;
  prometheus::Gauge& recovery_truncated_;
  prometheus::Counter& retention_deleted_;
  prometheus::Counter& log_flush_errors_;
  prometheus::Counter& timers_carried_;
  prometheus::Gauge& retention_pinned_;
  prometheus::Family<prometheus::Gauge>& rocksdb_memory_;

  absl::Mutex mu_;
  int64_t last_retention_deleted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_log_flush_errors_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_timers_carried_ ABSL_GUARDED_BY(mu_) = 0;
};

// Bytes of the regular files under `dir` (recursively); files that vanish
// while it walks are skipped.
int64_t DirectoryBytes(const std::string& dir);

}  // namespace apogee::store
