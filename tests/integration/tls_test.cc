// TLS and mTLS on real processes, with certificates made at test time by the
// openssl CLI: a NameServer requiring client certificates, a broker serving
// TLS and registering with that NameServer over mTLS, the SDK and
// apogee-admin through both, plaintext and certificate-less clients
// refused, start-up errors naming the file, and a rotated broker
// certificate reaching new connections without a restart.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apogee/apogee.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/grpc_security_constants.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "services/common/testing/test_pki.h"

namespace apogee {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
namespace sv1 = ::apogee::store::v1;
using ::apogee::testing::PollUntil;
using ::apogee::testing::ReadTextFile;
using ::apogee::testing::ServiceProcess;
using ::apogee::testing::TempDir;
using ::apogee::testing::TestPki;
using ::testing::HasSubstr;

// One cluster for the whole suite (starting it is most of the cost).
struct Cluster {
  TempDir dir;
  std::unique_ptr<TestPki> pki;
  std::unique_ptr<ServiceProcess> nameserver;
  std::unique_ptr<ServiceProcess> store;
  std::unique_ptr<ServiceProcess> broker;
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new Cluster();
    Cluster& c = *cluster_;
    c.pki = std::make_unique<TestPki>(c.dir.path());
    TestPki& pki = *c.pki;
    ASSERT_TRUE(pki.MakeCa() && pki.Issue("server", "apogee-server-1") &&
                pki.Issue("rotated", "apogee-server-2") && pki.Issue("client", "apogee-client"))
        << pki.Log();
    // The broker serves copies, which the reload test replaces.
    std::filesystem::copy_file(pki.Path("server.pem"), pki.Path("broker.pem"));
    std::filesystem::copy_file(pki.Path("server.key"), pki.Path("broker.key"));

    auto nameserver = ServiceProcess::Start(
        "nameserver", APOGEE_NAMESERVER_BIN,
        {"--metrics_listen=", absl::StrCat("--tls_cert=", pki.Path("server.pem")),
         absl::StrCat("--tls_key=", pki.Path("server.key")),
         absl::StrCat("--tls_ca=", pki.Path("ca.pem")), "--tls_client_auth=require"},
        c.dir.path());
    ASSERT_TRUE(nameserver.ok()) << nameserver.status();
    c.nameserver = std::move(nameserver).value();

    const std::string socket = absl::StrCat(c.dir.path(), "/store.sock");
    auto store = ServiceProcess::Start(
        "store", APOGEE_STORE_BIN,
        {absl::StrCat("--data_dir=", c.dir.path(), "/store-data"),
         absl::StrCat("--listen=unix:", socket), "--metrics_listen=", "--ha_listen="},
        c.dir.path());
    ASSERT_TRUE(store.ok()) << store.status();
    c.store = std::move(store).value();

