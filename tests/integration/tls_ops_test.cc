// TLS beyond the client ports, on real processes with certificates made at
// test time by openssl: an HA group electing its master in an etcd that
// serves TLS and requires client certificates (--etcd_tls_*), and mTLS
// identities as users (--auth with --tls_client_auth): a verified client
// certificate's subject CN is the user, without a signature, for the
// broker's ACLs, its admin API and the NameServer's broker registrations.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/broker/controller/etcd_client.h"
#include "services/broker/controller/testing/etcd_process.h"
#include "services/common/testing/process.h"
#include "services/common/testing/test_pki.h"
#include "services/common/tls/tls.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

namespace av1 = ::apogee::admin::v1;
namespace nsv1 = ::apogee::nameserver::v1;
using ::apogee::controller::EtcdClient;
using ::apogee::controller::testing::EtcdProcess;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::apogee::testing::ReadTextFile;
using ::apogee::testing::ServiceProcess;
using ::apogee::testing::TempDir;
using ::apogee::testing::TestPki;
using ::testing::HasSubstr;

class TlsOpsTest : public ::testing::Test {
 protected:
  // One PKI for the suite: etcd's and the Apogee servers' certificate, and
  // client certificates whose CN names a user.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pki_ = new TestPki(dir_->path());
    pki_ok_ = pki_->MakeCa() && pki_->Issue("server", "apogee-server") &&
              pki_->Issue("root", "root") && pki_->Issue("alice", "alice") &&
              pki_->Issue("mallory", "mallory");
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(pki_ok_) << pki_->Log(); }

  static std::string Path(const std::string& file) { return pki_->Path(file); }

  // TLS trusting the test CA, presenting <user>.pem (none when empty).
  static std::shared_ptr<grpc::ChannelCredentials> As(const std::string& user) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadTextFile(Path("ca.pem"));
    if (!user.empty()) {
      options.pem_private_key = ReadTextFile(Path(user + ".key"));
      options.pem_cert_chain = ReadTextFile(Path(user + ".pem"));
    }
    return grpc::SslCredentials(options);
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    return context;
  }

  static TempDir* dir_;
  static TestPki* pki_;
  static bool pki_ok_;
};

TempDir* TlsOpsTest::dir_ = nullptr;
TestPki* TlsOpsTest::pki_ = nullptr;
bool TlsOpsTest::pki_ok_ = false;

// etcd serves TLS and requires client certificates; the brokers of a group
// reach it with --etcd_tls_*, elect a master, and fail over when it dies
// (leases, watches and transactions all over TLS).
TEST_F(TlsOpsTest, HaGroupElectsItsMasterInATlsEtcd) {
  TempDir etcd_dir;
  controller::testing::EtcdTls tls;
  tls.cert_file = Path("server.pem");
  tls.key_file = Path("server.key");
  tls.ca_file = Path("ca.pem");
  tls.client_cert_file = Path("root.pem");
  tls.client_key_file = Path("root.key");
  auto etcd = EtcdProcess::StartTls(etcd_dir.path(), tls);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  const std::string endpoint = (*etcd)->endpoint();

  {  // Refused: plaintext, and TLS without a client certificate.
    auto plain = EtcdClient::Create(endpoint, absl::Milliseconds(500));
    ASSERT_TRUE(plain.ok());
    EXPECT_FALSE((*plain)->Get("/probe").ok());
    tls::ClientTls ca_only;
    ca_only.enabled = true;
    ca_only.ca_file = Path("ca.pem");
    auto no_cert =
        EtcdClient::Create(endpoint, absl::Milliseconds(500), *tls::ChannelCredentials(ca_only));
    ASSERT_TRUE(no_cert.ok());
    absl::Status refused = (*no_cert)->Get("/probe").status();
    EXPECT_FALSE(refused.ok());
  }

  // A bad file stops the broker at start-up, naming the flag and the file.
  auto bad = ServiceProcess::Start(
      "bad-etcd-tls", APOGEE_BROKER_BIN,
      {absl::StrCat("--controller=etcd:", endpoint), absl::StrCat("--etcd_tls_ca=", Path("ca.pem")),
       absl::StrCat("--etcd_tls_cert=", Path("missing.pem")),
       absl::StrCat("--etcd_tls_key=", Path("root.key")), "--metrics_listen="},
      etcd_dir.path(), absl::Seconds(10));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr(absl::StrCat("--etcd_tls_cert file \"", Path("missing.pem"), "\"")));

  LocalCluster cluster({APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN});
  cluster.enable_replication();
  const std::vector<std::string> flags = {absl::StrCat("--controller=etcd:", endpoint),
                                          "--cluster=TlsEtcd",
                                          absl::StrCat("--etcd_tls_ca=", Path("ca.pem")),
                                          absl::StrCat("--etcd_tls_cert=", Path("root.pem")),
                                          absl::StrCat("--etcd_tls_key=", Path("root.key"))};
  ASSERT_TRUE(cluster.Start(flags).ok());
  auto slave = cluster.AddSlave(0, 1, flags);
  ASSERT_TRUE(slave.ok()) << slave.status();

  auto role = [&](int index) {
    auto status = cluster.BrokerStatus(index);
    return status.ok() ? status->role() : std::string(status.status().message());
  };
  ASSERT_TRUE(
      PollUntil([&] { return role(0) == "master" && role(1) == "slave"; }, absl::Seconds(20)))
      << role(0) << " / " << role(1) << "\n"
      << cluster.broker(0)->LogTail();
  auto status = cluster.BrokerStatus(0);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->controller(), absl::StrCat("etcd:", endpoint));
  // The election is in etcd (read with the harness's client certificate).
  auto reader = EtcdClient::Create(endpoint, absl::Seconds(2), (*etcd)->credentials());
  ASSERT_TRUE(reader.ok());
  auto master_key = (*reader)->Get("/apogee/TlsEtcd/broker-a/master");
  ASSERT_TRUE(master_key.ok()) << master_key.status();
  ASSERT_TRUE(master_key->has_value());
  EXPECT_THAT((*master_key)->value, HasSubstr("id=0;"));

  // Only a slave the master published as in sync may take over.
  auto in_sync = [&] {
    auto key = (*reader)->Get("/apogee/TlsEtcd/broker-a/insync");
    return key.ok() && key->has_value() ? (*key)->value : std::string("none");
  };
  ASSERT_TRUE(PollUntil([&] { return absl::StrContains(in_sync(), "ids=0,1"); }, absl::Seconds(20)))
      << in_sync();
  // The master dies: its lease lapses and the slave wins the next election.
  ASSERT_TRUE(cluster.broker(0)->Stop(SIGKILL).ok());
  EXPECT_TRUE(PollUntil([&] { return role(1) == "master"; }, absl::Seconds(20)))
      << role(1) << "\n"
      << cluster.broker(1)->LogTail();
}

