// Transactional messages end to end (docs/design/message-types.md §3, §8)
// over the v2 protocol against real apogee-nameserver, apogee-store and
// apogee-broker processes: half messages stay invisible until committed;
// commit and rollback from the sending client or another one; orphans are
// checked back over Telemetry and resolved by the producer's answer, or
// discarded to TRANS_CHECK_MAX_TIME_TOPIC after the maximum checks; a commit
// wakes a parked receive (the store announces the copy it appended); half
// messages survive SIGKILL of the broker and of the store, and none is
// delivered twice. Check timings are shortened with the broker's flags.
#include <atomic>
#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
namespace sv1 = ::apogee::store::v1;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

constexpr char kTopic[] = "TxnTopic";
constexpr char kGroup[] = "txn-group";

// A producer's Telemetry stream: announces the topics it publishes and
// answers each RecoverOrphanedTransactionCommand with EndTransaction as
// `decide(body)` says (UNSPECIFIED: no answer).
class CheckResponder {
 public:
  using Decide = std::function<v2::TransactionResolution(const std::string& body)>;

  CheckResponder(const std::string& broker, const std::string& client_id, Decide decide)
      : client_id_(client_id), decide_(std::move(decide)) {
    stub_ = v2::MessagingService::NewStub(
        grpc::CreateChannel(broker, grpc::InsecureChannelCredentials()));
    context_.AddMetadata("x-mq-client-id", client_id_);
    stream_ = stub_->Telemetry(&context_);
    v2::TelemetryCommand settings;
    v2::Settings* s = settings.mutable_settings();
    s->set_client_type(v2::PRODUCER);
    s->mutable_publishing()->add_topics()->set_name(kTopic);
    s->mutable_request_timeout()->set_seconds(3);
    stream_->Write(settings);
    thread_ = std::thread([this] { Loop(); });
  }
  ~CheckResponder() {
    context_.TryCancel();
    thread_.join();
  }

  // Whether the broker answered the Settings (the stream is registered).
  bool ready() const { return ready_.load(); }

  struct Check {
    std::string transaction_id;
    std::string message_id;
    std::string body;
    std::string digest;
  };
  std::vector<Check> checks() const {
    absl::MutexLock lock(&mu_);
    return checks_;
  }

 private:
  void Loop() {
    v2::TelemetryCommand command;
    while (stream_->Read(&command)) {
      if (command.has_settings()) ready_ = true;
      if (!command.has_recover_orphaned_transaction_command()) continue;
      const auto& recover = command.recover_orphaned_transaction_command();
      const v2::Message& m = recover.message();
      {
        absl::MutexLock lock(&mu_);
        checks_.push_back({recover.transaction_id(), m.system_properties().message_id(), m.body(),
                           m.system_properties().body_digest().checksum()});
      }
      const v2::TransactionResolution resolution = decide_(m.body());
      if (resolution == v2::TRANSACTION_RESOLUTION_UNSPECIFIED) continue;
      v2::EndTransactionRequest end;
      *end.mutable_topic() = m.topic();
      end.set_message_id(m.system_properties().message_id());
      end.set_transaction_id(recover.transaction_id());
      end.set_resolution(resolution);
      end.set_source(v2::SOURCE_SERVER_CHECK);
      grpc::ClientContext context;
      context.AddMetadata("x-mq-client-id", client_id_);
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
      v2::EndTransactionResponse response;
      stub_->EndTransaction(&context, end, &response);
    }
    stream_->Finish();
  }

  const std::string client_id_;
  const Decide decide_;
  std::unique_ptr<v2::MessagingService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v2::TelemetryCommand, v2::TelemetryCommand>> stream_;
  std::atomic<bool> ready_{false};
  mutable absl::Mutex mu_;
  std::vector<Check> checks_;
  std::thread thread_;
};