    auto broker = ServiceProcess::Start(
        "broker", APOGEE_BROKER_BIN,
        {absl::StrCat("--nameservers=", c.nameserver->address()),
         absl::StrCat("--store=unix:", socket), "--metrics_listen=127.0.0.1:0",
         "--heartbeat_interval=1s", absl::StrCat("--tls_cert=", pki.Path("broker.pem")),
         absl::StrCat("--tls_key=", pki.Path("broker.key")), "--tls_reload_interval=1s",
         absl::StrCat("--client_tls_ca=", pki.Path("ca.pem")),
         absl::StrCat("--client_tls_cert=", pki.Path("client.pem")),
         absl::StrCat("--client_tls_key=", pki.Path("client.key"))},
        c.dir.path());
    ASSERT_TRUE(broker.ok()) << broker.status();
    c.broker = std::move(broker).value();
  }

  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    ASSERT_NE(cluster_->broker, nullptr) << "the cluster did not start";
  }

  static std::string Path(const std::string& file) { return cluster_->pki->Path(file); }

  // TLS credentials trusting the test CA, with the client certificate when
  // `with_cert`.
  static std::shared_ptr<grpc::ChannelCredentials> Credentials(bool with_cert) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadTextFile(Path("ca.pem"));
    if (with_cert) {
      options.pem_private_key = ReadTextFile(Path("client.key"));
      options.pem_cert_chain = ReadTextFile(Path("client.pem"));
    }
    return grpc::SslCredentials(options);
  }

  // A channel on a connection of its own (no subchannel shared with other
  // channels), so each handshake sees the server's current certificate.
  static std::shared_ptr<grpc::Channel> FreshChannel(
      const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(address, credentials, args);
  }

  // GetClusterInfo on the NameServer.
  static grpc::Status ClusterInfo(std::shared_ptr<grpc::ChannelCredentials> credentials,
                                  nsv1::GetClusterInfoResponse* response) {
    auto stub =
        nsv1::NameServer::NewStub(FreshChannel(cluster_->nameserver->address(), credentials));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    return stub->GetClusterInfo(&context, nsv1::GetClusterInfoRequest(), response);
  }

  // The common name of the certificate the broker presents to a new
  // connection, or the health call's error.
  static std::string BrokerCommonName() {
    auto stub = grpc::health::v1::Health::NewStub(
        FreshChannel(cluster_->broker->address(), Credentials(false)));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
    if (!status.ok()) return absl::StrCat("error: ", status.error_message());
    std::vector<grpc::string_ref> names =
        context.auth_context()->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
    if (names.empty()) return "no common name";
    return std::string(names[0].data(), names[0].size());
  }

  static TlsOptions SdkTls() {
    TlsOptions tls;
    tls.enabled = true;
    tls.ca_file = Path("ca.pem");
    tls.cert_file = Path("client.pem");
    tls.key_file = Path("client.key");
    return tls;
  }

  // Runs `binary` with `args`; its exit code, stdout and stderr in `out`.
  static int Run(const std::string& binary, const std::string& args, std::string* out) {
    const std::string out_path = absl::StrCat(cluster_->dir.path(), "/tool.out");
    const int status =
        std::system(absl::StrCat(binary, " ", args, " >", out_path, " 2>&1").c_str());
    *out = ReadTextFile(out_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static int Admin(const std::string& args, std::string* out) {
    return Run(APOGEE_ADMIN_BIN,
               absl::StrCat(args, " --nameservers=", cluster_->nameserver->address()), out);
  }

  // The tools' client TLS flags with the client certificate.
  static std::string ToolTlsFlags() {
    return absl::StrCat("--tls_ca=", Path("ca.pem"), " --tls_cert=", Path("client.pem"),
                        " --tls_key=", Path("client.key"));
  }

  static Cluster* cluster_;
};

Cluster* TlsTest::cluster_ = nullptr;

TEST_F(TlsTest, BrokerRegistersWithTheMtlsNameServer) {
  // The broker's registration went over mTLS (the NameServer requires a
  // client certificate): the NameServer lists it.
  nsv1::GetClusterInfoResponse info;
  std::string last;
  ASSERT_TRUE(PollUntil(
      [&] {
        grpc::Status status = ClusterInfo(Credentials(true), &info);
        last = status.ok() ? info.ShortDebugString() : status.error_message();
        return status.ok() && info.clusters_size() == 1 &&
               info.clusters(0).broker_groups_size() >= 1 &&
               info.clusters(0).broker_groups(0).broker_name() == "broker-a";
      },
      absl::Seconds(10)))
      << last << "\nbroker log:\n"
      << cluster_->broker->LogTail();
}

TEST_F(TlsTest, PlaintextClientsAreRefused) {
  nsv1::GetClusterInfoResponse info;
  grpc::Status status = ClusterInfo(grpc::InsecureChannelCredentials(), &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  auto stub = grpc::health::v1::Health::NewStub(
      FreshChannel(cluster_->broker->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::health::v1::HealthCheckResponse response;
  status = stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, RequiredClientCertificate) {
  nsv1::GetClusterInfoResponse info;
  grpc::Status without = ClusterInfo(Credentials(false), &info);
  EXPECT_EQ(without.error_code(), grpc::StatusCode::UNAVAILABLE) << without.error_message();
  grpc::Status with = ClusterInfo(Credentials(true), &info);
  EXPECT_TRUE(with.ok()) << with.error_message();
}

TEST_F(TlsTest, SdkProducesAndConsumesOverTls) {
  ProducerOptions producer_options;
  producer_options.endpoints = {cluster_->nameserver->address()};
  producer_options.tls = SdkTls();
  auto producer = Producer::Create(producer_options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  std::set<std::string> sent;
  for (int i = 0; i < 3; ++i) {
    Message m;
    m.topic = "TlsTopic";
    m.body = absl::StrCat("secret-", i);
    absl::StatusOr<SendReceipt> receipt = (*producer)->Send(m);
    ASSERT_TRUE(receipt.ok()) << receipt.status() << "\nbroker log:\n"
                              << cluster_->broker->LogTail();
    sent.insert(m.body);
  }

  SimpleConsumerOptions consumer_options;
  consumer_options.endpoints = {cluster_->nameserver->address()};
  consumer_options.tls = SdkTls();
  consumer_options.group = "TlsGroup";
  consumer_options.subscriptions["TlsTopic"] = "*";
  consumer_options.await_duration = absl::Seconds(2);
  auto consumer = SimpleConsumer::Create(consumer_options);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::set<std::string> received;
  PollUntil(
      [&] {
        auto messages = (*consumer)->Receive(16, absl::Seconds(20));
        EXPECT_TRUE(messages.ok()) << messages.status();
        if (!messages.ok()) return true;
        for (const ReceivedMessage& m : *messages) {
          received.insert(m.body);
          EXPECT_TRUE((*consumer)->Ack(m).ok());
        }
        return received.size() >= sent.size();
      },
      absl::Seconds(15), absl::ZeroDuration());
  EXPECT_EQ(received, sent);
}

TEST_F(TlsTest, SdkWithoutClientCertificateFailsOnTheMtlsNameServer) {
  ProducerOptions options;
  options.endpoints = {cluster_->nameserver->address()};
  options.tls = SdkTls();
  options.tls.cert_file.clear();
  options.tls.key_file.clear();
  options.request_timeout = absl::Seconds(1);
  options.send_timeout = absl::Seconds(2);
  auto producer = Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  Message m;
  m.topic = "TlsTopicNoCert";
  m.body = "x";
  EXPECT_FALSE((*producer)->Send(m).ok());
}

TEST_F(TlsTest, SdkRejectsBadTlsFiles) {
  ProducerOptions options;
  options.endpoints = {cluster_->nameserver->address()};
  options.tls = SdkTls();
  options.tls.ca_file = Path("missing.pem");
  EXPECT_THAT(Producer::Create(options).status().message(),
              HasSubstr(absl::StrCat("tls.ca_file file \"", Path("missing.pem"), "\"")));
  options.tls = SdkTls();
  options.tls.key_file = Path("server.key");  // not client.pem's key
  EXPECT_THAT(Producer::Create(options).status().message(), HasSubstr("does not match"));
}

TEST_F(TlsTest, AdminCliWithClientCertificate) {
  std::string out;
  EXPECT_EQ(Admin(absl::StrCat("cluster list ", ToolTlsFlags()), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("broker-a"));
  EXPECT_EQ(Admin(absl::StrCat("cluster list --tls_ca=", Path("ca.pem")), &out), 1) << out;
  EXPECT_EQ(Admin(absl::StrCat("cluster list --tls_ca=", Path("nope.pem")), &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("nope.pem"));
}

TEST_F(TlsTest, BenchWithClientCertificate) {
  std::string out;
  EXPECT_EQ(Run(APOGEE_BENCH_BIN,
                absl::StrCat("produce --endpoints=", cluster_->nameserver->address(),
                             " --topic=TlsBench --size=64 --count=20 --concurrency=1 --json ",
                             ToolTlsFlags()),
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"messages\":20,\"errors\":0"));
}

TEST_F(TlsTest, ServersRefuseToStartWithBadTlsFiles) {
  struct Case {
    std::vector<std::string> flags;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{absl::StrCat("--tls_cert=", Path("missing.pem")),
        absl::StrCat("--tls_key=", Path("server.key"))},
       absl::StrCat("--tls_cert file \"", Path("missing.pem"), "\": No such file")},
      {{absl::StrCat("--tls_cert=", Path("server.ext")),
        absl::StrCat("--tls_key=", Path("server.key"))},
       "no PEM certificate"},
      {{absl::StrCat("--tls_cert=", Path("server.pem")),
        absl::StrCat("--tls_key=", Path("client.key"))},
       "does not match the certificate"},
      {{absl::StrCat("--tls_cert=", Path("server.pem")),
        absl::StrCat("--tls_key=", Path("server.key")), "--tls_client_auth=require"},
       "--tls_client_auth=require needs --tls_ca"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::vector<std::string> flags = c.flags;
    flags.push_back("--metrics_listen=");
    auto started = ServiceProcess::Start(absl::StrCat("bad-nameserver-", i), APOGEE_NAMESERVER_BIN,
                                         flags, cluster_->dir.path(), absl::Seconds(10));
    ASSERT_FALSE(started.ok());
    EXPECT_THAT(started.status().message(), HasSubstr(c.error));
  }
}

TEST_F(TlsTest, BrokerUsesAStoreOverTcpTls) {
  Cluster& c = *cluster_;
  auto store = ServiceProcess::Start(
      "tcp-store", APOGEE_STORE_BIN,
      {absl::StrCat("--data_dir=", c.dir.path(), "/tcp-store-data"),
       "--metrics_listen=", "--ha_listen=", absl::StrCat("--tls_cert=", Path("server.pem")),
       absl::StrCat("--tls_key=", Path("server.key")), absl::StrCat("--tls_ca=", Path("ca.pem")),
       "--tls_client_auth=request"},
      c.dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  auto check = [&](std::shared_ptr<grpc::ChannelCredentials> credentials) {
    auto health = grpc::health::v1::Health::NewStub(FreshChannel((*store)->address(), credentials));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::health::v1::HealthCheckResponse response;
    return health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  };
  grpc::Status plaintext = check(grpc::InsecureChannelCredentials());
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << plaintext.error_message();
  // "request": a client without a certificate is let in.
  grpc::Status without_cert = check(Credentials(false));
  EXPECT_TRUE(without_cert.ok()) << without_cert.error_message();

  std::vector<std::string> flags = {absl::StrCat("--nameservers=", c.nameserver->address()),
                                    absl::StrCat("--store=", (*store)->address()),
                                    "--metrics_listen=127.0.0.1:0", "--store_wait=1s"};
  // Without client TLS the broker cannot load its topics from the store.
  auto plain_broker = ServiceProcess::Start("plain-broker", APOGEE_BROKER_BIN, flags, c.dir.path(),
                                            absl::Seconds(10));
  ASSERT_FALSE(plain_broker.ok());
  EXPECT_THAT(plain_broker.status().message(), HasSubstr("is not usable"));

  flags.insert(flags.end(), {"--broker_name=broker-b", "--store_wait=5s",
                             absl::StrCat("--client_tls_ca=", Path("ca.pem")),
                             absl::StrCat("--client_tls_cert=", Path("client.pem")),
                             absl::StrCat("--client_tls_key=", Path("client.key"))});
  auto broker = ServiceProcess::Start("tls-broker", APOGEE_BROKER_BIN, flags, c.dir.path());
  // Up means it loaded its topics and groups from the store over TLS.
  ASSERT_TRUE(broker.ok()) << broker.status();
}

// A slave's store follows its master's --ha_listen over mTLS.
TEST_F(TlsTest, StoreReplicationOverMtls) {
  Cluster& c = *cluster_;
  struct Store {
    std::unique_ptr<ServiceProcess> process;
    std::unique_ptr<sv1::Store::Stub> stub;
  };
  auto start = [&](const std::string& name, Store* store) {
    auto process = ServiceProcess::Start(
        name, APOGEE_STORE_BIN,
        {absl::StrCat("--data_dir=", c.dir.path(), "/", name),
         absl::StrCat("--listen=unix:", c.dir.path(), "/", name, ".sock"), "--metrics_listen=",
         "--ha_listen=127.0.0.1:0", absl::StrCat("--tls_cert=", Path("server.pem")),
         absl::StrCat("--tls_key=", Path("server.key")), absl::StrCat("--tls_ca=", Path("ca.pem")),
         "--tls_client_auth=require", absl::StrCat("--client_tls_ca=", Path("ca.pem")),
         absl::StrCat("--client_tls_cert=", Path("client.pem")),
         absl::StrCat("--client_tls_key=", Path("client.key"))},
        c.dir.path());
    ASSERT_TRUE(process.ok()) << process.status();
    store->process = std::move(process).value();
    // The Store API on the unix socket stays plaintext.
    store->stub = sv1::Store::NewStub(
        grpc::CreateChannel(store->process->address(), grpc::InsecureChannelCredentials()));
  };
  auto context = [] {
    auto out = std::make_unique<grpc::ClientContext>();
    out->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    return out;
  };
  auto set_role = [&](Store& store, sv1::Role role, const std::string& master) {
    sv1::SetRoleRequest request;
    request.set_role(role);
    request.set_epoch(1);
    request.set_master_address(master);
    request.set_replica_id(role == sv1::MASTER ? "a" : "b");
    request.set_mode(sv1::REPLICATION_ASYNC);
    request.set_min_insync_replicas(1);
    sv1::SetRoleResponse response;
    return store.stub->SetRole(context().get(), request, &response);
  };
  auto log_end = [&](Store& store) {
    sv1::GetReplicationStatusResponse status;
    grpc::Status s = store.stub->GetReplicationStatus(context().get(), {}, &status);
    return s.ok() ? status.log_end() : -1;
  };
  Store master;
  Store slave;
  ASSERT_NO_FATAL_FAILURE(start("ha-master", &master));
  ASSERT_NO_FATAL_FAILURE(start("ha-slave", &slave));
  ASSERT_TRUE(set_role(master, sv1::MASTER, "").ok());
  {
    sv1::PutTopicRequest request;
    request.mutable_topic()->set_name("HaTls");
    request.mutable_topic()->set_queue_count(1);
    sv1::PutTopicResponse response;
    ASSERT_TRUE(master.stub->PutTopic(context().get(), request, &response).ok());
  }
  {
    auto ctx = context();
    auto stream = master.stub->Append(ctx.get());
    sv1::AppendRequest request;
    request.set_request_id(1);
    sv1::AppendRecord* record = request.add_records();
    record->set_topic("HaTls");
    record->set_message_id("ha-tls-1");
    record->set_body("replicated over mTLS");
    sv1::AppendResponse response;
    ASSERT_TRUE(stream->Write(request));
    stream->WritesDone();
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_EQ(response.code(), 0) << response.message();
    ASSERT_TRUE(stream->Finish().ok());
  }
  // The master's HA address, from its "event=started ... ha_listen=" line.
  const std::string log = ReadTextFile(master.process->log_path());
  const size_t at = log.find(" ha_listen=");
  ASSERT_NE(at, std::string::npos) << log;
  const size_t from = at + std::string(" ha_listen=").size();
  const std::string ha_address = log.substr(from, log.find(' ', from) - from);
  ASSERT_TRUE(set_role(slave, sv1::SLAVE, ha_address).ok());
  const int64_t want = log_end(master);
  ASSERT_GT(want, 0);
  int64_t have = 0;
  EXPECT_TRUE(PollUntil(
      [&] {
        have = log_end(slave);
        return have == want;
      },
      absl::Seconds(10)))
      << "slave log end " << have << ", master " << want << "\n"
      << slave.process->LogTail();
}

TEST_F(TlsTest, OfficialNodeClientWithSslEnabled) {
  // grpc-js reads extra roots from this variable; the test's own gRPC
  // channels all name their roots, so it changes nothing for them.
  setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", Path("ca.pem").c_str(), 1);
  auto [code, output] = testing::RunNodeInterop(
      APOGEE_SOURCE_DIR, "broker_roundtrip.js",
      absl::StrCat(cluster_->broker->address(), " NodeTlsTopic node-tls 5 tls"),
      absl::StrCat(cluster_->dir.path(), "/node.log"));
  unsetenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH");
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("received 5"));
  EXPECT_THAT(output, HasSubstr("acked 5"));
}

// Last: it rotates the broker's certificate.
TEST_F(TlsTest, RotatedCertificateReachesNewConnectionsWithoutRestart) {
  ASSERT_EQ(BrokerCommonName(), "apogee-server-1");
  const pid_t pid = cluster_->broker->pid();
  // Replace each file atomically (rename), the key first.
  for (const char* ext : {".key", ".pem"}) {
    std::filesystem::copy_file(Path(absl::StrCat("rotated", ext)),
                               Path(absl::StrCat("broker", ext, ".new")));
    std::filesystem::rename(Path(absl::StrCat("broker", ext, ".new")),
                            Path(absl::StrCat("broker", ext)));
  }
  std::string seen;
  EXPECT_TRUE(PollUntil(
      [&] {
        seen = BrokerCommonName();
        return seen == "apogee-server-2";
      },
      absl::Seconds(10), absl::Milliseconds(100)))
      << "last seen: " << seen;
  EXPECT_EQ(cluster_->broker->pid(), pid);
}

}  // namespace
}  // namespace apogee
