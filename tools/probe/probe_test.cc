// apogee-probe against real processes: a NameServer (TCP), a store (unix
// socket) and a broker answer SERVING; an unknown service, a closed port and
// a stopped server do not; bad flags exit 2.
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "services/common/testing/test_pki.h"

namespace apogee {
namespace {

using testing::ServiceProcess;
using testing::TempDir;

struct ProbeResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

class ProbeTest : public ::testing::Test {
 protected:
  // Runs apogee-probe with `args`; waits (bounded by the probe's own
  // --timeout plus slack) for it to exit.
  ProbeResult Probe(const std::vector<std::string>& args) {
    const std::string log = absl::StrCat(dir_.path(), "/probe-", runs_++, ".log");
    ProbeResult result;
    absl::StatusOr<pid_t> pid = testing::SpawnProcess(APOGEE_PROBE_BIN, args, log);
    EXPECT_TRUE(pid.ok()) << pid.status();
    if (!pid.ok()) return result;
    int status = 0;
    const bool exited = testing::PollUntil([&] { return waitpid(*pid, &status, WNOHANG) == *pid; },
                                           absl::Seconds(20));
    if (!exited) {
      kill(*pid, SIGKILL);
      waitpid(*pid, &status, 0);
      ADD_FAILURE() << "apogee-probe did not exit within 20s";
    }
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    result.output = text.str();
    return result;
  }

  std::unique_ptr<ServiceProcess> StartNameServer() {
    auto ns = ServiceProcess::Start("nameserver", APOGEE_NAMESERVER_BIN, {"--metrics_listen="},
                                    dir_.path());
    EXPECT_TRUE(ns.ok()) << ns.status();
    return ns.ok() ? std::move(ns).value() : nullptr;
  }

