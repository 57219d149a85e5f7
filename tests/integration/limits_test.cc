// The broker's request limits against real processes: a body of exactly the
// advertised 4 MiB round-trips, a request over --max_request_bytes is refused
// by gRPC, requests beyond --max_inflight_bytes get TOO_MANY_REQUESTS, and
// many parallel large requests leave the broker's memory bounded (VmHWM and
// VmRSS from /proc, not timings).
#include <signal.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kMaxBody = 4 * kMiB;
// Small limits keep the data volume modest: two max bodies per request,
// about two such requests in flight.
constexpr int64_t kMaxRequest = 2 * kMaxBody + kMiB;
constexpr int64_t kMaxInflight = 20 * kMiB;
constexpr char kTopic[] = "Limits";

// Starts a new VmHWM (peak RSS) period for `pid` (Linux 4.0+).
bool ResetPeak(pid_t pid) {
  std::ofstream out(absl::StrCat("/proc/", pid, "/clear_refs"));
  out << "5";
  out.close();
  return static_cast<bool>(out);
}

class LimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new LocalCluster({APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN});
    absl::Status started = cluster_->Start({absl::StrCat("--max_request_bytes=", kMaxRequest),
                                            absl::StrCat("--max_inflight_bytes=", kMaxInflight)});
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(cluster_->CreateTopic(kTopic, 2).ok());
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 * kMiB);  // a 4 MiB message comes back whole
    stub_ = v2::MessagingService::NewStub(grpc::CreateCustomChannel(
        cluster_->broker_address(), grpc::InsecureChannelCredentials(), args));
  }

  static std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    context->AddMetadata("x-mq-client-id", "limits-test@1@0@it");
    return context;
  }

  // `n` messages of `body_bytes` each in one request.
  static v2::SendMessageRequest Request(const std::string& id, int n, int64_t body_bytes) {
    v2::SendMessageRequest request;
    for (int i = 0; i < n; ++i) {
      v2::Message* m = request.add_messages();
      m->mutable_topic()->set_name(kTopic);
      m->mutable_system_properties()->set_message_id(absl::StrCat(id, "-", i));
      m->mutable_system_properties()->set_tag("TagA");
      m->mutable_system_properties()->add_keys(absl::StrCat("key-", id));
      m->mutable_system_properties()->set_message_type(v2::NORMAL);
      (*m->mutable_user_properties())["origin"] = "limits_test";
      m->set_body(std::string(static_cast<size_t>(body_bytes), static_cast<char>('a' + i % 26)));
    }
    return request;
  }

  grpc::Status Send(const v2::SendMessageRequest& request, v2::SendMessageResponse* response,
                    absl::Duration timeout = absl::Seconds(20)) {
    return stub_->SendMessage(Context(timeout).get(), request, response);
  }

  pid_t broker_pid() { return cluster_->broker()->pid(); }

  // Polls (10 s) until the broker's VmRSS is under `limit_kb`.
  void ExpectRssFallsBelow(int64_t limit_kb, int64_t rss_before) {
    int64_t rss = 0;
    EXPECT_TRUE(PollUntil(
        [&] {
          rss = testing::ProcStatusKb(broker_pid(), "VmRSS");
          return rss < limit_kb;
        },
        absl::Seconds(10), absl::Milliseconds(100)))
        << "broker VmRSS " << rss << " KiB, was " << rss_before << " KiB before; peak "
        << testing::ProcStatusKb(broker_pid(), "VmHWM") << " KiB";
    std::fprintf(stderr, "broker VmRSS once idle %lld KiB (was %lld KiB)\n",
                 static_cast<long long>(rss), static_cast<long long>(rss_before));
  }

  static LocalCluster* cluster_;
  std::unique_ptr<v2::MessagingService::Stub> stub_;
};

LocalCluster* LimitsTest::cluster_ = nullptr;

