#include "services/broker/controller/testing/etcd_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/broker/controller/etcd_client.h"
#include "services/common/testing/process.h"
#include "services/common/tls/tls.h"

namespace apogee::controller::testing {

using ::apogee::testing::FreeLocalPort;

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(const std::string& work_dir,
                                                                absl::Duration timeout,
                                                                std::string binary) {
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd =
      Create(work_dir, std::move(binary), EtcdTls{});
  if (!etcd.ok()) return etcd.status();
  if (absl::Status launched = (*etcd)->Launch(timeout); !launched.ok()) return launched;
  return etcd;
}

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::StartTls(const std::string& work_dir,
                                                                   EtcdTls tls,
                                                                   absl::Duration timeout) {
  if (tls.cert_file.empty() || tls.key_file.empty() || tls.ca_file.empty()) {
    return absl::InvalidArgumentError("EtcdTls needs cert_file, key_file and ca_file");
  }
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = Create(work_dir, "", std::move(tls));
  if (!etcd.ok()) return etcd.status();
  if (absl::Status launched = (*etcd)->Launch(timeout); !launched.ok()) return launched;
  return etcd;
}

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Create(const std::string& work_dir,
                                                                 std::string binary, EtcdTls tls) {
  auto etcd = std::unique_ptr<EtcdProcess>(new EtcdProcess());
  if (binary.empty()) {
    const char* env = getenv("APOGEE_ETCD");
    binary = env != nullptr ? env : "/usr/bin/etcd";
  }
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd binary ", binary,
                     " is not executable (install etcd-server: scripts/install-deps.sh)"));
  }
  etcd->binary_ = binary;
  etcd->data_dir_ = absl::StrCat(work_dir, "/etcd.data");
  etcd->log_path_ = absl::StrCat(work_dir, "/etcd.log");
  absl::StatusOr<int> client_port = FreeLocalPort();
  if (!client_port.ok()) return client_port.status();
  absl::StatusOr<int> peer_port = FreeLocalPort();
  if (!peer_port.ok()) return peer_port.status();
  etcd->client_port_ = *client_port;
  etcd->peer_port_ = *peer_port;
  etcd->endpoint_ = absl::StrCat("127.0.0.1:", etcd->client_port_);
  if (tls.cert_file.empty()) {
    etcd->credentials_ = grpc::InsecureChannelCredentials();
  } else {
    apogee::tls::ClientTls client;
    client.enabled = true;
    client.ca_file = tls.ca_file;
    client.cert_file = tls.client_cert_file;
    client.key_file = tls.client_key_file;
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        apogee::tls::ChannelCredentials(client);
    if (!credentials.ok()) return credentials.status();
    etcd->credentials_ = *credentials;
  }
  etcd->tls_ = std::move(tls);
  return etcd;
}

absl::Status EtcdProcess::Launch(absl::Duration timeout) {
  const bool tls = !tls_.cert_file.empty();
  const std::string client_url = absl::StrCat(tls ? "https://" : "http://", endpoint_);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  std::vector<std::string> args = {
      "--name=apogee-test",
      absl::StrCat("--data-dir=", data_dir_),
      absl::StrCat("--listen-client-urls=", client_url),
      absl::StrCat("--advertise-client-urls=", client_url),
      absl::StrCat("--listen-peer-urls=", peer_url),
      absl::StrCat("--initial-advertise-peer-urls=", peer_url),
      absl::StrCat("--initial-cluster=apogee-test=", peer_url),
      "--logger=zap",
  };
  if (tls) {
    args.push_back(absl::StrCat("--cert-file=", tls_.cert_file));
    args.push_back(absl::StrCat("--key-file=", tls_.key_file));
    args.push_back(absl::StrCat("--trusted-ca-file=", tls_.ca_file));
    if (!tls_.client_cert_file.empty()) args.push_back("--client-cert-auth");
  }
  absl::StatusOr<pid_t> pid = apogee::testing::SpawnProcess(binary_, args, log_path_);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;

  absl::StatusOr<std::unique_ptr<EtcdClient>> client =
      EtcdClient::Create(endpoint_, absl::Milliseconds(500), credentials_);
  if (!client.ok()) return client.status();
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last;
  while (true) {
    last = (*client)->Get("/apogee-test-probe").status();
    if (last.ok()) return absl::OkStatus();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat("etcd exited during start-up; log:\n", LogTail()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "etcd did not serve on ", endpoint_, " within ", absl::FormatDuration(timeout), " (",
          last.message(), "); log:\n", LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

EtcdProcess::~EtcdProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

absl::Status EtcdProcess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("etcd is not running");
  kill(pid_, signal);
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return absl::DeadlineExceededError(absl::StrCat(
          "etcd did not exit within ", absl::FormatDuration(timeout), " of signal ", signal));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::Status EtcdProcess::Restart(absl::Duration timeout) {
  if (pid_ > 0) {
    absl::Status stopped = Stop(SIGKILL);
    if (!stopped.ok()) return stopped;
  }
  return Launch(timeout);
}

std::string EtcdProcess::LogTail(size_t max_bytes) const {
  std::ifstream in(log_path_);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string log = buffer.str();
  if (log.size() > max_bytes) log = "..." + log.substr(log.size() - max_bytes);
  return log;
}

EtcdProcess* SharedEtcd() {
  // Members go in reverse order at exit: etcd is killed before its data
  // directory is removed, so no test run leaves a directory behind.
  struct Shared {
    Shared() {
      absl::StatusOr<std::unique_ptr<EtcdProcess>> started = EtcdProcess::Start(dir.path());
      if (started.ok()) {
        etcd = std::move(*started);
      } else {
        std::fprintf(stderr, "cannot start etcd: %s\n", started.status().ToString().c_str());
      }
    }
    apogee::testing::TempDir dir;
    std::unique_ptr<EtcdProcess> etcd;
  };
  static Shared shared;
  return shared.etcd.get();
}

}  // namespace apogee::controller::testing
