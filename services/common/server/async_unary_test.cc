#include "services/common/server/async_unary.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "services/common/testing/test_server.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;

// QueryRoute served from completion queues: the answer names the topic and
// whether it was given on the poller thread or later from another thread
// (topics starting with "later"), or held until the test releases it
// ("hold").
class Service final
    : public v2::MessagingService::WithRawMethod_QueryRoute<v2::MessagingService::Service>,
      public CompletionQueueUser {
 public:
  using Finish = std::function<void(const grpc::Status&)>;

  ~Service() override {
    for (std::thread& t : later_) t.join();
  }

  void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) override {
    for (grpc::ServerCompletionQueue* queue : queues) method_.ServeOn(queue, 2);
  }
  void Detach() override { method_.AwaitNoCalls(); }

  // Answers the held call; false when none is held yet.
  bool ReleaseHeld() {
    absl::MutexLock lock(&mu_);
    if (!held_) return false;
    held_(grpc::Status::OK);
    held_ = nullptr;
    ++released_;
    return true;
  }
  int released() {
    absl::MutexLock lock(&mu_);
    return released_;
  }
  bool holding() {
    absl::MutexLock lock(&mu_);
    return held_ != nullptr;
  }

 private:
  void Handle(const v2::QueryRouteRequest* request, v2::QueryRouteResponse* response,
              Finish finish) {
    const std::string& topic = request->topic().name();
    if (topic == "hold") {
      absl::MutexLock lock(&mu_);
      held_ = std::move(finish);
      return;
    }
    if (topic.rfind("later", 0) == 0) {
      absl::MutexLock lock(&mu_);
      later_.emplace_back([response, finish = std::move(finish), topic] {
        response->mutable_status()->set_message(topic + " from another thread");
        finish(grpc::Status::OK);
      });
      return;
    }
    response->mutable_status()->set_message(topic + " on the poller");
    finish(grpc::Status::OK);
  }

  AsyncUnaryMethod<v2::QueryRouteRequest, v2::QueryRouteResponse> method_{
      "/apache.rocketmq.v2.MessagingService/QueryRoute",
      [this](grpc::ServerContext* context, grpc::ByteBuffer* request,
             grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* writer,
             grpc::ServerCompletionQueue* queue,
             void* tag) { RequestQueryRoute(context, request, writer, queue, queue, tag); },
      [this](grpc::ServerContext*, const v2::QueryRouteRequest* request,
             v2::QueryRouteResponse* response,
             Finish finish) { Handle(request, response, std::move(finish)); }};

  absl::Mutex mu_;
  std::vector<std::thread> later_ ABSL_GUARDED_BY(mu_);
  Finish held_ ABSL_GUARDED_BY(mu_);
  int released_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Answer {
  grpc::Status status;
  v2::QueryRouteResponse response;
  absl::Notification done;
  grpc::ClientContext context;
};

// Starts QueryRoute for `topic`; `answer` is filled when it completes.
void StartCall(v2::MessagingService::Stub& stub, const std::string& topic, Answer* answer) {
  v2::QueryRouteRequest request;
  request.mutable_topic()->set_name(topic);
  answer->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  stub.async()->QueryRoute(&answer->context, &request, &answer->response, [answer](grpc::Status s) {
    answer->status = std::move(s);
    answer->done.Notify();
  });
}

TEST(AsyncUnaryMethodTest, AnswersConcurrentCallsOnThePollerAndFromOtherThreads) {
  Service service;
  auto server = testing::StartTestServer({&service});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v2::MessagingService::NewStub(server->channel);

  // More calls at once than requests are posted (2 per queue): the rest are
  // taken as each call re-posts.
  constexpr int kCalls = 64;
  std::vector<std::unique_ptr<Answer>> answers;
  for (int i = 0; i < kCalls; ++i) {
    answers.push_back(std::make_unique<Answer>());
    StartCall(*stub, (i % 2 == 0 ? "now-" : "later-") + std::to_string(i), answers.back().get());
  }
  for (int i = 0; i < kCalls; ++i) {
    Answer& a = *answers[static_cast<size_t>(i)];
    ASSERT_TRUE(a.done.WaitForNotificationWithTimeout(absl::Seconds(30))) << i;
    ASSERT_TRUE(a.status.ok()) << i << ": " << a.status.error_message();
    EXPECT_EQ(a.response.status().message(),
              i % 2 == 0 ? "now-" + std::to_string(i) + " on the poller"
                         : "later-" + std::to_string(i) + " from another thread");
  }
}

TEST(AsyncUnaryMethodTest, GarbageRequestIsInvalidArgumentNamingTheMethod) {
  Service service;
  auto server = testing::StartTestServer({&service});
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::Status status =
      testing::CallRaw(server->channel.get(), "/apache.rocketmq.v2.MessagingService/QueryRoute",
                       std::string("\x0a\x7f\x01", 3));  // truncated field 1
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "request to /apache.rocketmq.v2.MessagingService/QueryRoute does not parse as the "
            "method's request message (malformed protobuf)");
}

TEST(AsyncUnaryMethodTest, ShutdownWaitsForACallTheHandlerStillHolds) {
  Service service;
  auto server = testing::StartTestServer({&service});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v2::MessagingService::NewStub(server->channel);
  Answer held;
  StartCall(*stub, "hold", &held);
  ASSERT_TRUE(testing::PollUntil([&] { return service.holding(); }, absl::Seconds(10)));

  // Shutdown with no grace cancels the call, but the handler still owns it:
  // Shutdown must return only after the handler answered, or the answer
  // would go to a completion queue already shut down.
  std::atomic<int> released_when_shut{-1};
  std::thread shutter([&] {
    server->server->Shutdown(absl::ZeroDuration());
    released_when_shut = service.released();
  });
  ASSERT_TRUE(held.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_FALSE(held.status.ok());  // cancelled, or the connection went first
  EXPECT_TRUE(service.ReleaseHeld());
  shutter.join();
  EXPECT_EQ(released_when_shut.load(), 1);
}

}  // namespace
}  // namespace apogee
