#include "services/store/app/store_app.h"

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
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/security/server_credentials.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/executor.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/config/flags.h"
#include "services/common/metrics/exposer.h"
#include "services/common/naming/names.h"
#include "services/common/server/grpc_server.h"
#include "services/common/status/status_macros.h"
#include "services/store/metrics/probe.h"
#include "services/store/replication/replicator.h"
#include "services/store/service/record_codec.h"
#include "services/store/service/socket_watch.h"
#include "services/store/service/store_service.h"
#include "services/store/typed/timer_service.h"

namespace apogee::store {
namespace {

// The binary units byte-size flags take and print, largest first.
constexpr std::pair<const char*, int64_t> kByteUnits[] = {{"TiB", int64_t{1} << 40},
                                                          {"GiB", int64_t{1} << 30},
                                                          {"MiB", int64_t{1} << 20},
                                                          {"KiB", int64_t{1} << 10}};

// 4096 → "4KiB": the largest unit that divides the size, as flags write it.
std::string FormatByteSize(int64_t bytes) {
  for (const auto& [suffix, scale] : kByteUnits) {
    if (bytes != 0 && bytes % scale == 0) return absl::StrCat(bytes / scale, suffix);
  }
  return absl::StrCat(bytes);
}

absl::Status CheckRange(const char* flag, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", FormatByteSize(value), " is out of range (allowed: ", FormatByteSize(min),
        "..", FormatByteSize(max), ")"));
  }
  return absl::OkStatus();
}

// Creates --data_dir if needed and proves it is writable.
absl::Status CheckDataDir(const std::string& dir) {
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

absl::StatusOr<int64_t> ParseByteSize(const char* flag, const std::string& text) {
  std::string number = std::string(absl::StripAsciiWhitespace(text));
  int64_t unit = 1;
  for (const auto& [suffix, scale] : kByteUnits) {
    if (absl::EndsWith(number, suffix)) {
      number.resize(number.size() - std::strlen(suffix));
      unit = scale;
      break;
    }
  }
  if (unit == 1 && absl::EndsWith(number, "B")) number.pop_back();
  int64_t value = 0;
  if (!absl::SimpleAtoi(number, &value) || value < 0 ||
      value > std::numeric_limits<int64_t>::max() / unit) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", text,
                                                   " is not a byte size (e.g. 65536, 64KiB, "
                                                   "4MiB, 1GiB)"));
  }
  return value * unit;
}

absl::StatusOr<FlushMode> ParseFlushMode(const std::string& text) {
  if (text == "sync") return FlushMode::kSync;
  if (text == "async") return FlushMode::kAsync;
  return absl::InvalidArgumentError(
      absl::StrCat("--flush=", text, " is not a flush mode (allowed: sync, async)"));
}

absl::Status ValidateStoreConfig(const StoreConfig& c) {
  if (c.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "--data_dir is required (the directory for the commit log and indexes)");
  }
  constexpr int64_t kTiB = int64_t{1} << 40;
  APOGEE_RETURN_IF_ERROR(CheckRange("segment_size", c.segment_size, 64 << 10, kTiB));
  APOGEE_RETURN_IF_ERROR(CheckRange("max_body_size", c.max_body_size, 1, 64 << 20));
  APOGEE_RETURN_IF_ERROR(
      CheckRange("rocksdb_memory_budget", c.rocksdb_memory_budget, int64_t{1} << 20, kTiB));
  APOGEE_RETURN_IF_ERROR(
      CheckRange("rocksdb_write_buffer_size", c.rocksdb_write_buffer_size, 64 << 10, kTiB));
  if (c.rocksdb_max_open_files != -1 &&
      (c.rocksdb_max_open_files < 16 || c.rocksdb_max_open_files > (1 << 20))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rocksdb_max_open_files=", c.rocksdb_max_open_files,
                     " is out of range (allowed: 16..1048576, or -1 "
                     "to keep every file open)"));
  }
  if (c.rocksdb_write_buffer_size > c.rocksdb_memory_budget / 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--rocksdb_write_buffer_size=", FormatByteSize(c.rocksdb_write_buffer_size),
        " is more than half of --rocksdb_memory_budget=", FormatByteSize(c.rocksdb_memory_budget),
        " (", c.rocksdb_memory_budget / 2, " bytes)"));
  }
  if (!(c.disk_watermark > 0 && c.disk_watermark <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--disk_watermark=", c.disk_watermark, " is out of range (allowed: (0, 1]; 1 disables)"));
  }
  if (c.io_threads < 1 || c.io_threads > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("--io_threads=", c.io_threads, " is out of range (allowed: 1..256)"));
  }
  APOGEE_RETURN_IF_ERROR(CheckDurationFlag("flush_interval", c.flush_interval,
                                           absl::Milliseconds(1), absl::Minutes(10)));
  // Seconds are for tests; production keeps hours or days.
  APOGEE_RETURN_IF_ERROR(
      CheckDurationFlag("retention", c.retention, absl::Seconds(1), absl::Hours(24 * 3650)));
  APOGEE_RETURN_IF_ERROR(CheckDurationFlag("retention_check_interval", c.retention_check_interval,
                                           absl::Milliseconds(100), absl::Hours(1)));
  APOGEE_RETURN_IF_ERROR(CheckDurationFlag("shutdown_grace", c.shutdown_grace, absl::ZeroDuration(),
                                           absl::Minutes(10)));
  return CheckDurationFlag("replica_lag_time", c.replica_lag_time, absl::Milliseconds(100),
                           absl::Minutes(10));
}

