#include "services/store/metrics/probe.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"

namespace apogee::store {
namespace {

prometheus::Counter& Counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& Gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

// 50us .. ~3.3s, doubling.
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  prometheus::Histogram::BucketBoundaries b;
  for (double v = 50e-6; v < 4; v *= 2) b.push_back(v);
  return b;
}

std::string CodeLabel(absl::StatusCode code) { return absl::StatusCodeToString(code); }

// Moves a counter by what an engine total grew since `*last` was seen.
void AddSince(prometheus::Counter& counter, int64_t total, int64_t* last) {
  if (total <= *last) return;
  counter.Increment(static_cast<double>(total - *last));
  *last = total;
}

}  // namespace

Probe::Probe(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      messages_in_(Counter(*registry_, "apogee_store_messages_in_total",
                           "Records stored (acknowledged appends)")),
      batches_in_(
          Counter(*registry_, "apogee_store_append_batches_total", "Client append batches stored")),
      bytes_in_(Counter(*registry_, "apogee_store_bytes_in_total", "Message body bytes stored")),
      append_errors_(prometheus::BuildCounter()
                         .Name("apogee_store_append_errors_total")
                         .Help("Client append batches that failed (nothing stored), by code")
                         .Register(*registry_)),
      engine_appends_(Counter(*registry_, "apogee_store_engine_appends_total",
                              "Engine Append calls (each carries one or more client batches)")),
      append_latency_(prometheus::BuildHistogram()
                          .Name("apogee_store_append_latency_seconds")
                          .Help("Time of one engine Append call (includes fdatasync with "
                                "--flush=sync)")
                          .Register(*registry_)
                          .Add({}, LatencyBuckets())),
      flush_latency_(prometheus::BuildHistogram()
                         .Name("apogee_store_flush_latency_seconds")
                         .Help("Time of one periodic flush (commit-log fdatasync plus "
                               "RocksDB WAL sync)")
                         .Register(*registry_)
                         .Add({}, LatencyBuckets())),
      flush_errors_(
          Counter(*registry_, "apogee_store_flush_errors_total", "Periodic flushes that failed")),
      requests_(prometheus::BuildCounter()
                    .Name("apogee_store_requests_total")
                    .Help("Unary store API calls by method and code")
                    .Register(*registry_)),
      messages_out_(
          Counter(*registry_, "apogee_store_messages_out_total", "Records returned by Read")),
      dispatch_lag_(Gauge(*registry_, "apogee_store_dispatch_lag_bytes",
                          "Commit-log bytes written but not yet indexed")),
      segments_(Gauge(*registry_, "apogee_store_segments", "Commit-log segment files")),
      disk_bytes_(Gauge(*registry_, "apogee_store_disk_bytes",
                        "Bytes of files under --data_dir (commit log and indexes)")),
      log_offsets_(prometheus::BuildGauge()
                       .Name("apogee_store_commitlog_offset_bytes")
                       .Help("Commit-log byte positions: min, written, flushed, dispatched")
                       .Register(*registry_)),
      topics_(Gauge(*registry_, "apogee_store_topics", "Topics configured")),
      queues_(Gauge(*registry_, "apogee_store_queues", "Queues with messages")),
      dispatch_failing_(Gauge(*registry_, "apogee_store_dispatch_failing",
                              "1 while the index dispatcher reports an error")),
      recovery_seconds_(Gauge(*registry_, "apogee_store_recovery_seconds",
                              "Time the last start spent opening and recovering the store")),
      recovery_truncated_(Gauge(*registry_, "apogee_store_recovery_truncated_bytes",
                                "Torn or corrupt commit-log tail removed at the last start")),
      retention_deleted_(Counter(*registry_, "apogee_store_retention_deleted_segments_total",
                                 "Segments deleted by retention")),
      log_flush_errors_(Counter(*registry_, "apogee_store_commitlog_flush_errors_total",
                                "Commit-log fdatasync failures seen by the engine")),
      timers_carried_(Counter(*registry_, "apogee_store_timers_carried_total",
                              "Pending delayed messages moved to the log's end by retention")),
      retention_pinned_(Gauge(*registry_, "apogee_store_retention_pinned_segments",
                              "Segments due for deletion that the last retention pass kept "
                              "for a pending timer or transaction")),
      rocksdb_memory_(prometheus::BuildGauge()
                          .Name("apogee_store_rocksdb_memory_bytes")
                          .Help("RocksDB index memory: budget (--rocksdb_memory_budget), "
                                "memtables, block_cache (usage, memtables charged included), "
                                "block_cache_pinned, table_readers")
                          .Register(*registry_)) {}

void Probe::OnAppend(int records, int64_t body_bytes) {
  messages_in_.Increment(records);
  batches_in_.Increment();
  bytes_in_.Increment(static_cast<double>(body_bytes));
}

void Probe::OnAppendError(absl::StatusCode code) {
  append_errors_.Add({{"code", CodeLabel(code)}}).Increment();
}

void Probe::OnEngineAppend(int batches, absl::Duration latency) {
  engine_appends_.Increment();
  append_latency_.Observe(absl::ToDoubleSeconds(latency));
}

void Probe::OnFlush(absl::Duration latency, bool ok) {
  flush_latency_.Observe(absl::ToDoubleSeconds(latency));
  if (!ok) flush_errors_.Increment();
}

void Probe::OnRequest(const char* method, absl::StatusCode code) {
  requests_.Add({{"method", method}, {"code", CodeLabel(code)}}).Increment();
}

void Probe::OnRead(int records) { messages_out_.Increment(records); }

void Probe::OnRecovery(absl::Duration took, const RecoveryReport& report) {
  recovery_seconds_.Set(absl::ToDoubleSeconds(took));
  recovery_truncated_.Set(static_cast<double>(report.log.truncated_bytes));
}

void Probe::Refresh(const Store& store, const std::string& data_dir) {
  const StoreStats stats = store.Stats();
  const LogOffsets offsets = store.GetLogOffsets();
  dispatch_lag_.Set(static_cast<double>(std::max<int64_t>(0, offsets.max - offsets.dispatched)));
  segments_.Set(stats.log.segments);
  log_offsets_.Add({{"position", "min"}}).Set(static_cast<double>(offsets.min));
  log_offsets_.Add({{"position", "written"}}).Set(static_cast<double>(offsets.max));
  log_offsets_.Add({{"position", "flushed"}}).Set(static_cast<double>(offsets.flushed));
  log_offsets_.Add({{"position", "dispatched"}}).Set(static_cast<double>(offsets.dispatched));
  topics_.Set(stats.topics);
  queues_.Set(stats.queues);
  dispatch_failing_.Set(stats.dispatch_error.ok() ? 0 : 1);
  disk_bytes_.Set(static_cast<double>(DirectoryBytes(data_dir)));
  const IndexMemory& memory = stats.index_memory;
  for (const auto& [kind, bytes] : {std::pair<const char*, int64_t>{"budget", memory.budget},
                                    {"memtables", memory.memtables},
                                    {"block_cache", memory.block_cache},
                                    {"block_cache_pinned", memory.block_cache_pinned},
                                    {"table_readers", memory.table_readers}}) {
    rocksdb_memory_.Add({{"kind", kind}}).Set(static_cast<double>(bytes));
  }
  retention_pinned_.Set(static_cast<double>(stats.retention_pinned_segments));
  absl::MutexLock lock(&mu_);
  AddSince(retention_deleted_, stats.retention_deleted_segments, &last_retention_deleted_);
  AddSince(log_flush_errors_, stats.log.flush_errors, &last_log_flush_errors_);
  AddSince(timers_carried_, stats.timers_carried, &last_timers_carried_);
}

int64_t DirectoryBytes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int64_t total = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code file_ec;
    if (it->is_regular_file(file_ec)) {
      const uintmax_t size = it->file_size(file_ec);
      if (!file_ec) total += static_cast<int64_t>(size);
    }
  }
  return total;
}

}  // namespace apogee::store
