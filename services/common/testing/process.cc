#include "services/common/testing/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace apogee::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool HasFlag(const std::vector<std::string>& args, absl::string_view flag) {
  for (const std::string& a : args) {
    if (absl::StartsWith(a, absl::StrCat("--", flag, "="))) return true;
  }
  return false;
}

}  // namespace

TempDir::TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/apogee-test-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp(%s) failed: %s\n", pattern.c_str(), strerror(errno));
    std::abort();
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::StartStore(
    const std::string& binary, const std::string& work_dir) {
  return Start("store", binary,
               {absl::StrCat("--data_dir=", work_dir, "/data"),
                "--metrics_listen=", absl::StrCat("--listen=unix:", work_dir, "/store.sock")},
               work_dir);
}

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::Start(const std::string& name,
                                                                      const std::string& binary,
                                                                      std::vector<std::string> args,
                                                                      const std::string& work_dir,
                                                                      absl::Duration timeout) {
  auto process = std::unique_ptr<ServiceProcess>(new ServiceProcess());
  process->name_ = name;
  process->binary_ = binary;
  process->work_dir_ = work_dir;
  process->address_file_ = absl::StrCat(work_dir, "/", name, ".address");
  process->log_path_ = absl::StrCat(work_dir, "/", name, ".log");
  if (!HasFlag(args, "listen")) args.push_back("--listen=127.0.0.1:0");
  args.push_back(absl::StrCat("--address_file=", process->address_file_));
  process->base_args_ = args;
  absl::Status launched = process->Launch(args, timeout);
  if (!launched.ok()) return launched;
  return process;
}

absl::Status ServiceProcess::Launch(const std::vector<std::string>& args, absl::Duration timeout) {
  std::remove(address_file_.c_str());
  absl::StatusOr<pid_t> pid = SpawnProcess(binary_, args, log_path_);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;

  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::string published = ReadFile(address_file_);
    if (!published.empty()) {
      metrics_address_.clear();
      admin_address_.clear();
      for (absl::string_view line : absl::StrSplit(published, '\n', absl::SkipEmpty())) {
        if (absl::ConsumePrefix(&line, "grpc=")) address_ = std::string(line);
        if (absl::ConsumePrefix(&line, "metrics=")) metrics_address_ = std::string(line);
        if (absl::ConsumePrefix(&line, "admin=")) admin_address_ = std::string(line);
      }
      break;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat(name_, " exited during start-up; log:\n", LogTail()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          name_, " did not bind within ", absl::FormatDuration(timeout), "; log:\n", LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  // A TLS port's health check would need the test's client identity; every
  // binary writes the address file only once it serves, which is enough.
  if (HasFlag(args, "tls_cert")) return absl::OkStatus();
  absl::Status serving = WaitForServing(address_, deadline - absl::Now());
  if (!serving.ok()) {
    return absl::Status(serving.code(),
                        absl::StrCat(name_, ": ", serving.message(), "; log:\n", LogTail()));
  }
  return absl::OkStatus();
}

ServiceProcess::~ServiceProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

absl::StatusOr<int> ServiceProcess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError(absl::StrCat(name_, " is not running"));
  kill(pid_, signal);
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      return status;
    }
    if (absl::Now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return absl::DeadlineExceededError(absl::StrCat(name_, " did not exit within ",
                                                      absl::FormatDuration(timeout), " of signal ",
                                                      signal, "; killed"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::Status ServiceProcess::Restart(bool same_port, absl::Duration timeout) {
  if (pid_ > 0) {
    auto stopped = Stop(SIGKILL);
    if (!stopped.ok()) return stopped.status();
  }
  std::vector<std::string> args;
  for (const std::string& a : base_args_) {
    if (same_port && absl::StartsWith(a, "--listen=") && !absl::StartsWith(address_, "unix:")) {
      args.push_back(absl::StrCat("--listen=", address_));
    } else {
      args.push_back(a);
    }
  }
  return Launch(args, timeout);
}

std::string ServiceProcess::LogTail(size_t max_bytes) const {
  std::string log = ReadFile(log_path_);
  if (log.size() > max_bytes) log = "..." + log.substr(log.size() - max_bytes);
  return log;
}

absl::StatusOr<pid_t> SpawnProcess(const std::string& binary, const std::vector<std::string>& args,
                                   const std::string& log_path) {
  std::vector<std::string> argv_storage;
  argv_storage.push_back(binary);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    // Die with the test (thread that started us), so a crashed or aborted
    // test leaves no servers behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The child must not inherit the test's blocked signal mask.
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int64_t ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::string digits;
    for (char c : line.substr(field.size() + 1)) {
      if (c >= '0' && c <= '9') digits += c;
    }
    int64_t kb = -1;
    return absl::SimpleAtoi(digits, &kb) ? kb : -1;
  }
  return -1;
}

absl::Status WaitForServing(const std::string& address, absl::Duration timeout) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  const absl::Time deadline = absl::Now() + timeout;
  std::string last_error = "no answer";
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::OkStatus();
    }
    last_error = status.ok() ? "not SERVING" : status.error_message();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("health check of ", address, " failed: ", last_error));
}

absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("address needs a port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: ", address));
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(strerror(errno));
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string error = strerror(errno);
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", address, ": ", error));
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", address, "\r\n\r\n");
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("short write");
  }
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  close(fd);
  size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos) return absl::UnavailableError("no HTTP response body");
  return response.substr(body + 4);
}

std::unique_ptr<grpc::ClientContext> DeadlineContext(absl::Duration timeout,
                                                     const std::string& client_id) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!client_id.empty()) context->AddMetadata("x-mq-client-id", client_id);
  return context;
}

absl::StatusOr<int> FreeLocalPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int error = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", strerror(error)));
  }
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<double> ScrapeMetric(
    const std::string& address, const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& labels) {
  absl::StatusOr<std::string> body = HttpGet(address, "/metrics");
  if (!body.ok()) return body.status();
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(*body, '\n')) {
    if (!absl::ConsumePrefix(&line, name) || line.empty() || (line[0] != '{' && line[0] != ' ')) {
      continue;
    }
    bool match = true;
    for (const auto& [key, value] : labels) {
      match = match && absl::StrContains(line, absl::StrCat(key, "=\"", value, "\""));
    }
    double value = 0;
    if (match && absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) sum += value;
  }
  return sum;
}

std::pair<int, std::string> RunNodeInterop(const std::string& source_dir, const std::string& script,
                                           const std::string& args, const std::string& log_path) {
  const std::string command =
      absl::StrCat("bash ", source_dir, "/tests/interop/node/run.sh ", source_dir,
                   "/tests/interop/node/", script, " ", args, " > ", log_path, " 2>&1");
  const int status = std::system(command.c_str());
  std::ifstream in(log_path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, buffer.str()};
}

}  // namespace apogee::testing