TEST_F(LimitsTest, ABodyOfExactlyTheAdvertisedLimitRoundTrips) {
  v2::SendMessageResponse response;
  grpc::Status rpc = Send(Request("exact", 1, kMaxBody), &response);
  ASSERT_TRUE(rpc.ok()) << rpc.error_message();
  ASSERT_EQ(response.status().code(), v2::OK) << response.status().message();

  // One byte more is the broker's MESSAGE_BODY_TOO_LARGE, not a store error.
  v2::SendMessageResponse over;
  rpc = Send(Request("over", 1, kMaxBody + 1), &over);
  ASSERT_TRUE(rpc.ok()) << rpc.error_message();
  EXPECT_EQ(over.status().code(), v2::MESSAGE_BODY_TOO_LARGE) << over.status().message();
  EXPECT_THAT(over.status().message(), HasSubstr("body is 4194305 bytes (max 4194304)"));

  v2::ReceiveMessageRequest receive;
  receive.mutable_group()->set_name("LimitsGroup");
  receive.mutable_message_queue()->mutable_topic()->set_name(kTopic);
  receive.mutable_filter_expression()->set_type(v2::TAG);
  receive.mutable_filter_expression()->set_expression("*");
  receive.set_batch_size(1);
  receive.mutable_invisible_duration()->set_seconds(30);
  receive.mutable_long_polling_timeout()->set_seconds(2);
  std::string body;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto context = Context(absl::Seconds(10));
        auto stream = stub_->ReceiveMessage(context.get(), receive);
        v2::ReceiveMessageResponse item;
        while (stream->Read(&item)) {
          if (item.has_message() && item.message().system_properties().message_id() == "exact-0") {
            body = item.message().body();
          }
        }
        stream->Finish();
        return !body.empty();
      },
      absl::Seconds(20)));
  EXPECT_EQ(body, std::string(kMaxBody, 'a'));
}

TEST_F(LimitsTest, ARequestOverMaxRequestBytesIsRefusedNamingTheLimit) {
  const int64_t rss_before = testing::ProcStatusKb(broker_pid(), "VmRSS");
  EXPECT_TRUE(ResetPeak(broker_pid()));
  v2::SendMessageResponse response;
  // Eight max bodies (34 MB): each message is valid, the request too large.
  grpc::Status rpc = Send(Request("too-big", 8, kMaxBody), &response);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << rpc.error_message();
  EXPECT_THAT(rpc.error_message(), HasSubstr(absl::StrCat(kMaxRequest)));
  // The broker still serves.
  rpc = Send(Request("after-too-big", 1, 1024), &response);
  ASSERT_TRUE(rpc.ok()) << rpc.error_message();
  EXPECT_EQ(response.status().code(), v2::OK) << response.status().message();
  // gRPC 1.51 reads the whole message before refusing it (measured: a
  // 100 MB request raises the peak by ~98 MB), so the memory it took must be
  // given back once the broker is idle (measured here: +3..13 MiB; for the
  // 100 MB request +1 MiB, and +58 MiB without the idle malloc_trim).
  ExpectRssFallsBelow(rss_before + 20 * 1024, rss_before);
}

// The broker's apogee_request_inflight_bytes gauge of that kind; -1 if absent.
int64_t RequestBytesGauge(LocalCluster& cluster, const std::string& kind) {
  auto metrics = testing::HttpGet(cluster.broker()->metrics_address(), "/metrics");
  if (!metrics.ok()) return -1;
  const std::string label = absl::StrCat("kind=\"", kind, "\"");
  for (absl::string_view line : absl::StrSplit(*metrics, '\n')) {
    if (!absl::StartsWith(line, "apogee_request_inflight_bytes{") ||
        !absl::StrContains(line, label)) {
      continue;
    }
    double value = -1;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) {
      return static_cast<int64_t>(value);
    }
  }
  return -1;
}

