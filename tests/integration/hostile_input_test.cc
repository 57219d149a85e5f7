// Hostile and broken input against real apogee-nameserver, apogee-store and
// apogee-broker processes: unknown enum values, bad message ids and store
// record limits get the proxy's v2 codes and store nothing; garbage payloads
// and garbage on streams get INVALID_ARGUMENT naming the method; losing the
// store is logged once on each side.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

constexpr char kClientId[] = "hostile@1@0@it";
// A length-delimited field 1 that promises 127 bytes and has 1: no protobuf
// message parses it.
const std::string kGarbage("\x0a\x7f\x01", 3);

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  context->AddMetadata("x-mq-client-id", kClientId);
  return context;
}

int CountLines(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (absl::StrContains(line, needle)) ++n;
  }
  return n;
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start().ok());
    channel_ = grpc::CreateChannel(cluster_.broker_address(), grpc::InsecureChannelCredentials());
    v2_ = v2::MessagingService::NewStub(channel_);
    absl::Status created = cluster_.CreateTopic("Hostile", 1);
    ASSERT_TRUE(created.ok()) << created;
  }

  static v2::Message Message(const std::string& id) {
    v2::Message m;
    m.mutable_topic()->set_name("Hostile");
    m.mutable_system_properties()->set_message_id(id);
    m.set_body("x");
    return m;
  }

  v2::Status Send(v2::Message m) {
    v2::SendMessageRequest request;
    *request.add_messages() = std::move(m);
    v2::SendMessageResponse response;
    grpc::Status s = v2_->SendMessage(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.status();
  }

  v2::Code ReceiveCode(v2::FilterType type) {
    v2::ReceiveMessageRequest request;
    request.mutable_group()->set_name("g");
    request.mutable_message_queue()->mutable_topic()->set_name("Hostile");
    request.mutable_filter_expression()->set_type(type);
    request.mutable_filter_expression()->set_expression("*");
    request.set_batch_size(32);
    request.mutable_invisible_duration()->set_seconds(30);
    request.mutable_long_polling_timeout()->set_seconds(1);
    auto context = Context();
    auto reader = v2_->ReceiveMessage(context.get(), request);
    v2::Code code = v2::CODE_UNSPECIFIED;
    v2::ReceiveMessageResponse item;
    while (reader->Read(&item)) {
      if (item.has_status()) code = item.status().code();
    }
    EXPECT_TRUE(reader->Finish().ok());
    return code;
  }

  // Opens `method` as a raw stream, writes kGarbage, returns how it ended.
  grpc::Status GarbageOnStream(const std::string& method) {
    grpc::GenericStub stub(channel_);
    grpc::CompletionQueue cq;
    auto context = Context();
    auto call = stub.PrepareCall(context.get(), method, &cq);
    void* tag;
    bool ok;
    call->StartCall(reinterpret_cast<void*>(1));
    cq.Next(&tag, &ok);
    grpc::Slice slice(kGarbage);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    cq.Next(&tag, &ok);
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(3));
    while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(3)) {
    }
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return status;
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v2::MessagingService::Stub> v2_;
};

TEST_F(HostileInputTest, UnknownEnumsBadIdsAndStoreLimitsGetProxyCodesAndStoreNothing) {
  v2::Message m = Message("t-1");
  m.mutable_system_properties()->set_message_type(static_cast<v2::MessageType>(99));
  v2::Status s = Send(m);
  EXPECT_EQ(s.code(), v2::BAD_REQUEST);
  EXPECT_THAT(s.message(), HasSubstr("message_type is 99, not a MessageType"));

  EXPECT_EQ(Send(Message("a\nb")).code(), v2::ILLEGAL_MESSAGE_ID);
  EXPECT_EQ(Send(Message(std::string("a\0b", 3))).code(), v2::ILLEGAL_MESSAGE_ID);

  m = Message("t-2");
  for (int i = 0; i < 10000; ++i) m.mutable_system_properties()->add_keys("k");
  s = Send(m);
  EXPECT_EQ(s.code(), v2::ILLEGAL_MESSAGE_KEY);
  EXPECT_EQ(s.message(), "messages[0] has 10000 keys (max 32)");

  m = Message("t-3");
  m.mutable_system_properties()->set_tag(std::string(2000, 't'));
  EXPECT_EQ(Send(m).code(), v2::ILLEGAL_MESSAGE_TAG);

  v2::HeartbeatRequest heartbeat;
  heartbeat.set_client_type(static_cast<v2::ClientType>(99));
  v2::HeartbeatResponse heartbeat_response;
  ASSERT_TRUE(v2_->Heartbeat(Context().get(), heartbeat, &heartbeat_response).ok());
  EXPECT_EQ(heartbeat_response.status().code(), v2::UNRECOGNIZED_CLIENT_TYPE);

  // Settings with an unknown client type: refused in-band.
  {
    auto context = Context();
    auto telemetry = v2_->Telemetry(context.get());
    v2::TelemetryCommand settings;
    settings.mutable_settings()->set_client_type(static_cast<v2::ClientType>(99));
    ASSERT_TRUE(telemetry->Write(settings));
    v2::TelemetryCommand answer;
    ASSERT_TRUE(telemetry->Read(&answer));
    EXPECT_EQ(answer.status().code(), v2::UNRECOGNIZED_CLIENT_TYPE);
    telemetry->WritesDone();
    EXPECT_TRUE(telemetry->Finish().ok());
  }

  v2::QueryOffsetRequest query;
  query.mutable_message_queue()->mutable_topic()->set_name("Hostile");
  query.set_query_offset_policy(static_cast<v2::QueryOffsetPolicy>(9));
  v2::QueryOffsetResponse query_response;
  ASSERT_TRUE(v2_->QueryOffset(Context().get(), query, &query_response).ok());
  EXPECT_EQ(query_response.status().code(), v2::BAD_REQUEST);

  EXPECT_EQ(ReceiveCode(static_cast<v2::FilterType>(42)), v2::ILLEGAL_FILTER_EXPRESSION);
  // Nothing above was stored.
  EXPECT_EQ(ReceiveCode(v2::TAG), v2::MESSAGE_NOT_FOUND);
}

