// The broker's connection and stream limits against real processes:
// Telemetry and push streams per client id and in total (RESOURCE_EXHAUSTED
// naming the flag), streams per connection, idle connections closed, flag
// validation; a thousand connections leave the broker healthy with its
// memory bounded (VmRSS from /proc).
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/broker/v1/push.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"
#include "tests/integration/v2_test_client.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
namespace pushv1 = ::apogee::broker::v1;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

constexpr char kTopic[] = "Streams";

// A channel with a TCP connection of its own (no subchannel sharing).
std::shared_ptr<grpc::Channel> OwnConnection(const std::string& address, int n) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("apogee.test.connection", n);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// One stream of either kind, held open by the test.
template <typename Stub, typename Request, typename Response>
struct Stream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<Request, Response>> rw;

  // Sends `first` and waits for the broker's first answer: OK when it came,
  // else the status the broker ended the stream with.
  absl::Status Start(Stub* stub, const Request& first, absl::Duration timeout) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    rw = Open(stub);
    Response answer;
    if (rw->Write(first) && rw->Read(&answer)) return absl::OkStatus();
    grpc::Status status = rw->Finish();
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }

 private:
  std::unique_ptr<grpc::ClientReaderWriter<Request, Response>> Open(v2::MessagingService::Stub* s) {
    return s->Telemetry(&context);
  }
  std::unique_ptr<grpc::ClientReaderWriter<Request, Response>> Open(pushv1::PushConsumer::Stub* s) {
    return s->Consume(&context);
  }
};
using TelemetryStream =
    Stream<v2::MessagingService::Stub, v2::TelemetryCommand, v2::TelemetryCommand>;
using PushStream =
    Stream<pushv1::PushConsumer::Stub, pushv1::ConsumeRequest, pushv1::ConsumeResponse>;

class ConnectionLimitsTest : public ::testing::Test {
 protected:
  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};

  // Opens a Telemetry stream as `client_id` and sends Settings.
  std::unique_ptr<TelemetryStream> Telemetry(v2::MessagingService::Stub* stub,
                                             const std::string& client_id, absl::Status* status,
                                             absl::Duration timeout = absl::Seconds(20)) {
    auto stream = std::make_unique<TelemetryStream>();
    stream->context.AddMetadata("x-mq-client-id", client_id);
    v2::TelemetryCommand settings;
    settings.mutable_settings()->set_client_type(v2::PRODUCER);
    *status = stream->Start(stub, settings, timeout);
    return stream;
  }

  std::unique_ptr<PushStream> Push(pushv1::PushConsumer::Stub* stub, const std::string& client_id,
                                   absl::Status* status) {
    auto stream = std::make_unique<PushStream>();
    pushv1::ConsumeRequest request;
    pushv1::Subscribe* s = request.mutable_subscribe();
    s->set_client_id(client_id);
    s->set_group("g-limits");
    s->set_topic(kTopic);
    s->set_tag_expression("*");
    *status = stream->Start(stub, request, absl::Seconds(20));
    return stream;
  }
};

TEST_F(ConnectionLimitsTest, TelemetryStreamsPerClientAndInTotalWithAThousandConnections) {
  constexpr int kTotal = 40;
  absl::Status started = cluster_.Start(
      {absl::StrCat("--max_telemetry_streams=", kTotal), "--max_telemetry_streams_per_client=2"});
  ASSERT_TRUE(started.ok()) << started;
  const pid_t broker = cluster_.broker()->pid();
  const int64_t rss_before = testing::ProcStatusKb(broker, "VmRSS");

  auto stub = v2::MessagingService::NewStub(OwnConnection(cluster_.broker_address(), -1));
  std::vector<std::unique_ptr<TelemetryStream>> open;
  absl::Status s;
  open.push_back(Telemetry(stub.get(), "c1", &s));
  ASSERT_TRUE(s.ok()) << s;
  open.push_back(Telemetry(stub.get(), "c1", &s));
  ASSERT_TRUE(s.ok()) << s;
  auto third = Telemetry(stub.get(), "c1", &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr("client \"c1\""));
  EXPECT_THAT(s.message(), HasSubstr("--max_telemetry_streams_per_client=2"));

  // A thousand connections, one stream attempt each: the first 38 fit the
  // total, the rest are refused naming it; every connection stays open.
  constexpr int kConnections = 1000;
  std::vector<std::unique_ptr<v2::MessagingService::Stub>> stubs;
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < kConnections; ++i) {
    stubs.push_back(v2::MessagingService::NewStub(OwnConnection(cluster_.broker_address(), i)));
    auto stream = Telemetry(stubs.back().get(), absl::StrCat("many-", i), &s);
    if (s.ok()) {
      ++accepted;
      open.push_back(std::move(stream));
    } else {
      ++refused;
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
      if (refused == 1) {
        EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("--max_telemetry_streams=", kTotal)));
      }
    }
  }
  EXPECT_EQ(accepted, kTotal - 2);
  EXPECT_EQ(refused, kConnections - accepted);

  // Healthy: health check and a send on a fresh connection.
  EXPECT_TRUE(testing::WaitForServing(cluster_.broker_address(), absl::Seconds(5)).ok());
  ASSERT_TRUE(cluster_.CreateTopic(kTopic, 2).ok());
  testing::V2TestClient producer(cluster_.broker_address(), "limits-producer@1@0@it");
  absl::Status sent = producer.Send(kTopic, "after-1000", "body");
  EXPECT_TRUE(sent.ok()) << sent;
  // Generous: a thousand connections and 40 streams, far from what
  // unbounded per-connection buffers would take.
  const int64_t rss_after = testing::ProcStatusKb(broker, "VmRSS");
  EXPECT_LT(rss_after - rss_before, 128 * 1024)
      << "VmRSS " << rss_before << " KiB -> " << rss_after << " KiB";
  std::printf("broker VmRSS %lld KiB -> %lld KiB with %d connections\n",
              static_cast<long long>(rss_before), static_cast<long long>(rss_after),
              kConnections + 1);

  // Closing c1's streams gives its places back.
  open[0]->context.TryCancel();
  open[1]->context.TryCancel();
  std::unique_ptr<TelemetryStream> again;
  EXPECT_TRUE(PollUntil(
      [&] {
        again = Telemetry(stub.get(), "c1", &s);
        return s.ok();
      },
      absl::Seconds(10), absl::Milliseconds(20)))
      << s;
}

