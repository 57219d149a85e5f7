// Completion-queue (async API) serving for the hottest unary methods
// (completion_queues.h says why).
//
// A service opts in by being a CompletionQueueUser and marking the method
// raw async in its base (gRPC's WithRawMethod_X mixin: the request arrives
// as bytes, so one that does not parse gets INVALID_ARGUMENT naming the
// method, as with the callback methods, not gRPC's INTERNAL); GrpcServer::Start
// adds the completion queues and calls Attach once the server runs, so tests
// that start the service on a GrpcServer need nothing else.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "grpcpp/completion_queue.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_unary_call.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"
#include "services/common/server/completion_queues.h"
#include "services/common/server/message_pool.h"
#include "services/common/server/unparsed_request.h"

namespace apogee {

// A generated service with each method's serving style chosen by a mixin
// (gRPC's WithCallbackMethod_X, WithAsyncMethod_X, WithRawMethod_X). The
// first mixin is outermost; put the async and raw ones last, so they are
// marked before any callback one (gRPC keeps a callback handler on a method
// marked async after it).
template <typename Base, template <typename> class... Mixins>
struct ServiceWithMethodsOf {
  using type = Base;
};
template <typename Base, template <typename> class First, template <typename> class... Rest>
struct ServiceWithMethodsOf<Base, First, Rest...> {
  using type = First<typename ServiceWithMethodsOf<Base, Rest...>::type>;
};
template <typename Base, template <typename> class... Mixins>
using ServiceWithMethods = typename ServiceWithMethodsOf<Base, Mixins...>::type;

// What a server keeps of each method it serves from completion queues.
class AsyncMethod {
 public:
  virtual ~AsyncMethod() = default;
  // Keeps `waiting` requests posted on `queue`.
  virtual void ServeOn(grpc::ServerCompletionQueue* queue, int waiting) = 0;
  // Returns once every call object is gone.
  virtual void AwaitNoCalls() = 0;
};

// One unary method served from completion queues: each call object waits for
// a request, replaces itself with a new waiting one, parses it, runs
// `handle` on the poller thread, and answers once `finish` is called (exactly
// once, from any thread). `context`, `request` and `response` live until
// then; the request and response messages then go back to the method's
// MessagePool for later calls (up to 1 MiB each, 8 MiB in all).
template <typename Request, typename Response>
class AsyncUnaryMethod final : public AsyncMethod {
 public:
  using Finish = std::function<void(const grpc::Status&)>;
  using Handle = std::function<void(grpc::ServerContext* context, const Request* request,
                                    Response* response, Finish finish)>;
  // The generated raw RequestX of the method (new-call and notification
  // queue are the same queue).
  using RequestCall = std::function<void(grpc::ServerContext*, grpc::ByteBuffer*,
                                         grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>*,
                                         grpc::ServerCompletionQueue*, void* tag)>;

  // `method`: the full name ("/package.Service/Method"), for errors.
  AsyncUnaryMethod(std::string method, RequestCall request, Handle handle)
      : method_(std::move(method)), request_(std::move(request)), handle_(std::move(handle)) {}

  // Keeps `waiting` requests posted on `queue` (calls arriving together are
  // taken without waiting for a re-post).
  void ServeOn(grpc::ServerCompletionQueue* queue, int waiting = 8) override {
    for (int i = 0; i < waiting; ++i) new Call(this, queue);
  }

  // Returns once every call object is gone: those waiting for a request end
  // when the server shuts down, the others once answered.
  void AwaitNoCalls() override { calls_.AwaitNone(); }

 private:
  class Call final : public CompletionTag {
   public:
    Call(AsyncUnaryMethod* method, grpc::ServerCompletionQueue* queue)
        : method_(method), queue_(queue), writer_(&context_) {
      method_->calls_.Add();
      method_->request_(&context_, &raw_, &writer_, queue_, this);
    }
    ~Call() {
      method_->requests_.Give(std::move(request_), request_bytes_);
      method_->responses_.Give(std::move(response_), response_bytes_);
      method_->calls_.Remove();
    }

    void Proceed(bool ok) override {
      // The answer was sent (or the call died), or no call came because the
      // server is shutting down.
      if (answering_ || !ok) {
        delete this;
        return;
      }
      new Call(method_, queue_);
      answering_ = true;
      request_bytes_ = static_cast<int64_t>(raw_.Length());
      request_ = method_->requests_.Take();
      response_ = method_->responses_.Take();
      if (!grpc::SerializationTraits<Request>::Deserialize(&raw_, request_.get()).ok()) {
        writer_.FinishWithError(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                             UnparsedRequestMessage(method_->method_)),
                                this);
        return;
      }
      method_->handle_(
          &context_, request_.get(), response_.get(), [this](const grpc::Status& status) {
            if (!status.ok()) {
              // Whatever the handler wrote is kept too: count it.
              response_bytes_ = static_cast<int64_t>(response_->ByteSizeLong());
              writer_.FinishWithError(status, this);
              return;
            }
            grpc::ByteBuffer out;
            bool own = false;
            (void)grpc::SerializationTraits<Response>::Serialize(*response_, &out, &own);
            response_bytes_ = static_cast<int64_t>(out.Length());
            writer_.Finish(out, status, this);
          });
    }

   private:
    AsyncUnaryMethod* const method_;
    grpc::ServerCompletionQueue* const queue_;
    grpc::ServerContext context_;
    grpc::ByteBuffer raw_;
    std::unique_ptr<Request> request_;  // from the method's pools once a call came
    std::unique_ptr<Response> response_;
    int64_t request_bytes_ = 0;
    int64_t response_bytes_ = 0;
    grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> writer_;
    bool answering_ = false;
  };

  static constexpr int64_t kPooledBytesEach = 1 << 20;
  static constexpr int64_t kPooledBytes = 8 << 20;

  const std::string method_;
  const RequestCall request_;
  const Handle handle_;
  MessagePool<Request> requests_{kPooledBytesEach, kPooledBytes};
  MessagePool<Response> responses_{kPooledBytesEach, kPooledBytes};
  LiveCalls calls_;
};

}  // namespace apogee
