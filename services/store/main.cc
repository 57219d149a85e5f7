// apogee-store: the storage sidecar of one broker. Owns the broker's disk
// (commit log + RocksDB indexes under --data_dir) and serves
// apogee.store.v1.Store, by default on a unix socket in the same pod.
// The process itself is services/store/app/store_app.h; this file holds the
// flags and turns them into its StoreConfig.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "services/common/concurrency/mutex_checks.h"
#include "services/common/config/flags.h"
#include "services/common/server/grpc_server.h"
#include "services/common/status/status_macros.h"
#include "services/common/tls/flags.h"
#include "services/store/app/store_app.h"

ABSL_FLAG(std::string, data_dir, "", "Directory for the commit log and indexes (required)");
ABSL_FLAG(std::string, listen, "unix:/tmp/apogee-store.sock",
          "gRPC address: unix:/path/store.sock or host:port");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:10921",
          "Prometheus /metrics address (host:port); empty disables it");
ABSL_FLAG(std::string, flush, "async",
          "sync: acknowledge appends after fdatasync (concurrent batches share one); "
          "async: acknowledge after write(), fdatasync every --flush_interval");
ABSL_FLAG(absl::Duration, flush_interval, absl::Milliseconds(500),
          "How often the commit log and index WAL are fdatasynced");
ABSL_FLAG(std::string, segment_size, "1GiB",
          "Commit-log segment file size (bytes, or with KiB/MiB/GiB; min 64KiB)");
ABSL_FLAG(absl::Duration, retention, absl::Hours(72),
          "Delete whole segments whose messages are all older than this");
ABSL_FLAG(absl::Duration, retention_check_interval, absl::Seconds(10),
          "How often retention looks for segments to delete");
ABSL_FLAG(double, disk_watermark, 0.85,
          "Fraction of the disk (0..1]; above it the oldest segments go regardless of age "
          "(1 disables)");
ABSL_FLAG(std::string, max_body_size, "4MiB",
          "Largest message body accepted (bytes, or with KiB/MiB); a record may carry 32 KiB "
          "more (properties, keys, topic), the rest of its message");
ABSL_FLAG(int32_t, io_threads, 4, "Threads for blocking store calls (reads, lookups, configs)");
ABSL_FLAG(bool, rebuild_indexes, false, "Drop and rebuild the RocksDB indexes from the log");
ABSL_FLAG(std::string, rocksdb_memory_budget, "64MiB",
          "Memory for the RocksDB indexes: the block cache's capacity, with every column "
          "family's memtables (at most half of it) charged to it (min 1MiB)");
ABSL_FLAG(std::string, rocksdb_write_buffer_size, "4MiB",
          "Memtable size of each RocksDB column family (min 64KiB, at most half of "
          "--rocksdb_memory_budget)");
ABSL_FLAG(int32_t, rocksdb_max_open_files, 256,
          "RocksDB table files kept open (min 16, -1: all); bounds the store's fds");
ABSL_FLAG(std::string, ha_listen, apogee::store::kDefaultHaListen,
          "Replication (HA) address, host:port: slaves' stores follow this store here when it "
          "is a master; empty disables serving followers");
ABSL_FLAG(absl::Duration, replica_lag_time, absl::Seconds(3),
          "A follower stays in the in-sync set while it has held the whole log as it was at "
          "most this long ago");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "On SIGTERM, how long in-flight calls may take before they are cancelled");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "apogee-store: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

absl::StatusOr<apogee::store::StoreConfig> ConfigFromFlags() {
  using apogee::store::ParseByteSize;
  apogee::store::StoreConfig c;
  c.data_dir = absl::GetFlag(FLAGS_data_dir);
  c.listen = absl::GetFlag(FLAGS_listen);
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  c.ha_listen = absl::GetFlag(FLAGS_ha_listen);
  APOGEE_ASSIGN_OR_RETURN(c.flush, apogee::store::ParseFlushMode(absl::GetFlag(FLAGS_flush)));
  c.flush_interval = absl::GetFlag(FLAGS_flush_interval);
  APOGEE_ASSIGN_OR_RETURN(c.segment_size,
                          ParseByteSize("segment_size", absl::GetFlag(FLAGS_segment_size)));
  c.retention = absl::GetFlag(FLAGS_retention);
  c.retention_check_interval = absl::GetFlag(FLAGS_retention_check_interval);
  c.disk_watermark = absl::GetFlag(FLAGS_disk_watermark);
  APOGEE_ASSIGN_OR_RETURN(c.max_body_size,
                          ParseByteSize("max_body_size", absl::GetFlag(FLAGS_max_body_size)));
  c.io_threads = absl::GetFlag(FLAGS_io_threads);
  c.rebuild_indexes = absl::GetFlag(FLAGS_rebuild_indexes);
  APOGEE_ASSIGN_OR_RETURN(
      c.rocksdb_memory_budget,
      ParseByteSize("rocksdb_memory_budget", absl::GetFlag(FLAGS_rocksdb_memory_budget)));
  APOGEE_ASSIGN_OR_RETURN(
      c.rocksdb_write_buffer_size,
      ParseByteSize("rocksdb_write_buffer_size", absl::GetFlag(FLAGS_rocksdb_write_buffer_size)));
  c.rocksdb_max_open_files = absl::GetFlag(FLAGS_rocksdb_max_open_files);
  c.replica_lag_time = absl::GetFlag(FLAGS_replica_lag_time);
  c.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  // --tls_* cover the TCP ports (a TCP --listen, --ha_listen); --client_tls*
  // cover a slave's channel to its master's --ha_listen.
  APOGEE_ASSIGN_OR_RETURN(c.credentials, apogee::tls::ServerCredentialsFromFlags());
  APOGEE_RETURN_IF_ERROR(apogee::tls::ApplyClientTlsFlags());
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  apogee::ConfigureMutexChecks();
  apogee::BlockTerminationSignals();
  apogee::InitFlags(argc, argv,
                    "apogee-store --data_dir=DIR [--listen=unix:/tmp/apogee-store.sock] "
                    "[--config=FILE] [flags]");
  auto config = ConfigFromFlags();
  if (!config.ok()) return Fail(config.status());
  auto app = apogee::store::StoreApp::Start(std::move(config).value());
  if (!app.ok()) return Fail(app.status());
  const int signal_number = apogee::WaitForTerminationSignal();
  std::fprintf(stderr, "event=stopping signal=%d\n", signal_number);
  (*app)->Stop();
  return 0;
}