TEST_F(HostileInputTest, GarbagePayloadsGetInvalidArgumentNamingTheMethodOrStream) {
  grpc::GenericStub stub(channel_);
  grpc::Slice slice(kGarbage);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  auto context = Context();
  grpc::Status unary;
  absl::Notification done;
  stub.UnaryCall(context.get(), "/apache.rocketmq.v2.MessagingService/SendMessage",
                 grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
                   unary = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(unary.error_message(),
              HasSubstr("/apache.rocketmq.v2.MessagingService/SendMessage does not parse"));

  grpc::Status telemetry = GarbageOnStream("/apache.rocketmq.v2.MessagingService/Telemetry");
  EXPECT_EQ(telemetry.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(telemetry.error_message(),
              HasSubstr("Telemetry: message 1 of the stream (3 bytes) does not parse as "
                        "apache.rocketmq.v2.TelemetryCommand"));

  grpc::Status push = GarbageOnStream("/apogee.broker.v1.PushConsumer/Consume");
  EXPECT_EQ(push.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(push.error_message(), HasSubstr("Consume: message 1 of the stream (3 bytes) does "
                                              "not parse as apogee.broker.v1.ConsumeRequest"));
}

TEST_F(HostileInputTest, StoreLossIsLoggedOnceOnEachSide) {
  ASSERT_EQ(Send(Message("before")).code(), v2::OK);
  const std::string store_log = cluster_.store()->log_path();
  const std::string broker_log = cluster_.broker()->log_path();

  // The socket file goes away: the store says so once; the broker's open
  // connection still works.
  ASSERT_EQ(::unlink((cluster_.dir() + "/store.sock").c_str()), 0);
  EXPECT_TRUE(PollUntil([&] { return CountLines(store_log, "event=listen_socket_lost") == 1; },
                        absl::Seconds(10)))
      << cluster_.store()->LogTail();
  EXPECT_EQ(Send(Message("socket-gone")).code(), v2::OK);

  // The store goes away: many failed calls, one broker line.
  ASSERT_TRUE(cluster_.store()->Stop(SIGKILL).ok());
  for (int i = 0; i < 5; ++i) EXPECT_NE(Send(Message(absl::StrCat("down-", i))).code(), v2::OK);
  EXPECT_EQ(CountLines(broker_log, "event=store_unavailable"), 1) << cluster_.broker()->LogTail();
  EXPECT_THAT(cluster_.broker()->LogTail(), HasSubstr("reason=\""));

  // Back: one line when the first call succeeds again.
  ASSERT_TRUE(cluster_.RestartStore().ok());
  EXPECT_TRUE(PollUntil([&] { return Send(Message("after")).code() == v2::OK; }, absl::Seconds(20),
                        absl::Milliseconds(100)));
  EXPECT_EQ(CountLines(broker_log, "event=store_available"), 1) << cluster_.broker()->LogTail();
  EXPECT_EQ(CountLines(broker_log, "event=store_unavailable"), 1);
  EXPECT_EQ(CountLines(store_log, "event=listen_socket_lost"), 1);
}

}  // namespace
}  // namespace apogee