// Declared in construction order; destroyed in reverse.
struct StoreApp::Modules {
  std::shared_ptr<prometheus::Registry> metrics_registry;
  std::unique_ptr<Probe> probe;
  // The replicator exists only once the engine is open; commits before that
  // are picked up by its initial read of the log end.
  std::atomic<Replicator*> commit_target{nullptr};
  // Likewise the timer service: woken when a timer is indexed.
  std::atomic<TimerService*> timer_target{nullptr};
  std::unique_ptr<Store> engine;
  std::unique_ptr<ReplicationMetrics> replication_metrics;
  std::unique_ptr<Replicator> replicator;
  QueueWatch queue_watch;  // fired timers, committed transactions -> WatchQueues streams
  std::unique_ptr<TimerService> timers;
  std::unique_ptr<TransactionService> transactions;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<StoreService> service;
  std::unique_ptr<MetricsEndpoint> metrics;
  std::string socket_path;  // of a unix: --listen
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<ReplicationService> ha_service;
  std::unique_ptr<GrpcServer> ha_server;  // --ha_listen on a server of its own (TCP --listen)
  std::string ha_bound;                   // --ha_listen's bound address, either way
  std::optional<PeriodicTask> flusher;
  std::optional<PeriodicTask> refresher;
  std::optional<PeriodicTask> socket_watcher;
};

StoreApp::StoreApp(StoreConfig config)
    : config_(std::move(config)), m_(std::make_unique<Modules>()) {}

StoreApp::~StoreApp() { Stop(); }

absl::StatusOr<std::unique_ptr<StoreApp>> StoreApp::Start(StoreConfig config) {
  APOGEE_RETURN_IF_ERROR(ValidateStoreConfig(config));
  APOGEE_RETURN_IF_ERROR(CheckDataDir(config.data_dir));
  std::unique_ptr<StoreApp> app(new StoreApp(std::move(config)));
  APOGEE_RETURN_IF_ERROR(app->Open());
  APOGEE_RETURN_IF_ERROR(app->Serve());
  APOGEE_RETURN_IF_ERROR(app->StartTasks());
  const StoreConfig& c = app->config_;
  APOGEE_RETURN_IF_ERROR(
      PublishAddresses(app->m_->server->bound_address(), app->m_->metrics->bound_address()));
  std::fprintf(stderr,
               "event=started listen=%s tls=%s metrics=%s ha_listen=%s data_dir=%s flush=%s "
               "segment_size=%lld max_body_size=%lld rocksdb_memory_budget=%lld "
               "rocksdb_write_buffer_size=%lld\n",
               app->m_->server->bound_address().c_str(), c.credentials != nullptr ? "on" : "off",
               app->m_->metrics->bound_address().c_str(), app->m_->ha_bound.c_str(),
               c.data_dir.c_str(), c.flush == FlushMode::kSync ? "sync" : "async",
               static_cast<long long>(c.segment_size), static_cast<long long>(c.max_body_size),
               static_cast<long long>(c.rocksdb_memory_budget),
               static_cast<long long>(c.rocksdb_write_buffer_size));
  return app;
}

