// apogee-store: the storage sidecar of one broker. Owns the broker's disk
// (commit log + RocksDB indexes under --data_dir) and serves
// apogee.store.v1.Store, by default on a unix socket in the same pod.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/health_check_service_interface.h"
#include "services/common/concurrency/executor.h"
#include "services/common/concurrency/mutex_checks.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/config/flags.h"
#include "services/common/metrics/exposer.h"
#include "services/common/server/grpc_server.h"
#include "services/common/tls/flags.h"
#include "services/store/engine/store.h"
#include "services/store/metrics/probe.h"
#include "services/store/replication/replicator.h"
#include "services/store/service/record_codec.h"
#include "services/store/service/socket_watch.h"
#include "services/store/service/store_service.h"

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
constexpr char kDefaultHaListen[] = "0.0.0.0:10912";
ABSL_FLAG(std::string, ha_listen, kDefaultHaListen,
          "Replication (HA) address, host:port: slaves' stores follow this store here when it "
          "is a master; empty disables serving followers");
ABSL_FLAG(absl::Duration, replica_lag_time, absl::Seconds(3),
          "A follower stays in the in-sync set while it has held the whole log as it was at "
          "most this long ago");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "On SIGTERM, how long in-flight calls may take before they are cancelled");

namespace {

using apogee::store::FlushMode;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "apogee-store: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

// "4MiB", "64KiB", "1GiB", "1048576".
absl::StatusOr<int64_t> ParseByteSize(const char* flag, const std::string& text, int64_t min,
                                      int64_t max) {
  std::string number = std::string(absl::StripAsciiWhitespace(text));
  int64_t unit = 1;
  for (const auto& [suffix, scale] : {std::pair<const char*, int64_t>{"KiB", int64_t{1} << 10},
                                      {"MiB", int64_t{1} << 20},
                                      {"GiB", int64_t{1} << 30},
                                      {"B", 1}}) {
    if (absl::EndsWith(number, suffix)) {
      number.resize(number.size() - std::strlen(suffix));
      unit = scale;
      break;
    }
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(number, &value) || value < 0 || value > max / unit) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", text,
                                                   " is not a byte size (e.g. 65536, 64KiB, "
                                                   "4MiB, 1GiB)"));
  }
  value *= unit;
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", text, " is out of range (", min, "..", max, " bytes)"));
  }
  return value;
}

absl::Status CheckDuration(const char* name, absl::Duration value, absl::Duration min,
                           absl::Duration max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "=", absl::FormatDuration(value), " is out of range (allowed: ",
                     absl::FormatDuration(min), "..", absl::FormatDuration(max), ")"));
  }
  return absl::OkStatus();
}

// Creates --data_dir if needed and proves it is writable.
absl::Status CheckDataDir(const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        "--data_dir is required (the directory for the commit log "
        "and indexes)");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("--data_dir=", dir, " cannot be created: ", ec.message()));
  }
  const std::string probe = absl::StrCat(dir, "/.apogee-store-write-check");
  const int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::write(fd, "x", 1) != 1) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("--data_dir=", dir, " is not writable: ", std::strerror(err)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return absl::OkStatus();
}

// The socket path of a "unix:" listen address, or "" for host:port.
std::string UnixSocketPath(const std::string& listen) {
  if (!absl::StartsWith(listen, "unix:")) return "";
  std::string path = listen.substr(5);
  if (absl::StartsWith(path, "//")) path = path.substr(2);  // unix:///abs/path
  return path;
}

