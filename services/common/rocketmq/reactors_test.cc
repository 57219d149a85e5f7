#include "services/common/rocketmq/reactors.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "services/common/concurrency/executor.h"
#include "services/common/testing/test_server.h"

namespace apogee::rocketmq {
namespace {

// A v2 service that serves only Telemetry, the way the broker and the
// NameServer register it.
class Service final : public v2::MessagingService::CallbackService {
 public:
  Service() {
    MarkMethodRawCallback(TelemetryMethodIndex(),
                          TelemetryHandler([](grpc::CallbackServerContext* /*context*/) {
                            auto* stream = new TelemetryReactor();
                            stream->Open(
                                std::string("client-1"),
                                [](const std::string&, const v2::Settings& settings) {
                                  return absl::StatusOr<v2::Settings>(settings);
                                },
                                nullptr, nullptr);
                            stream->Begin();
                            return stream;
                          }));
  }
};

// Serves ReceiveMessage the way the broker does: the handler returns a
// StreamWriter at once and another thread writes two items and closes it.
class ReceiveService final : public v2::MessagingService::CallbackService {
 public:
  grpc::ServerWriteReactor<v2::ReceiveMessageResponse>* ReceiveMessage(
      grpc::CallbackServerContext* /*context*/,
      const v2::ReceiveMessageRequest* /*request*/) override {
    auto* writer = new StreamWriter<v2::ReceiveMessageResponse>();
    executor_.Submit([writer] {
      v2::ReceiveMessageResponse item;
      item.mutable_status()->set_code(v2::OK);
      writer->Write(item);
      writer->Write(item);
      writer->Close();  // gRPC may run OnDone on its own thread meanwhile
    });
    return writer;
  }

 private:
  Executor executor_{2};
};

class TelemetryReactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = testing::StartTestServer({&service_});
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return context;
  }

  Service service_;
  testing::TestServer server_;
};

TEST_F(TelemetryReactorTest, AnswersSettingsAndEndsOkOnHalfClose) {
  auto stub = v2::MessagingService::NewStub(server_.channel);
  auto context = Context();
  auto stream = stub->Telemetry(context.get());
  v2::TelemetryCommand settings;
  settings.mutable_settings()->set_client_type(v2::SIMPLE_CONSUMER);
  // The settings and the half-close in one go: the answer still comes.
  ASSERT_TRUE(stream->Write(settings, grpc::WriteOptions().set_last_message()));
  v2::TelemetryCommand answer;
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.settings().client_type(), v2::SIMPLE_CONSUMER);
  EXPECT_EQ(answer.status().code(), v2::OK);
  EXPECT_FALSE(stream->Read(&answer));
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TelemetryReactorTest, GarbageEndsTheStreamWithInvalidArgument) {
  // Raw bytes on the Telemetry method: one good command, then garbage.
  grpc::GenericStub stub(server_.channel);
  grpc::CompletionQueue cq;
  auto context = Context();
  auto call =
      stub.PrepareCall(context.get(), "/apache.rocketmq.v2.MessagingService/Telemetry", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int want) {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(tag, reinterpret_cast<void*>(want));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step(1));
  v2::TelemetryCommand hello;
  hello.mutable_settings()->set_client_type(v2::PRODUCER);
  const std::string good = hello.SerializeAsString();
  grpc::Slice good_slice(good);
  grpc::ByteBuffer good_buffer(&good_slice, 1);
  call->Write(good_buffer, reinterpret_cast<void*>(2));
  ASSERT_TRUE(step(2));
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(3));
  ASSERT_TRUE(step(3));  // the settings answer

  grpc::Slice bad_slice(std::string("\x0a\x7f\x01", 3));  // truncated field 1
  grpc::ByteBuffer bad_buffer(&bad_slice, 1);
  call->Write(bad_buffer, reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(step(5));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "Telemetry: message 2 of the stream (3 bytes) does not parse as "
            "apache.rocketmq.v2.TelemetryCommand");
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// Close() racing OnDone (the stream finishing, or the client cancelling,
// on a gRPC thread) must never touch a freed writer: this crashed the broker
// ("Mutex unlocked when destroyed") under load, and ASan flags it here.
TEST(StreamWriterTest, WritersClosedFromAnotherThreadWhileClientsGoAway) {
  ReceiveService service;
  auto started = testing::StartTestServer({&service});
  ASSERT_TRUE(started.ok()) << started.status();
  auto stub = v2::MessagingService::NewStub(started->channel);
  int complete = 0;
  for (int i = 0; i < 400; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto reader = stub->ReceiveMessage(&context, v2::ReceiveMessageRequest());
    v2::ReceiveMessageResponse item;
    if (i % 2 == 1) context.TryCancel();  // every other client leaves at once
    int items = 0;
    while (reader->Read(&item)) ++items;
    const grpc::Status status = reader->Finish();
    if (status.ok()) {
      EXPECT_EQ(items, 2);
      ++complete;
    }
  }
  EXPECT_GE(complete, 200);  // every client that stayed got the whole stream
}

}  // namespace
}  // namespace apogee::rocketmq