absl::Status StoreApp::Open() {
  const StoreConfig& c = config_;
  Modules& m = *m_;
  m.metrics_registry = std::make_shared<prometheus::Registry>();
  m.probe = std::make_unique<Probe>(m.metrics_registry);

  StoreOptions options;
  options.data_dir = c.data_dir;
  options.segment_size = c.segment_size;
  // The engine's limit leaves room for the message headers around a body.
  options.max_body_size = EngineBodyLimit(static_cast<uint32_t>(c.max_body_size));
  options.flush_mode = c.flush;
  options.flush_interval = absl::ZeroDuration();  // the app's flush task, timed by the probe
  options.retention.retention = c.retention;
  options.retention.check_interval = c.retention_check_interval;
  options.retention.disk_usage_watermark = c.disk_watermark;
  options.rebuild_indexes = c.rebuild_indexes;
  options.index_memory_budget = c.rocksdb_memory_budget;
  options.index_write_buffer_size = c.rocksdb_write_buffer_size;
  options.index_max_open_files = c.rocksdb_max_open_files;
  options.on_dispatch = [target = &m.timer_target](const std::vector<QueueAdvance>& advances) {
    TimerService* t = target->load();
    if (t == nullptr) return;
    for (const QueueAdvance& a : advances) {
      if (a.queue.topic == kTimerTopic) return t->Wake();
    }
  };
  options.on_commit = [target = &m.commit_target](int64_t end) {
    if (Replicator* r = target->load()) r->OnCommitted(end);
  };
  const absl::Time open_start = absl::Now();
  auto opened = Store::Create(options);
  if (!opened.ok()) {
    std::string hint;
    if (absl::StrContains(opened.status().message(), "segment_size")) {
      hint = absl::StrCat(
          " (raise --segment_size or lower --max_body_size; the engine limit is "
          "--max_body_size plus ",
          options.max_body_size - c.max_body_size, " bytes of message headroom)");
    }
    return absl::Status(opened.status().code(),
                        absl::StrCat("cannot open the store in --data_dir=", c.data_dir, ": ",
                                     opened.status().message(), hint));
  }
  m.engine = std::move(opened).value();
  const absl::Duration open_took = absl::Now() - open_start;
  const RecoveryReport& recovery = m.engine->recovery_report();
  m.probe->OnRecovery(open_took, recovery);
  std::fprintf(stderr,
               "event=recovered data_dir=%s took=%s segments=%d truncated_bytes=%lld "
               "truncation=\"%s\" index_rebuilt=%d replayed_bytes=%lld\n",
               c.data_dir.c_str(), absl::FormatDuration(open_took).c_str(), recovery.log.segments,
               static_cast<long long>(recovery.log.truncated_bytes),
               recovery.log.truncation_reason.c_str(), recovery.index_rebuilt ? 1 : 0,
               static_cast<long long>(recovery.replayed_to - recovery.replayed_from));

  m.replication_metrics = std::make_unique<ReplicationMetrics>(*m.metrics_registry);
  ReplicatorOptions replicator_options;
  replicator_options.state_dir = JoinPath(c.data_dir, "replication");
  replicator_options.replica_lag_time = c.replica_lag_time;
  APOGEE_ASSIGN_OR_RETURN(
      m.replicator,
      Replicator::Create(m.engine.get(), m.replication_metrics.get(), replicator_options));
  m.commit_target.store(m.replicator.get());

  TimerServiceOptions timer_options;
  timer_options.watch = &m.queue_watch;
  m.timers = std::make_unique<TimerService>(m.engine.get(), RealClock::Default(), timer_options,
                                            m.metrics_registry.get());
  m.timer_target.store(m.timers.get());
  m.engine->SetTimerCarrier(m.timers.get());  // retention carries timers forward
  m.timers->Start();
  m.transactions = std::make_unique<TransactionService>(m.engine.get(), m.metrics_registry.get(),
                                                        &m.queue_watch);

  m.executor = std::make_unique<Executor>(c.io_threads);
  StoreServiceOptions service_options;
  service_options.max_body_size = RecordBodyLimit(static_cast<uint32_t>(c.max_body_size));
  service_options.data_dir = c.data_dir;
  service_options.replicator = m.replicator.get();
  service_options.queue_watch = &m.queue_watch;
  service_options.transactions = m.transactions.get();
  // A store on a unix socket serves replication from the same server (one
  // polling thread for both ports) and its own API only on the socket.
  service_options.local_calls_only = !UnixSocketPath(c.listen).empty() && !c.ha_listen.empty();
  service_options.appender.await_replicas = [r = m.replicator.get()](int64_t end,
                                                                     absl::Time stored_at) {
    return r->AwaitReplicas(end, stored_at);
  };
  service_options.appender.lead_inline = c.flush == FlushMode::kAsync;
  // A merged append must fit in one segment.
  service_options.appender.max_group_bytes =
      std::min<int64_t>(service_options.appender.max_group_bytes, c.segment_size / 2);
  m.service = std::make_unique<StoreService>(m.engine.get(), m.executor.get(), m.probe.get(),
                                             service_options);
  return absl::OkStatus();
}