// Removes a socket file left by a store that died, but never one a live
// process still serves on, nor a file that is not a socket.
absl::Status RemoveStaleSocket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return absl::OkStatus();  // nothing there
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--listen path ", path, " exists and is not a socket; not removing it"));
  }
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("--listen path ", path, " is longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    if (live) {
      return absl::FailedPreconditionError(absl::StrCat("another process is serving on unix:", path,
                                                        " (stop it or choose another --listen)"));
    }
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot remove stale socket ", path, ": ", std::strerror(errno)));
  }
  std::fprintf(stderr, "event=stale_socket_removed path=%s\n", path.c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  apogee::ConfigureMutexChecks();
  apogee::BlockTerminationSignals();
  apogee::InitFlags(argc, argv,
                    "apogee-store --data_dir=DIR [--listen=unix:/tmp/apogee-store.sock] "
                    "[--config=FILE] [flags]");
  using namespace apogee;
  using namespace apogee::store;

  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const std::string flush = absl::GetFlag(FLAGS_flush);
  if (flush != "sync" && flush != "async") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--flush=", flush, " is not a flush mode (allowed: sync, async)")));
  }
  auto segment_size =
      ParseByteSize("segment_size", absl::GetFlag(FLAGS_segment_size), 64 << 10, int64_t{1} << 40);
  if (!segment_size.ok()) return Fail(segment_size.status());
  auto max_body_size =
      ParseByteSize("max_body_size", absl::GetFlag(FLAGS_max_body_size), 1, 64 << 20);
  if (!max_body_size.ok()) return Fail(max_body_size.status());
  auto memory_budget =
      ParseByteSize("rocksdb_memory_budget", absl::GetFlag(FLAGS_rocksdb_memory_budget),
                    int64_t{1} << 20, int64_t{1} << 40);
  if (!memory_budget.ok()) return Fail(memory_budget.status());
  auto write_buffer_size =
      ParseByteSize("rocksdb_write_buffer_size", absl::GetFlag(FLAGS_rocksdb_write_buffer_size),
                    64 << 10, int64_t{1} << 40);
  if (!write_buffer_size.ok()) return Fail(write_buffer_size.status());
  if (*write_buffer_size > *memory_budget / 2) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--rocksdb_write_buffer_size=", absl::GetFlag(FLAGS_rocksdb_write_buffer_size),
        " is more than half of --rocksdb_memory_budget=",
        absl::GetFlag(FLAGS_rocksdb_memory_budget), " (", *memory_budget / 2, " bytes)")));
  }
  const double watermark = absl::GetFlag(FLAGS_disk_watermark);
  if (!(watermark > 0 && watermark <= 1)) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--disk_watermark=", watermark, " is out of range (allowed: (0, 1]; 1 disables)")));
  }
  const int io_threads = absl::GetFlag(FLAGS_io_threads);
  if (io_threads < 1 || io_threads > 256) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--io_threads=", io_threads, " is out of range (allowed: 1..256)")));
  }
  const absl::Duration flush_interval = absl::GetFlag(FLAGS_flush_interval);
  for (const absl::Status& s :
       {CheckDuration("flush_interval", flush_interval, absl::Milliseconds(1), absl::Minutes(10)),
        // Seconds are for tests; production keeps hours or days.
        CheckDuration("retention", absl::GetFlag(FLAGS_retention), absl::Seconds(1),
                      absl::Hours(24 * 3650)),
        CheckDuration("retention_check_interval", absl::GetFlag(FLAGS_retention_check_interval),
                      absl::Milliseconds(100), absl::Hours(1)),
        CheckDuration("shutdown_grace", absl::GetFlag(FLAGS_shutdown_grace), absl::ZeroDuration(),
                      absl::Minutes(10)),
        CheckDuration("replica_lag_time", absl::GetFlag(FLAGS_replica_lag_time),
                      absl::Milliseconds(100), absl::Minutes(10)),
        CheckDataDir(data_dir)}) {
    if (!s.ok()) return Fail(s);
  }

  auto metrics_registry = std::make_shared<prometheus::Registry>();
  Probe probe(metrics_registry);

  StoreOptions options;
  options.data_dir = data_dir;
  options.segment_size = *segment_size;
  // The engine sees bodies with the service's tag envelope in front.
  options.max_body_size = EngineBodyLimit(static_cast<uint32_t>(*max_body_size));
  options.flush_mode = flush == "sync" ? FlushMode::kSync : FlushMode::kAsync;
  options.flush_interval = absl::ZeroDuration();  // main's flush task below, timed by the probe
  options.retention.retention = absl::GetFlag(FLAGS_retention);
  options.retention.check_interval = absl::GetFlag(FLAGS_retention_check_interval);
  options.retention.disk_usage_watermark = watermark;
  options.rebuild_indexes = absl::GetFlag(FLAGS_rebuild_indexes);
  options.index_memory_budget = *memory_budget;
  options.index_write_buffer_size = *write_buffer_size;
  // The replicator exists only once the store is open; commits before that
  // are picked up by its initial read of the log end.
  std::atomic<Replicator*> commit_target{nullptr};
  options.on_commit = [&commit_target](int64_t end) {
    if (Replicator* r = commit_target.load()) r->OnCommitted(end);
  };
  const absl::Time open_start = absl::Now();
  auto opened = Store::Create(options);
  if (!opened.ok()) {
    std::string hint;
    if (absl::StrContains(opened.status().message(), "segment_size")) {
      hint = absl::StrCat(
          " (raise --segment_size or lower --max_body_size; the engine limit is "
          "--max_body_size plus ",
          options.max_body_size - *max_body_size, " bytes of message headroom and tag envelope)");
    }
    return Fail(absl::Status(opened.status().code(),
                             absl::StrCat("cannot open the store in --data_dir=", data_dir, ": ",
                                          opened.status().message(), hint)));
  }
  std::unique_ptr<Store> engine = std::move(opened).value();
  const absl::Duration open_took = absl::Now() - open_start;
  const RecoveryReport& recovery = engine->recovery_report();
  probe.OnRecovery(open_took, recovery);
  std::fprintf(stderr,
               "event=recovered data_dir=%s took=%s segments=%d truncated_bytes=%lld "
               "truncation=\"%s\" index_rebuilt=%d replayed_bytes=%lld\n",
               data_dir.c_str(), absl::FormatDuration(open_took).c_str(), recovery.log.segments,
               static_cast<long long>(recovery.log.truncated_bytes),
               recovery.log.truncation_reason.c_str(), recovery.index_rebuilt ? 1 : 0,
               static_cast<long long>(recovery.replayed_to - recovery.replayed_from));

  ReplicationMetrics replication_metrics(*metrics_registry);
  ReplicatorOptions replicator_options;
  replicator_options.state_dir = JoinPath(data_dir, "replication");
  replicator_options.replica_lag_time = absl::GetFlag(FLAGS_replica_lag_time);
  auto created_replicator =
      Replicator::Create(engine.get(), &replication_metrics, replicator_options);
  if (!created_replicator.ok()) return Fail(created_replicator.status());
  std::unique_ptr<Replicator> replicator = std::move(created_replicator).value();
  commit_target.store(replicator.get());

  auto executor = std::make_unique<Executor>(io_threads);
  StoreServiceOptions service_options;
  service_options.max_body_size = RecordBodyLimit(static_cast<uint32_t>(*max_body_size));
  service_options.data_dir = data_dir;
  service_options.replicator = replicator.get();
  service_options.appender.await_replicas = [r = replicator.get()](int64_t end,
                                                                   absl::Time stored_at) {
    return r->AwaitReplicas(end, stored_at);
  };
  // A merged append must fit in one segment.
  service_options.appender.max_group_bytes =
      std::min<int64_t>(service_options.appender.max_group_bytes, *segment_size / 2);
  auto service =
      std::make_unique<StoreService>(engine.get(), executor.get(), &probe, service_options);

  auto metrics = MetricsEndpoint::Start(absl::GetFlag(FLAGS_metrics_listen), metrics_registry);
  if (!metrics.ok()) return Fail(metrics.status());

  // --tls_* cover the TCP ports (a TCP --listen, --ha_listen); the unix
  // socket stays plaintext, guarded by its file permissions. --client_tls*
  // cover a slave's channel to its master's --ha_listen.
  auto credentials = tls::ServerCredentialsFromFlags();
  if (!credentials.ok()) return Fail(credentials.status());
  if (absl::Status s = tls::ApplyClientTlsFlags(); !s.ok()) return Fail(s);
  GrpcServerOptions server_options;
  server_options.listen = absl::GetFlag(FLAGS_listen);
  const std::string socket_path = UnixSocketPath(server_options.listen);
  if (socket_path.empty()) server_options.credentials = *credentials;
  if (!socket_path.empty()) {
    absl::Status removed = RemoveStaleSocket(socket_path);
    if (!removed.ok()) return Fail(removed);
  }
  auto server = GrpcServer::Start(server_options, {service.get()});
  if (!server.ok()) return Fail(server.status());
  ReplicationService ha_service(replicator.get());
  std::unique_ptr<GrpcServer> ha_server;
  if (!absl::GetFlag(FLAGS_ha_listen).empty()) {
    GrpcServerOptions ha_options;
    ha_options.listen = absl::GetFlag(FLAGS_ha_listen);
    ha_options.credentials = *credentials;
    auto started = GrpcServer::Start(ha_options, {&ha_service});
    if (started.ok()) {
      ha_server = std::move(started).value();
    } else if (ha_options.listen != kDefaultHaListen) {
      return Fail(absl::Status(started.status().code(),
                               absl::StrCat("--ha_listen: ", started.status().message())));
    } else {
      // The default port is taken (another store on this host): a store
      // nobody follows runs on; one meant to be followed sets --ha_listen.
      std::fprintf(stderr,
                   "event=ha_listen_unavailable ha_listen=%s error=\"%s\" action=\"not serving "
                   "followers; set --ha_listen\"\n",
                   ha_options.listen.c_str(), std::string(started.status().message()).c_str());
    }
  }

  Store* store = engine.get();
  PeriodicTask flusher(flush_interval, [store, &probe] {
    const absl::Time start = absl::Now();
    absl::Status status = store->Flush();
    probe.OnFlush(absl::Now() - start, status.ok());
    if (!status.ok()) {
      std::fprintf(stderr, "event=flush_failed error=\"%s\"\n",
                   std::string(status.message()).c_str());
    }
  });
  probe.Refresh(*store, data_dir);
  replication_metrics.Refresh(replicator->Status());
  PeriodicTask refresher(absl::Seconds(2),
                         [store, &probe, &data_dir, &replication_metrics, r = replicator.get()] {
                           probe.Refresh(*store, data_dir);
                           replication_metrics.Refresh(r->Status());
                         });
  std::optional<PeriodicTask> socket_watcher;
  if (!socket_path.empty()) {
    auto watch = SocketWatch::Create(socket_path);
    if (!watch.ok()) return Fail(watch.status());
    socket_watcher.emplace(absl::Seconds(1), [watch = *std::move(watch)]() mutable {
      if (std::optional<std::string> lost = watch.Check()) {
        std::fprintf(stderr,
                     "event=listen_socket_lost path=%s reason=\"%s\" action=\"not re-created; "
                     "the broker cannot connect until the store is restarted\"\n",
                     watch.path().c_str(), lost->c_str());
      }
    });
  }

  absl::Status published =
      PublishAddresses((*server)->bound_address(), (*metrics)->bound_address());
  if (!published.ok()) return Fail(published);
  std::fprintf(
      stderr,
      "event=started listen=%s tls=%s metrics=%s ha_listen=%s data_dir=%s flush=%s "
      "segment_size=%lld max_body_size=%lld rocksdb_memory_budget=%lld "
      "rocksdb_write_buffer_size=%lld\n",
      (*server)->bound_address().c_str(), absl::GetFlag(FLAGS_tls_cert).empty() ? "off" : "on",
      (*metrics)->bound_address().c_str(),
      ha_server != nullptr ? ha_server->bound_address().c_str() : "", data_dir.c_str(),
      flush.c_str(), static_cast<long long>(*segment_size), static_cast<long long>(*max_body_size),
      static_cast<long long>(*memory_budget), static_cast<long long>(*write_buffer_size));

  const int signal_number = WaitForTerminationSignal();
  std::fprintf(stderr, "event=stopping signal=%d\n", signal_number);
  const absl::Time stop_start = absl::Now();
  // Drain first: answer what is in flight, then close at once. (gRPC's own
  // graceful shutdown also waits for idle client connections to go away,
  // which a broker's never does, so it would always take the full grace.)
  (*server)->server()->GetHealthCheckService()->SetServingStatus(false);
  service->StartDraining();
  const absl::Time drain_deadline = stop_start + absl::GetFlag(FLAGS_shutdown_grace);
  while (service->active_calls() > 0 && absl::Now() < drain_deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::fprintf(stderr, "event=drained unfinished_calls=%d took=%s\n", service->active_calls(),
               absl::FormatDuration(absl::Now() - stop_start).c_str());
  (*server)->Shutdown(absl::ZeroDuration());  // cancels what the grace did not finish
  replicator->Shutdown();                     // ends follower streams and following
  if (ha_server != nullptr) ha_server->Shutdown(absl::ZeroDuration());
  std::fprintf(stderr, "event=server_stopped took=%s\n",
               absl::FormatDuration(absl::Now() - stop_start).c_str());
  if (socket_watcher.has_value()) socket_watcher->Stop();
  refresher.Stop();
  flusher.Stop();
  service.reset();  // appends what is still queued
  commit_target.store(nullptr);
  replicator.reset();
  executor.reset();  // finishes queued unary calls
  engine.reset();    // flushes, dispatches what is committed, closes RocksDB
  if (!socket_path.empty()) ::unlink(socket_path.c_str());
  std::fprintf(stderr, "event=stopped took=%s\n",
               absl::FormatDuration(absl::Now() - stop_start).c_str());
  return 0;
}
