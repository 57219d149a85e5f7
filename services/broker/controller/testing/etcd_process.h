// Test harness: a real single-member etcd (/usr/bin/etcd, Debian's
// etcd-server) on 127.0.0.1 with free ports and a data dir under a test's
// temp dir. Waits, with a deadline, until etcd answers a KV read.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"

namespace apogee::controller::testing {

// etcd serving its client port over TLS (all PEM files).
struct EtcdTls {
  std::string cert_file;  // etcd's server certificate (IP SAN 127.0.0.1) and key
  std::string key_file;
  std::string ca_file;  // roots: of etcd's certificate, and of client certificates
  // Non-empty: etcd requires client certificates (--client-cert-auth), and
  // the harness's own probe presents this one.
  std::string client_cert_file;
  std::string client_key_file;
};

// Not thread-safe: drive it from the test's main thread (the child is
// SIGKILLed when the thread that started it exits).
class EtcdProcess {
 public:
  // Starts etcd with its data and log under `work_dir`. `binary` defaults to
  // $APOGEE_ETCD or /usr/bin/etcd.
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      const std::string& work_dir, absl::Duration timeout = absl::Seconds(20),
      std::string binary = "");
  // The same, serving TLS (https) on the client port.
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> StartTls(
      const std::string& work_dir, EtcdTls tls, absl::Duration timeout = absl::Seconds(20));
  ~EtcdProcess();  // SIGKILLs etcd if it still runs.

  // The client endpoint, "127.0.0.1:PORT", for EtcdClient.
  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return pid_; }
  // What a client needs to reach it (plaintext, or TLS with the probe's
  // client certificate).
  const std::shared_ptr<grpc::ChannelCredentials>& credentials() const { return credentials_; }

  // Sends `signal` and waits (bounded) for exit.
  absl::Status Stop(int signal, absl::Duration timeout = absl::Seconds(10));
  // Starts again on the same ports with the same data (after Stop).
  absl::Status Restart(absl::Duration timeout = absl::Seconds(20));

  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  EtcdProcess() = default;
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Create(const std::string& work_dir,
                                                             std::string binary, EtcdTls tls);
  absl::Status Launch(absl::Duration timeout);

  std::string binary_;
  std::string data_dir_;
  std::string log_path_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::string endpoint_;
  pid_t pid_ = -1;
  EtcdTls tls_;  // cert_file empty: plaintext
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

// One etcd for the whole test binary, started on first use (from the main
// thread) and killed at exit; nullptr (after printing why) when it cannot start.
EtcdProcess* SharedEtcd();

}  // namespace apogee::controller::testing