absl::Status StoreApp::Serve() {
  const StoreConfig& c = config_;
  Modules& m = *m_;
  APOGEE_ASSIGN_OR_RETURN(m.metrics, MetricsEndpoint::Start(c.metrics_listen, m.metrics_registry));
  GrpcServerOptions server_options;
  server_options.listen = c.listen;
  m.socket_path = UnixSocketPath(c.listen);
  if (!m.socket_path.empty()) APOGEE_RETURN_IF_ERROR(RemoveStaleSocket(m.socket_path));
  if (m.socket_path.empty()) server_options.credentials = c.credentials;
  m.ha_service = std::make_unique<ReplicationService>(m.replicator.get());
  if (!m.socket_path.empty() && !c.ha_listen.empty()) {
    // One server, one polling thread: the socket with local credentials
    // (how StoreService tells its calls apart), --ha_listen beside it.
    GrpcServerOptions both = server_options;
    both.credentials = grpc::experimental::LocalServerCredentials(UDS);
    both.extra_listen = c.ha_listen;
    both.extra_listen_flag = "--ha_listen";
    both.extra_credentials = c.credentials;
    auto started = GrpcServer::Start(both, {m.service.get(), m.ha_service.get()});
    if (started.ok()) {
      m.server = std::move(started).value();
      m.ha_bound = m.server->extra_bound_address();
      return absl::OkStatus();
    }
    if (c.ha_listen != kDefaultHaListen) {
      return absl::Status(started.status().code(),
                          absl::StrCat("--ha_listen: ", started.status().message()));
    }
    std::fprintf(stderr,
                 "event=ha_listen_unavailable ha_listen=%s error=\"%s\" action=\"not serving "
                 "followers; set --ha_listen\"\n",
                 c.ha_listen.c_str(), std::string(started.status().message()).c_str());
    server_options.credentials = both.credentials;  // StoreService still wants local calls
    APOGEE_ASSIGN_OR_RETURN(m.server, GrpcServer::Start(server_options, {m.service.get()}));
    return absl::OkStatus();
  }
  APOGEE_ASSIGN_OR_RETURN(m.server, GrpcServer::Start(server_options, {m.service.get()}));
  if (c.ha_listen.empty()) return absl::OkStatus();
  GrpcServerOptions ha_options;
  ha_options.listen = c.ha_listen;
  ha_options.credentials = c.credentials;
  auto started = GrpcServer::Start(ha_options, {m.ha_service.get()});
  if (started.ok()) {
    m.ha_server = std::move(started).value();
    m.ha_bound = m.ha_server->bound_address();
  } else if (c.ha_listen != kDefaultHaListen) {
    return absl::Status(started.status().code(),
                        absl::StrCat("--ha_listen: ", started.status().message()));
  } else {
    // The default port is taken (another store on this host): a store
    // nobody follows runs on; one meant to be followed sets --ha_listen.
    std::fprintf(stderr,
                 "event=ha_listen_unavailable ha_listen=%s error=\"%s\" action=\"not serving "
                 "followers; set --ha_listen\"\n",
                 c.ha_listen.c_str(), std::string(started.status().message()).c_str());
  }
  return absl::OkStatus();
}