class TransactionTest : public ::testing::Test {
 protected:
  // Check timings: `delay` before the first check, then every `interval`.
  void StartCluster(const std::string& delay, const std::string& interval, int max) {
    absl::Status started = cluster_.Start({absl::StrCat("--transaction_check_delay=", delay),
                                           absl::StrCat("--transaction_check_interval=", interval),
                                           absl::StrCat("--transaction_check_max=", max)});
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(cluster_.CreateTopic(kTopic, 2).ok());
    stub_ = v2::MessagingService::NewStub(
        grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& client_id = "txn-a@1@0@it") {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    context->AddMetadata("x-mq-client-id", client_id);
    return context;
  }

  static v2::Message Half(const std::string& id, const std::string& body) {
    v2::Message m;
    m.mutable_topic()->set_name(kTopic);
    m.set_body(body);
    m.mutable_system_properties()->set_message_id(id);
    m.mutable_system_properties()->set_message_type(v2::TRANSACTION);
    return m;
  }

  v2::SendMessageResponse SendRaw(const std::vector<v2::Message>& messages) {
    v2::SendMessageRequest request;
    for (const v2::Message& m : messages) *request.add_messages() = m;
    v2::SendMessageResponse response;
    grpc::Status rpc = stub_->SendMessage(Context().get(), request, &response);
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    return response;
  }

  // Sends one half message; returns its transaction id.
  std::string SendHalf(const std::string& id, const std::string& body) {
    v2::SendMessageResponse response = SendRaw({Half(id, body)});
    EXPECT_EQ(response.status().code(), v2::OK) << response.status().message();
    if (response.entries_size() != 1) return "";
    EXPECT_THAT(response.entries(0).transaction_id(),
                ::testing::StartsWith(cluster_.broker_name() + ":"));
    return response.entries(0).transaction_id();
  }

  v2::Status End(const std::string& id, const std::string& txid,
                 v2::TransactionResolution resolution,
                 const std::string& client_id = "txn-a@1@0@it") {
    v2::EndTransactionRequest request;
    request.mutable_topic()->set_name(kTopic);
    request.set_message_id(id);
    request.set_transaction_id(txid);
    request.set_resolution(resolution);
    request.set_source(v2::SOURCE_CLIENT);
    v2::EndTransactionResponse response;
    grpc::Status rpc = stub_->EndTransaction(Context(client_id).get(), request, &response);
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    return response.status();
  }

  // Receives for `linger` after at least `want` messages came (or the
  // timeout): body -> times received.
  std::map<std::string, int> Receive(size_t want, absl::Duration timeout,
                                     absl::Duration linger = absl::Seconds(1)) {
    testing::V2TestClient consumer(cluster_.broker_address(), "txn-consumer@1@0@it");
    std::map<std::string, int> seen;
    int total = 0;
    absl::Time done_at = absl::InfiniteFuture();
    PollUntil(
        [&] {
          auto messages = consumer.ReceiveOnce(kGroup, kTopic, 32, absl::Milliseconds(300));
          if (messages.ok()) {
            for (const v2::Message& m : *messages) {
              ++seen[m.body()];
              ++total;
              EXPECT_TRUE(consumer.Ack(kGroup, m).ok());
            }
          }
          const absl::Time now = absl::Now();
          if (static_cast<size_t>(total) >= want && done_at == absl::InfiniteFuture()) {
            done_at = now + linger;
          }
          return now >= done_at;
        },
        timeout, absl::ZeroDuration());
    return seen;
  }

  double BrokerMetric(const std::string& name) {
    return testing::ScrapeMetric(cluster_.broker()->metrics_address(), name).value_or(-1);
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::unique_ptr<v2::MessagingService::Stub> stub_;
};

TEST_F(TransactionTest, CommitRollbackFromAnyClientAndTypeChecks) {
  StartCluster("1h", "1h", 3);  // no check-back in this test
  const std::string t1 = SendHalf("TX-1", "committed-by-sender");
  const std::string t2 = SendHalf("TX-2", "committed-by-other");
  const std::string t3 = SendHalf("TX-3", "rolled-back");
  EXPECT_TRUE(Receive(1, absl::Seconds(1), absl::ZeroDuration()).empty()) << "half visible";

  EXPECT_EQ(End("TX-1", t1, v2::COMMIT).code(), v2::OK);
  EXPECT_EQ(End("TX-2", t2, v2::COMMIT, "txn-b@2@0@it").code(),
            v2::OK);  // same group, other client
  EXPECT_EQ(End("TX-3", t3, v2::ROLLBACK).code(), v2::OK);
  EXPECT_EQ(End("TX-1", t1, v2::COMMIT).code(), v2::OK);  // a retry: already committed

  const v2::Status late = End("TX-3", t3, v2::COMMIT);
  EXPECT_EQ(late.code(), v2::INVALID_TRANSACTION_ID);
  EXPECT_THAT(late.message(), HasSubstr("already rolled back"));
  EXPECT_EQ(End("TX-1", t2, v2::COMMIT).code(), v2::INVALID_TRANSACTION_ID);  // id mismatch
  EXPECT_EQ(End("TX-1", "", v2::COMMIT).code(), v2::INVALID_TRANSACTION_ID);
  EXPECT_EQ(End("TX-1", "broker-zz:10", v2::COMMIT).code(), v2::INVALID_TRANSACTION_ID);
  EXPECT_EQ(End("TX-1", cluster_.broker_name() + ":nothex", v2::COMMIT).code(),
            v2::INVALID_TRANSACTION_ID);

  std::map<std::string, int> seen = Receive(2, absl::Seconds(15));
  EXPECT_EQ(seen,
            (std::map<std::string, int>{{"committed-by-sender", 1}, {"committed-by-other", 1}}));

  // RocketMQ 5's type rules: a transactional message is neither FIFO nor
  // delayed, and travels alone.
  v2::Message fifo = Half("TX-F", "x");
  fifo.mutable_system_properties()->set_message_group("g");
  v2::SendMessageResponse refused = SendRaw({fifo});
  EXPECT_EQ(refused.status().code(), v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  EXPECT_THAT(refused.status().message(), HasSubstr("message_group"));
  v2::Message delayed = Half("TX-D", "x");
  delayed.mutable_system_properties()->mutable_delivery_timestamp()->set_seconds(
      absl::ToUnixSeconds(absl::Now()) + 60);
  refused = SendRaw({delayed});
  EXPECT_EQ(refused.status().code(), v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  EXPECT_THAT(refused.status().message(), HasSubstr("delivery_timestamp"));
  refused = SendRaw({Half("TX-X", "x"), Half("TX-Y", "y")});
  EXPECT_EQ(refused.status().code(), v2::BAD_REQUEST);
  EXPECT_THAT(refused.status().message(), HasSubstr("carries 1 message (got 2)"));
}

TEST_F(TransactionTest, ACommitWakesAParkedReceive) {
  StartCluster("1h", "1h", 3);
  const std::string txid = SendHalf("TX-W", "woken");
  testing::V2TestClient consumer(cluster_.broker_address(), "txn-consumer@1@0@it");
  auto none = consumer.ReceiveOnce(kGroup, kTopic, 32, absl::Milliseconds(300));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty()) << "half visible";
  // The receive parks with nothing to read; the commit stores the message
  // without a send to the broker, so only the store can announce it.
  const absl::Duration wait = absl::Milliseconds(300);
  absl::Time committed_at;
  std::thread committer([&] {
    absl::SleepFor(wait);  // the delay under test, not a wait for a result
    committed_at = absl::Now();
    EXPECT_EQ(End("TX-W", txid, v2::COMMIT).code(), v2::OK);
  });
  auto got = consumer.ReceiveOnce(kGroup, kTopic, 32, absl::Seconds(20));
  const absl::Time returned = absl::Now();
  committer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].body(), "woken");
  EXPECT_GE(returned, committed_at);
  EXPECT_LT(returned - committed_at, absl::Seconds(10)) << "woken at the end of the 20 s poll";
}

TEST_F(TransactionTest, CheckBackCommitsRollsBackAndDiscardsAfterMax) {
  StartCluster("300ms", "300ms", 3);
  CheckResponder producer(cluster_.broker_address(), "txn-producer@1@0@it",
                          [](const std::string& body) {
                            if (body == "check-commit") return v2::COMMIT;
                            if (body == "check-rollback") return v2::ROLLBACK;
                            return v2::TRANSACTION_RESOLUTION_UNSPECIFIED;  // "unknown"
                          });
  ASSERT_TRUE(PollUntil([&] { return producer.ready(); }, absl::Seconds(10)));
  const std::string tc = SendHalf("TX-C", "check-commit");
  SendHalf("TX-R", "check-rollback");
  const std::string tu = SendHalf("TX-U", "check-unknown");

  std::map<std::string, int> seen = Receive(1, absl::Seconds(15), absl::Seconds(2));
  EXPECT_EQ(seen, (std::map<std::string, int>{{"check-commit", 1}}));

  // The unanswered one: checked 3 times, then discarded.
  ASSERT_TRUE(PollUntil([&] { return BrokerMetric("apogee_transactions_discarded_total") == 1; },
                        absl::Seconds(15)))
      << cluster_.broker()->LogTail();
  int unknown_checks = 0;
  for (const CheckResponder::Check& check : producer.checks()) {
    EXPECT_FALSE(check.digest.empty()) << "a check carries the body digest";
    if (check.message_id == "TX-U") {
      ++unknown_checks;
      EXPECT_EQ(check.transaction_id, tu);
      EXPECT_EQ(check.body, "check-unknown");
    }
    if (check.message_id == "TX-C") {
      EXPECT_EQ(check.transaction_id, tc);
    }
  }
  EXPECT_EQ(unknown_checks, 3);
  EXPECT_EQ(testing::ScrapeMetric(cluster_.broker()->metrics_address(),
                                  "apogee_transaction_checks_total", {{"result", "sent"}})
                .value_or(-1),
            static_cast<double>(producer.checks().size()));

  // The discarded message waits in TRANS_CHECK_MAX_TIME_TOPIC for an operator.
  auto store = sv1::Store::NewStub(
      grpc::CreateChannel(cluster_.store()->address(), grpc::InsecureChannelCredentials()));
  sv1::ListPendingRequest list;
  list.set_kind(sv1::RECORD_DISCARDED);
  list.set_limit(10);
  sv1::ListPendingResponse discarded;
  grpc::ClientContext context;
  ASSERT_TRUE(store->ListPending(&context, list, &discarded).ok());
  ASSERT_EQ(discarded.records_size(), 1);
  EXPECT_EQ(discarded.records(0).topic(), "TRANS_CHECK_MAX_TIME_TOPIC");
  EXPECT_EQ(discarded.records(0).message_id(), "TX-U");
  EXPECT_EQ(discarded.records(0).check_count(), 3);
  // A late commit still delivers it, once.
  EXPECT_EQ(End("TX-U", tu, v2::COMMIT).code(), v2::OK);
  EXPECT_EQ(End("TX-U", tu, v2::COMMIT).code(), v2::OK);
  seen = Receive(1, absl::Seconds(10));
  EXPECT_EQ(seen, (std::map<std::string, int>{{"check-unknown", 1}}));
}

TEST_F(TransactionTest, HalfMessagesSurviveSigkillOfBrokerAndStore) {
  StartCluster("1h", "1h", 3);
  const std::string t1 = SendHalf("TX-K1", "kill-commit");
  const std::string t2 = SendHalf("TX-K2", "kill-rollback");
  const std::string t3 = SendHalf("TX-K3", "commit-then-kill");
  ASSERT_EQ(End("TX-K3", t3, v2::COMMIT).code(), v2::OK);

  ASSERT_TRUE(cluster_.broker()->Stop(SIGKILL).ok());
  ASSERT_TRUE(cluster_.store()->Stop(SIGKILL).ok());
  ASSERT_TRUE(cluster_.RestartStore().ok());
  ASSERT_TRUE(cluster_.RestartBroker().ok());
  stub_ = v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));

  // The ids need no broker memory: resolved after the restart, once.
  EXPECT_EQ(End("TX-K1", t1, v2::COMMIT).code(), v2::OK);
  EXPECT_EQ(End("TX-K1", t1, v2::COMMIT).code(), v2::OK);
  EXPECT_EQ(End("TX-K2", t2, v2::ROLLBACK).code(), v2::OK);
  EXPECT_EQ(End("TX-K3", t3, v2::COMMIT).code(), v2::OK);  // committed before the kill
  std::map<std::string, int> seen = Receive(2, absl::Seconds(15), absl::Seconds(2));
  EXPECT_EQ(seen, (std::map<std::string, int>{{"kill-commit", 1}, {"commit-then-kill", 1}}))
      << cluster_.store()->LogTail();
}

