// Test harness for integration tests: starts a real Apogee binary as a child
// process on a free port (port 0, address written to a file) in a temp dir,
// and waits, with a deadline, until its gRPC health check says SERVING.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"

namespace apogee::testing {

// A temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Not thread-safe: drive one ServiceProcess from one test thread. The child
// is killed when the thread that started it exits, so start processes from a
// thread that outlives them (the test's main thread).
class ServiceProcess {
 public:
  // Starts `binary` with `args` plus `--listen=127.0.0.1:0` (unless args set
  // --listen) and `--address_file=...`, whose grpc= and metrics= lines give
  // the bound addresses. `name` labels the
  // log file <work_dir>/<name>.log. Waits up to `timeout` for SERVING (with
  // --tls_cert only for the address file).
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> Start(
      const std::string& name, const std::string& binary, std::vector<std::string> args,
      const std::string& work_dir, absl::Duration timeout = absl::Seconds(30));

  // An apogee-store (`binary`) keeping its data in <work_dir>/data and
  // serving on the unix socket <work_dir>/store.sock, without metrics.
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> StartStore(const std::string& binary,
                                                                    const std::string& work_dir);

  ~ServiceProcess();  // SIGKILLs a process still running.

  // The gRPC address the process bound, e.g. "127.0.0.1:40123".
  const std::string& address() const { return address_; }
  // The Prometheus endpoint, e.g. "127.0.0.1:40124"; empty when not serving.
  const std::string& metrics_address() const { return metrics_address_; }
  // The broker's --admin_listen address; empty when it serves admin on address().
  const std::string& admin_address() const { return admin_address_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Sends `signal` and waits (bounded) for exit; returns the exit status as
  // waitpid reports it.
  absl::StatusOr<int> Stop(int signal, absl::Duration timeout = absl::Seconds(20));

  // Restarts with the same args (and the same port when `same_port`).
  absl::Status Restart(bool same_port, absl::Duration timeout = absl::Seconds(30));

  // The tail of the process log, for failure messages.
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  ServiceProcess() = default;
  absl::Status Launch(const std::vector<std::string>& args, absl::Duration timeout);

  std::string name_;
  std::string binary_;
  std::vector<std::string> base_args_;
  std::string work_dir_;
  std::string address_file_;
  std::string log_path_;
  std::string address_;
  std::string metrics_address_;
  std::string admin_address_;
  pid_t pid_ = -1;
};

// Forks and execs `binary` with `args` (argv[0] is added), its stdout and
// stderr appended to `log_path`. The child is SIGKILLed when the calling
// thread exits. For processes ServiceProcess cannot drive (e.g. etcd).
absl::StatusOr<pid_t> SpawnProcess(const std::string& binary, const std::vector<std::string>& args,
                                   const std::string& log_path);

// A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM", "RssAnon"); -1
// if absent.
int64_t ProcStatusKb(pid_t pid, const std::string& field);

// Polls a gRPC health check at `address` until SERVING or `timeout`.
absl::Status WaitForServing(const std::string& address, absl::Duration timeout);

// A client context whose deadline is `timeout` from now, with the
// x-mq-client-id header when `client_id` is set (v2 calls need one).
std::unique_ptr<grpc::ClientContext> DeadlineContext(absl::Duration timeout,
                                                     const std::string& client_id = "");

// A TCP port on 127.0.0.1 free at the time of the call (for a flag that
// must name its port before the process starts, e.g. a store's HA port
// that keeps its number across restarts).
absl::StatusOr<int> FreeLocalPort();

// Plain HTTP/1.0 GET of http://<address><path>; returns the body. For
// scraping /metrics in tests.
absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path);

// The sum of the samples of metric `name` at http://<address>/metrics whose
// labels include every `labels` pair (label="value"); 0 when none matches.
absl::StatusOr<double> ScrapeMetric(
    const std::string& address, const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& labels = {});

// Runs `<source_dir>/tests/interop/node/run.sh <script> <args>` (the
// official Node client), stdout and stderr to `log_path`; answers node's exit
// code (-1 when it did not exit normally) and the output.
std::pair<int, std::string> RunNodeInterop(const std::string& source_dir, const std::string& script,
                                           const std::string& args, const std::string& log_path);

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
// Returns whether it held. For tests: bounded waiting without fixed sleeps.
template <typename Condition>
bool PollUntil(Condition condition, absl::Duration timeout,
               absl::Duration interval = absl::Milliseconds(20));

}  // namespace apogee::testing

#include "services/common/testing/process_inl.h"