TEST_F(LimitsTest, RequestsBeyondMaxInflightBytesGetTooManyRequests) {
  // With the store stopped every admitted request stays in flight, so the
  // third request of ~8.4 MB passes the 20 MiB budget, deterministically.
  // (Resumed within ~5 s: the broker's keepalive would drop the store at 15 s.)
  ASSERT_EQ(kill(cluster_->store()->pid(), SIGSTOP), 0);
  std::vector<std::string> outcomes;
  std::string refusal;
  for (int i = 0; i < 3; ++i) {
    v2::SendMessageResponse response;
    grpc::Status rpc =
        Send(Request(absl::StrCat("held-", i), 2, kMaxBody), &response, absl::Milliseconds(1500));
    if (!rpc.ok()) {
      outcomes.push_back(absl::StrCat("rpc ", rpc.error_code()));
    } else {
      outcomes.push_back(v2::Code_Name(response.status().code()));
      if (response.status().code() == v2::TOO_MANY_REQUESTS) refusal = response.status().message();
    }
  }
  // The held requests show in the broker's gauge (sampled every second).
  const bool gauge_saw_them =
      PollUntil([&] { return RequestBytesGauge(*cluster_, "in_flight") > kMaxBody; },
                absl::Seconds(4), absl::Milliseconds(100));
  ASSERT_EQ(kill(cluster_->store()->pid(), SIGCONT), 0);
  EXPECT_TRUE(gauge_saw_them) << "apogee_request_inflight_bytes{kind=\"in_flight\"} stayed at "
                              << RequestBytesGauge(*cluster_, "in_flight");
  EXPECT_EQ(RequestBytesGauge(*cluster_, "limit"), kMaxInflight);
  const std::string deadline_exceeded = absl::StrCat("rpc ", grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(outcomes,
              ::testing::ElementsAre(deadline_exceeded, deadline_exceeded, "TOO_MANY_REQUESTS"));
  EXPECT_THAT(refusal, HasSubstr(absl::StrCat("--max_inflight_bytes=", kMaxInflight)));

  // Once the store answers, the held requests drain and sends pass again.
  v2::SendMessageResponse response;
  EXPECT_TRUE(PollUntil(
      [&] {
        grpc::Status rpc = Send(Request("after-held", 2, kMaxBody), &response);
        return rpc.ok() && response.status().code() == v2::OK;
      },
      absl::Seconds(20), absl::Milliseconds(100)))
      << v2::Code_Name(response.status().code()) << ": " << response.status().message();
}

TEST_F(LimitsTest, ParallelLargeRequestsGetOkOrTooManyRequestsWithBoundedMemory) {
  constexpr int kThreads = 8;
  constexpr int kRequestsPerThread = 2;
  const int64_t rss_before = testing::ProcStatusKb(broker_pid(), "VmRSS");
  EXPECT_TRUE(ResetPeak(broker_pid()));  // this test's peak, not the earlier tests'
  absl::Mutex mu;
  std::map<std::string, int> outcomes;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const v2::SendMessageRequest request = Request(absl::StrCat("par-", t), 2, kMaxBody);
      for (int r = 0; r < kRequestsPerThread; ++r) {
        v2::SendMessageResponse response;
        grpc::Status rpc = Send(request, &response);
        std::string outcome =
            rpc.ok() ? v2::Code_Name(response.status().code())
                     : absl::StrCat("rpc ", rpc.error_code(), " ", rpc.error_message());
        absl::MutexLock lock(&mu);
        outcomes[outcome]++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  int answered = 0;
  for (const auto& [outcome, count] : outcomes) {
    EXPECT_TRUE(outcome == "OK" || outcome == "TOO_MANY_REQUESTS") << outcome << " x" << count;
    answered += count;
  }
  EXPECT_EQ(answered, kThreads * kRequestsPerThread);
  EXPECT_GT(outcomes["OK"], 0);

  // 134 MB were sent, 67 MB at a time. The broker's peak is bounded by what
  // the limits allow: each concurrent request is at most --max_request_bytes,
  // held twice while gRPC parses it, plus about three times
  // --max_inflight_bytes for the admitted ones (request, store records,
  // serialised append). Measured: +110..145 MiB here; without the in-flight
  // limit +205 MiB; before the limits, GBs.
  const int64_t hwm = testing::ProcStatusKb(broker_pid(), "VmHWM");
  const int64_t bound_kb = rss_before + (2 * kThreads * kMaxRequest + 3 * kMaxInflight) / 1024;
  std::fprintf(stderr,
               "broker VmRSS before %lld KiB, VmHWM %lld KiB (bound %lld KiB); OK %d, "
               "TOO_MANY_REQUESTS %d\n",
               static_cast<long long>(rss_before), static_cast<long long>(hwm),
               static_cast<long long>(bound_kb), outcomes["OK"], outcomes["TOO_MANY_REQUESTS"]);
  EXPECT_LT(hwm, bound_kb) << "broker peak RSS (KiB)";

  // And gives the memory back once idle (measured: -10..+25 MiB from where it
  // started; +56..80 MiB before large buffers were mapped outside the heap
  // and trimmed when idle).
  ExpectRssFallsBelow(rss_before + 40 * 1024, rss_before);
}

}  // namespace
}  // namespace apogee