TEST_F(TransactionTest, OfficialNodeClientCommitRollbackAndCheckBack) {
  StartCluster("300ms", "300ms", 5);
  auto [code, output] =
      testing::RunNodeInterop(APOGEE_SOURCE_DIR, "transaction.js",
                              absl::StrCat(cluster_.broker_address(), " ", kTopic, " node-txn"),
                              absl::StrCat(cluster_.dir(), "/transaction.js.log"));
  ASSERT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("committed"));
  EXPECT_THAT(output, HasSubstr("rolled back"));
  EXPECT_THAT(output, HasSubstr("received 2"));
  EXPECT_THAT(output, HasSubstr("rollback invisible"));
}

TEST_F(TransactionTest, SlaveRelaysEndTransactionToTheWriter) {
  StartCluster("1h", "1h", 3);
  absl::StatusOr<int> slave = cluster_.AddSlave(0, 1);
  ASSERT_TRUE(slave.ok()) << slave.status();
  const std::string t1 = SendHalf("TX-S1", "ended-on-slave");
  // A client ends the transaction on another member of the group (its
  // route lists every member): the slave relays it to the writer.
  auto on_slave = v2::MessagingService::NewStub(
      grpc::CreateChannel(cluster_.broker(*slave)->address(), grpc::InsecureChannelCredentials()));
  v2::EndTransactionRequest request;
  request.mutable_topic()->set_name(kTopic);
  request.set_message_id("TX-S1");
  request.set_transaction_id(t1);
  request.set_resolution(v2::COMMIT);
  v2::EndTransactionResponse response;
  ASSERT_TRUE(on_slave->EndTransaction(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status().code(), v2::OK) << response.status().message();
  std::map<std::string, int> seen = Receive(1, absl::Seconds(15));
  EXPECT_EQ(seen, (std::map<std::string, int>{{"ended-on-slave", 1}}));
}

}  // namespace
}  // namespace apogee