absl::Status StoreApp::StartTasks() {
  Modules& m = *m_;
  Store* store = m.engine.get();
  Probe* probe = m.probe.get();
  m.flusher.emplace(config_.flush_interval, [store, probe] {
    const absl::Time start = absl::Now();
    absl::Status status = store->Flush();
    probe->OnFlush(absl::Now() - start, status.ok());
    if (!status.ok()) {
      std::fprintf(stderr, "event=flush_failed error=\"%s\"\n",
                   std::string(status.message()).c_str());
    }
  });
  auto refresh = [store, probe, data_dir = config_.data_dir, metrics = m.replication_metrics.get(),
                  r = m.replicator.get()] {
    probe->Refresh(*store, data_dir);
    metrics->Refresh(r->Status());
  };
  refresh();
  m.refresher.emplace(absl::Seconds(2), refresh);
  if (m.socket_path.empty()) return absl::OkStatus();
  APOGEE_ASSIGN_OR_RETURN(SocketWatch watch, SocketWatch::Create(m.socket_path));
  m.socket_watcher.emplace(absl::Seconds(1), [watch = std::move(watch)]() mutable {
    if (std::optional<std::string> lost = watch.Check()) {
      std::fprintf(stderr,
                   "event=listen_socket_lost path=%s reason=\"%s\" action=\"not re-created; "
                   "the broker cannot connect until the store is restarted\"\n",
                   watch.path().c_str(), lost->c_str());
    }
  });
  return absl::OkStatus();
}

std::string StoreApp::bound_address() const { return m_->server->bound_address(); }
std::string StoreApp::ha_bound_address() const { return m_->ha_bound; }

void StoreApp::Stop() {
  if (stopped_) return;
  stopped_ = true;
  Modules& m = *m_;
  const absl::Time stop_start = absl::Now();
  if (m.server != nullptr) {
    // Drain first: answer what is in flight, then close at once. (gRPC's own
    // graceful shutdown also waits for idle client connections to go away,
    // which a broker's never does, so it would always take the full grace.)
    m.server->SetServing(false);
    m.service->StartDraining();
    const absl::Time drain_deadline = stop_start + config_.shutdown_grace;
    while (m.service->active_calls() > 0 && absl::Now() < drain_deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    std::fprintf(stderr, "event=drained unfinished_calls=%d took=%s\n", m.service->active_calls(),
                 absl::FormatDuration(absl::Now() - stop_start).c_str());
    // Replication shares the server when --listen is a socket: end its
    // follower streams first (appends are drained) so the server's shutdown
    // does not wait for them.
    if (m.ha_server == nullptr && m.replicator != nullptr) m.replicator->Shutdown();
    m.server->Shutdown(absl::ZeroDuration());  // cancels what the grace did not finish
  }
  if (m.replicator != nullptr) m.replicator->Shutdown();  // ends follower streams and following
  if (m.ha_server != nullptr) m.ha_server->Shutdown(absl::ZeroDuration());
  std::fprintf(stderr, "event=server_stopped took=%s\n",
               absl::FormatDuration(absl::Now() - stop_start).c_str());
  m.socket_watcher.reset();
  m.refresher.reset();
  m.flusher.reset();
  m.service.reset();  // appends what is still queued
  m.timer_target.store(nullptr);
  if (m.engine != nullptr) m.engine->SetTimerCarrier(nullptr);
  if (m.timers != nullptr) m.timers->Stop();
  m.timers.reset();
  m.commit_target.store(nullptr);
  m.replicator.reset();
  m.executor.reset();  // finishes queued unary calls
  m.engine.reset();    // flushes, dispatches what is committed, closes RocksDB
  if (!m.socket_path.empty() && m.server != nullptr) ::unlink(m.socket_path.c_str());
  std::fprintf(stderr, "event=stopped took=%s\n",
               absl::FormatDuration(absl::Now() - stop_start).c_str());
}

}  // namespace apogee::store
