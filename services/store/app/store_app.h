// The store process as an object: its configuration (from flags in
// main.cc), opening the engine (recovery), the wiring of the service,
// replication and metrics, the periodic tasks, and the shutdown sequence.
// main() only parses flags, starts the app and waits for a signal; the
// broker's app (services/broker/app) follows the same shape.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "services/store/engine/store.h"

namespace apogee::store {

inline constexpr char kDefaultHaListen[] = "0.0.0.0:10912";

// Everything the store is started with (one field per flag, README.md).
struct StoreConfig {
  std::string data_dir;  // required
  std::string listen = "unix:/tmp/apogee-store.sock";
  std::string metrics_listen = "0.0.0.0:10921";  // empty disables it
  // Followers connect here; empty disables it. The default port may be
  // taken by another store on the host: then this store serves no followers.
  std::string ha_listen = kDefaultHaListen;
  // TLS of a TCP --listen and of --ha_listen (services/common/tls); null:
  // plaintext. A unix-socket --listen stays plaintext, guarded by its file
  // permissions.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  FlushMode flush = FlushMode::kAsync;
  absl::Duration flush_interval = absl::Milliseconds(500);
  int64_t segment_size = int64_t{1} << 30;
  absl::Duration retention = absl::Hours(72);
  absl::Duration retention_check_interval = absl::Seconds(10);
  double disk_watermark = 0.85;
  int64_t max_body_size = 4 << 20;
  int io_threads = 4;
  bool rebuild_indexes = false;
  int64_t rocksdb_memory_budget = 64 << 20;
  int64_t rocksdb_write_buffer_size = 4 << 20;
  int rocksdb_max_open_files = 256;
  absl::Duration replica_lag_time = absl::Seconds(3);
  absl::Duration shutdown_grace = absl::Seconds(5);
};

// "4MiB", "64KiB", "1GiB", "1048576" → bytes; the error names `flag`.
absl::StatusOr<int64_t> ParseByteSize(const char* flag, const std::string& text);

// "sync" / "async"; the error names the flag.
absl::StatusOr<FlushMode> ParseFlushMode(const std::string& text);

// Ranges and relations; errors name the flag and the allowed range.
absl::Status ValidateStoreConfig(const StoreConfig& config);

class StoreApp {
 public:
  // Validates, creates --data_dir, opens the engine (recovery), serves,
  // starts the tasks and publishes its addresses.
  static absl::StatusOr<std::unique_ptr<StoreApp>> Start(StoreConfig config);
  ~StoreApp();

  // Drains in-flight calls (up to shutdown_grace), stops serving and
  // replicating, appends what is queued, flushes and closes the engine.
  // Idempotent; the destructor calls it.
  void Stop();

  // The store API's address as bound (the port when listening on port 0).
  std::string bound_address() const;
  // --ha_listen's address as bound; empty when replication is not served.
  std::string ha_bound_address() const;

 private:
  struct Modules;
  explicit StoreApp(StoreConfig config);
  absl::Status Open();
  absl::Status Serve();
  absl::Status StartTasks();

  StoreConfig config_;
  std::unique_ptr<Modules> m_;
  bool stopped_ = false;
};

}  // namespace apogee::store