TEST_F(ConnectionLimitsTest, PushStreamsPerClientAndInTotal) {
  absl::Status started =
      cluster_.Start({"--max_push_streams=3", "--max_push_streams_per_client=2"});
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_TRUE(cluster_.CreateTopic(kTopic, 2).ok());
  auto stub = pushv1::PushConsumer::NewStub(
      grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials()));
  absl::Status s;
  auto a = Push(stub.get(), "p1", &s);
  ASSERT_TRUE(s.ok()) << s;
  auto b = Push(stub.get(), "p1", &s);
  ASSERT_TRUE(s.ok()) << s;
  auto c = Push(stub.get(), "p1", &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr("--max_push_streams_per_client=2"));
  // The refused stream gives its place among all back once it is gone.
  std::unique_ptr<PushStream> d;
  ASSERT_TRUE(PollUntil(
      [&] {
        d = Push(stub.get(), "p2", &s);
        return s.ok();
      },
      absl::Seconds(10), absl::Milliseconds(20)))
      << s;
  auto e = Push(stub.get(), "p3", &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr("--max_push_streams=3"));
  EXPECT_TRUE(testing::WaitForServing(cluster_.broker_address(), absl::Seconds(5)).ok());
}

TEST_F(ConnectionLimitsTest, StreamsPerConnectionAndIdleConnections) {
  absl::Status started =
      cluster_.Start({"--max_streams_per_connection=4", "--max_connection_idle=1s"});
  ASSERT_TRUE(started.ok()) << started;
  auto channel = OwnConnection(cluster_.broker_address(), 0);
  auto stub = v2::MessagingService::NewStub(channel);
  std::vector<std::unique_ptr<TelemetryStream>> open;
  absl::Status s;
  for (int i = 0; i < 4; ++i) {
    open.push_back(Telemetry(stub.get(), absl::StrCat("conn-", i), &s));
    ASSERT_TRUE(s.ok()) << s;
  }
  // A fifth waits in the client for a free stream (HTTP/2
  // SETTINGS_MAX_CONCURRENT_STREAMS) until its deadline.
  auto fifth = Telemetry(stub.get(), "conn-4", &s, absl::Seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  open[0]->context.TryCancel();
  auto sixth = Telemetry(stub.get(), "conn-5", &s);
  EXPECT_TRUE(s.ok()) << s;

  // A connection without calls is closed by the broker (GOAWAY): the
  // channel goes back to IDLE on its own.
  auto idle = OwnConnection(cluster_.broker_address(), 1);
  ASSERT_TRUE(idle->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(10))));
  EXPECT_TRUE(PollUntil([&] { return idle->GetState(false) != GRPC_CHANNEL_READY; },
                        absl::Seconds(15), absl::Milliseconds(50)));
}

TEST(ConnectionFlagsTest, OutOfRangeFlagsAreNamedAtStart) {
  testing::TempDir dir;
  struct Case {
    std::string binary;
    std::string flag;
    std::string error;
  } cases[] = {
      {APOGEE_NAMESERVER_BIN, "--max_streams_per_connection=0",
       "--max_streams_per_connection=0 is out of range (allowed: 1..100000)"},
      {APOGEE_BROKER_BIN, "--max_connection_idle=-1s",
       "--max_connection_idle=-1s is out of range (allowed: 1s..24h); 0 turns it off"},
      {APOGEE_BROKER_BIN, "--max_push_streams_per_client=20000",
       "--max_push_streams_per_client=20000 is out of range (allowed: "
       "1..--max_push_streams=10000)"},
      {APOGEE_BROKER_BIN, "--admin_listen=nohost", "--admin_listen"},
  };
  int n = 0;
  for (const Case& c : cases) {
    const std::string name = absl::StrCat("bad-", n++);
    auto process =
        testing::ServiceProcess::Start(name, c.binary, {c.flag}, dir.path(), absl::Seconds(10));
    EXPECT_FALSE(process.ok()) << c.flag;
    std::ifstream log(absl::StrCat(dir.path(), "/", name, ".log"));
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    EXPECT_THAT(text, HasSubstr(c.error)) << c.flag;
  }
}

}  // namespace
}  // namespace apogee