  TempDir dir_;
  int runs_ = 0;
};

TEST_F(ProbeTest, NameServerOverTcpIsServingUntilItStops) {
  auto ns = StartNameServer();
  ASSERT_NE(ns, nullptr);
  ProbeResult up = Probe({absl::StrCat("--addr=", ns->address())});
  EXPECT_EQ(up.exit_code, 0) << up.output;
  EXPECT_NE(up.output.find("SERVING"), std::string::npos) << up.output;

  ASSERT_TRUE(ns->Stop(SIGTERM).ok());
  ProbeResult down = Probe({absl::StrCat("--addr=", ns->address()), "--timeout=300ms"});
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_NE(down.output.find("UNREACHABLE"), std::string::npos) << down.output;
}

// A NameServer serving mTLS: plaintext fails; the client certificate with the
// server's certificate unverified (it names no loopback address) passes, as
// an exec probe of a Kubernetes pod does; verification against the CA fails
// on that name; a missing file is a usage error naming the flag.
TEST_F(ProbeTest, MtlsNameServerWithTheClientCertificate) {
  testing::TestPki pki(dir_.path());
  ASSERT_TRUE(pki.MakeCa() && pki.Issue("server", "server") && pki.Issue("client", "client"))
      << pki.Log();
  // A server certificate without loopback names (as in a cluster).
  std::ofstream(pki.Path("server.ext")) << "subjectAltName=DNS:apogee-nameserver\n";
  ASSERT_EQ(
      std::system(absl::StrCat("cd ", dir_.path(),
                               " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
                               "-days 2 -out server.pem -extfile server.ext 2>/dev/null")
                      .c_str()),
      0);
  auto ns = ServiceProcess::Start(
      "tls-nameserver", APOGEE_NAMESERVER_BIN,
      {"--metrics_listen=", absl::StrCat("--tls_cert=", pki.Path("server.pem")),
       absl::StrCat("--tls_key=", pki.Path("server.key")),
       absl::StrCat("--tls_ca=", pki.Path("ca.pem")), "--tls_client_auth=require"},
      dir_.path());
  ASSERT_TRUE(ns.ok()) << ns.status();
  const std::string addr = absl::StrCat("--addr=", (*ns)->address());
  const std::string cert = absl::StrCat("--tls_cert=", pki.Path("client.pem"));
  const std::string key = absl::StrCat("--tls_key=", pki.Path("client.key"));
  EXPECT_EQ(Probe({addr, "--timeout=500ms"}).exit_code, 1);
  ProbeResult ok = Probe({addr, cert, key, "--tls_skip_verify"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(Probe({addr, "--tls_skip_verify", "--timeout=500ms"}).exit_code, 1);
  EXPECT_EQ(
      Probe({addr, cert, key, absl::StrCat("--tls_ca=", pki.Path("ca.pem")), "--timeout=500ms"})
          .exit_code,
      1);
  ProbeResult missing = Probe({addr, absl::StrCat("--tls_cert=", pki.Path("none.pem")), key});
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("--tls_cert file"), std::string::npos) << missing.output;
}

TEST_F(ProbeTest, UnknownServiceIsNotServing) {
  auto ns = StartNameServer();
  ASSERT_NE(ns, nullptr);
  ProbeResult result =
      Probe({absl::StrCat("--addr=", ns->address()), "--service=no.such.v1.Service"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("SERVICE_UNKNOWN"), std::string::npos) << result.output;
}

TEST_F(ProbeTest, StoreOnAUnixSocketAndItsBrokerAreServing) {
  auto ns = StartNameServer();
  ASSERT_NE(ns, nullptr);
  const std::string socket = dir_.path() + "/store.sock";
  auto store = ServiceProcess::Start(
      "store", APOGEE_STORE_BIN,
      {absl::StrCat("--data_dir=", dir_.path(), "/data"), absl::StrCat("--listen=unix:", socket),
       "--metrics_listen=", "--ha_listen="},
      dir_.path());
  ASSERT_TRUE(store.ok()) << store.status();
  auto broker = ServiceProcess::Start("broker", APOGEE_BROKER_BIN,
                                      {absl::StrCat("--nameservers=", ns->address()),
                                       absl::StrCat("--store=unix:", socket), "--metrics_listen="},
                                      dir_.path());
  ASSERT_TRUE(broker.ok()) << broker.status();

  ProbeResult store_result = Probe({absl::StrCat("--addr=unix:", socket)});
  EXPECT_EQ(store_result.exit_code, 0) << store_result.output;
  ProbeResult broker_result = Probe({absl::StrCat("--addr=", (*broker)->address())});
  EXPECT_EQ(broker_result.exit_code, 0) << broker_result.output;
}

TEST_F(ProbeTest, ClosedPortFailsWithinTheTimeout) {
  absl::StatusOr<int> port = testing::FreeLocalPort();
  ASSERT_TRUE(port.ok()) << port.status();
  const absl::Time start = absl::Now();
  ProbeResult result = Probe({absl::StrCat("--addr=127.0.0.1:", *port), "--timeout=500ms"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(ProbeTest, BadFlagsExitTwoNamingTheInput) {
  ProbeResult no_addr = Probe({});
  EXPECT_EQ(no_addr.exit_code, 2) << no_addr.output;
  EXPECT_NE(no_addr.output.find("--addr"), std::string::npos) << no_addr.output;

  ProbeResult no_port = Probe({"--addr=localhost"});
  EXPECT_EQ(no_port.exit_code, 2) << no_port.output;
  EXPECT_NE(no_port.output.find("\"localhost\" has no port"), std::string::npos) << no_port.output;

  ProbeResult bad_timeout = Probe({"--addr=127.0.0.1:1", "--timeout=5m"});
  EXPECT_EQ(bad_timeout.exit_code, 2) << bad_timeout.output;
  EXPECT_NE(bad_timeout.output.find("10ms..1m"), std::string::npos) << bad_timeout.output;
}

}  // namespace
}  // namespace apogee
