// A generated service served entirely from a GrpcServer's completion
// queue: unary methods (async_unary.h), server streams (server_stream.h) and
// the subclass's own bidi streams (bidi_stream.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "grpcpp/completion_queue.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "services/common/server/async_unary.h"
#include "services/common/server/completion_queues.h"
#include "services/common/server/parsing_reactor.h"
#include "services/common/server/server_stream.h"

namespace apogee {

// A unary call's context and its answer (AsyncUnaryMethod's finish), for
// handlers that are member functions.
struct UnaryCall {
  grpc::ServerContext* context;
  std::function<void(const grpc::Status&)> finish;
};

// A generated service (`Generated`: the class holding its Stub and Service)
// whose methods are all served from the server's completion queue, each
// named in the subclass's constructor (ServeUnary, ServeServerStream; a
// method the subclass serves itself, such as a bidi stream, it marks raw or
// MarkAsync and posts its calls in AttachStreams). Name every method: one left to gRPC's sync API
// would make the server start sync-API threads, and one on the callback API gRPC's callback
// threads, which poll beside the queue's poller and turn each event into thread hand-offs
// (docs/benchmarks.md).
template <typename Generated>
class QueueService : public Generated::Service, public CompletionQueueUser {
 public:
  void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) final {
    for (grpc::ServerCompletionQueue* queue : queues) {
      for (auto& served : methods_) served.method->ServeOn(queue, served.waiting);
    }
    AttachStreams(queues.front());
  }
  void Detach() final {
    DetachStreams();
    for (auto& served : methods_) served.method->AwaitNoCalls();
  }

 protected:
  // Serves the method `name` of the service with `handler`, a member
  // function of `self` (the subclass), called on the poller thread.
  // `waiting`: calls kept posted, so that as many arriving together are
  // taken without waiting for a re-post (a hot method wants more).
  template <typename Self, typename Request, typename Response>
  void ServeUnary(const char* name, Self* self,
                  void (Self::*handler)(UnaryCall, const Request*, Response*), int waiting = 2) {
    const int index = MarkRaw(name);
    Serve(waiting,
          std::make_unique<AsyncUnaryMethod<Request, Response>>(
              PathOf(name),
              [this, index](grpc::ServerContext* context, grpc::ByteBuffer* request,
                            grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* writer,
                            grpc::ServerCompletionQueue* queue, void* tag) {
                this->RequestAsyncUnary(index, context, request, writer, queue, queue, tag);
              },
              [self, handler](grpc::ServerContext* context, const Request* request,
                              Response* response, std::function<void(const grpc::Status&)> finish) {
                (self->*handler)(UnaryCall{context, std::move(finish)}, request, response);
              }));
  }

  // Serves the server-streaming method `name` with `handler`, called on the
  // poller thread; it writes to `out` and closes it.
  template <typename Self, typename Request, typename Response>
  void ServeServerStream(const char* name, Self* self,
                         void (Self::*handler)(grpc::ServerContext*, const Request*,
                                               StreamOut<Response>*)) {
    const int index = MarkRaw(name);
    Serve(2, std::make_unique<AsyncServerStreamMethod<Request, Response>>(
                 PathOf(name),
                 [this, index](grpc::ServerContext* context, grpc::ByteBuffer* request,
                               grpc::ServerAsyncWriter<grpc::ByteBuffer>* writer,
                               grpc::ServerCompletionQueue* queue, void* tag) {
                   this->RequestAsyncServerStreaming(index, context, request, writer, queue, queue,
                                                     tag);
                 },
                 [self, handler](grpc::ServerContext* context, const Request* request,
                                 StreamOut<Response>* out) {
                   (self->*handler)(context, request, out);
                 }));
  }

  // Marks the method `name` async, for the subclass's own typed calls
  // (RequestAsyncBidiStreaming and the like), and returns its index.
  int MarkAsync(const char* name) {
    const int index = IndexOf(name);
    this->MarkMethodAsync(index);
    return index;
  }

  // The subclass's own calls (bidi streams): posted once the server runs,
  // and gone before DetachStreams returns.
  virtual void AttachStreams(grpc::ServerCompletionQueue* queue) {}
  virtual void DetachStreams() {}

 private:
  struct Served {
    std::unique_ptr<AsyncMethod> method;
    int waiting;
  };
  void Serve(int waiting, std::unique_ptr<AsyncMethod> method) {
    methods_.push_back(Served{std::move(method), waiting});
  }
  // Marks the method `name` raw (served from the queue) and returns its index.
  int MarkRaw(const char* name) {
    const int index = IndexOf(name);
    this->MarkMethodRaw(index);
    return index;
  }
  static int IndexOf(const char* name) {
    return MethodIndex(std::string(Generated::service_full_name()) + "." + name);
  }
  // "/package.Service/Method", for errors.
  static std::string PathOf(const char* name) {
    return "/" + std::string(Generated::service_full_name()) + "/" + name;
  }

  std::vector<Served> methods_;
};

}  // namespace apogee