// --auth with --tls_client_auth=require on a NameServer and a broker: the
// subject CN of a verified client certificate is the user.
TEST_F(TlsOpsTest, MtlsIdentityIsTheUser) {
  TempDir dir;
  const std::string init_admin = "--init_admin=root:root-secret";
  auto server_tls = [&] {
    return std::vector<std::string>{absl::StrCat("--tls_cert=", Path("server.pem")),
                                    absl::StrCat("--tls_key=", Path("server.key")),
                                    absl::StrCat("--tls_ca=", Path("ca.pem")),
                                    "--tls_client_auth=require"};
  };
  auto client_tls = [&](const std::string& user) {
    return std::vector<std::string>{absl::StrCat("--client_tls_ca=", Path("ca.pem")),
                                    absl::StrCat("--client_tls_cert=", Path(user + ".pem")),
                                    absl::StrCat("--client_tls_key=", Path(user + ".key"))};
  };
  std::vector<std::string> ns_flags = server_tls();
  ns_flags.insert(ns_flags.end(), {"--metrics_listen=", "--auth=true", init_admin});
  auto nameserver =
      ServiceProcess::Start("nameserver", APOGEE_NAMESERVER_BIN, ns_flags, dir.path());
  ASSERT_TRUE(nameserver.ok()) << nameserver.status();
  const std::string ns_address = (*nameserver)->address();

  std::vector<std::unique_ptr<ServiceProcess>> processes;
  // A broker group `name` (own store) with `flags`.
  auto start_broker = [&](const std::string& name, std::vector<std::string> flags) {
    const std::string socket = absl::StrCat(dir.path(), "/", name, ".sock");
    auto store = ServiceProcess::Start(
        absl::StrCat(name, "-store"), APOGEE_STORE_BIN,
        {absl::StrCat("--data_dir=", dir.path(), "/", name, "-data"),
         absl::StrCat("--listen=unix:", socket), "--metrics_listen=", "--ha_listen="},
        dir.path());
    if (!store.ok()) return store.status();
    processes.push_back(std::move(store).value());
    flags.insert(flags.end(),
                 {absl::StrCat("--broker_name=", name), absl::StrCat("--nameservers=", ns_address),
                  absl::StrCat("--store=unix:", socket), "--metrics_listen=127.0.0.1:0",
                  "--heartbeat_interval=1s"});
    auto broker = ServiceProcess::Start(name, APOGEE_BROKER_BIN, flags, dir.path());
    if (!broker.ok()) return broker.status();
    processes.push_back(std::move(broker).value());
    return absl::OkStatus();
  };
  // broker-a: auth on, mTLS required; registers signed as --init_admin.
  std::vector<std::string> a_flags = server_tls();
  a_flags.insert(a_flags.end(), {"--auth=true", init_admin});
  for (std::string& f : client_tls("root")) a_flags.push_back(f);
  ASSERT_TRUE(start_broker("broker-a", a_flags).ok());
  const std::string broker_a = processes.back()->address();
  // broker-b: no credential at all, only a client certificate of "root".
  ASSERT_TRUE(start_broker("broker-b", client_tls("root")).ok());
  // rogue: a certificate the CA signed, but of no user the NameServer knows.
  ASSERT_TRUE(start_broker("rogue", client_tls("mallory")).ok());
  ServiceProcess* rogue = processes.back().get();

  // The NameServer lists broker-a and broker-b, refuses the rogue.
  auto ns = nsv1::NameServer::NewStub(grpc::CreateChannel(ns_address, As("root")));
  auto groups = [&] {
    nsv1::GetClusterInfoResponse info;
    grpc::Status s = ns->GetClusterInfo(Context().get(), {}, &info);
    return s.ok() ? info.ShortDebugString() : s.error_message();
  };
  ASSERT_TRUE(PollUntil(
      [&] {
        const std::string g = groups();
        return absl::StrContains(g, "broker-a") && absl::StrContains(g, "broker-b");
      },
      absl::Seconds(15)))
      << groups();
  ASSERT_TRUE(PollUntil(
      [&] {
        return absl::StrContains(ReadTextFile((*nameserver)->log_path()),
                                 "user \"mallory\" of the client certificate does not exist");
      },
      absl::Seconds(10)))
      << (*nameserver)->LogTail() << "\nrogue:\n"
      << rogue->LogTail();
  EXPECT_THAT(groups(), ::testing::Not(HasSubstr("rogue")));

  // The admin API: root's certificate is the super user, no signature.
  auto admin_as = [&](const std::string& user) {
    return av1::Admin::NewStub(grpc::CreateChannel(broker_a, As(user)));
  };
  auto root = admin_as("root");
  for (const char* topic : {"Allowed", "Denied"}) {
    av1::CreateTopicRequest request;
    request.mutable_topic()->set_name(topic);
    request.mutable_topic()->set_read_queues(2);
    request.mutable_topic()->set_write_queues(2);
    av1::CreateTopicResponse response;
    grpc::Status s = root->CreateTopic(Context().get(), request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  av1::CreateUserRequest create;
  create.mutable_user()->set_username("alice");
  create.mutable_user()->set_secret("alice-secret");
  av1::CreateUserResponse created;
  grpc::Status s = root->CreateUser(Context().get(), create, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  av1::GrantAclRequest grant;
  grant.set_username("alice");
  grant.mutable_policy()->set_resource("topic:Allowed");
  grant.mutable_policy()->add_actions("pub");
  grant.mutable_policy()->set_decision("allow");
  av1::GrantAclResponse granted;
  s = root->GrantAcl(Context().get(), grant, &granted);
  ASSERT_TRUE(s.ok()) << s.error_message();

  // alice's certificate: a normal user, no admin API.
  av1::ListTopicsResponse topics;
  s = admin_as("alice")->ListTopics(Context().get(), {}, &topics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("user \"alice\" may not use the admin API"));
  // mallory's: no such user on the broker.
  s = admin_as("mallory")->ListTopics(Context().get(), {}, &topics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();

  // The SDK with alice's certificate and no credential: her ACL decides.
  auto send_as = [&](const std::string& user, const std::string& topic) {
    ProducerOptions options;
    options.endpoints = {ns_address};
    options.tls.enabled = true;
    options.tls.ca_file = Path("ca.pem");
    options.tls.cert_file = Path(user + ".pem");
    options.tls.key_file = Path(user + ".key");
    auto producer = Producer::Create(options);
    if (!producer.ok()) return producer.status();
    Message m;
    m.topic = topic;
    m.body = "hello";
    return (*producer)->Send(m).status();
  };
  ASSERT_TRUE(PollUntil([&] { return send_as("alice", "Allowed").ok(); }, absl::Seconds(15)))
      << send_as("alice", "Allowed");
  absl::Status denied = send_as("alice", "Denied");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied) << denied;
  EXPECT_THAT(denied.message(), HasSubstr("user \"alice\" may not pub on topic:Denied"));
  absl::Status unknown = send_as("mallory", "Allowed");
  EXPECT_EQ(unknown.code(), absl::StatusCode::kUnauthenticated) << unknown;
}

}  // namespace
}  // namespace apogee
