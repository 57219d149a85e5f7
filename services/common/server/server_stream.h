// Server-streaming methods served from a completion queue (the hot-path
// reasons are in completion_queues.h): each call object waits for a
// request, replaces itself with a new waiting one, parses the request (one
// that does not parse gets INVALID_ARGUMENT naming the method) and hands it
// to the handler with a StreamOut, to which the handler writes the items
// from any thread and which it closes exactly once.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_stream.h"
#include "grpcpp/support/byte_buffer.h"
#include "services/common/server/async_unary.h"
#include "services/common/server/call_end.h"
#include "services/common/server/completion_queues.h"
#include "services/common/server/unparsed_request.h"

namespace apogee {

// Where a server-streaming handler writes. Thread-safe. Items are written
// in order; after Close (call it exactly once) the call finishes with OK
// once everything queued is out. Items written after the client went away
// are dropped.
template <typename Response>
class StreamOut {
 public:
  virtual void Write(Response item) = 0;
  virtual void Close() = 0;

 protected:
  ~StreamOut() = default;
};

template <typename Request, typename Response>
class AsyncServerStreamMethod final : public AsyncMethod {
 public:
  // `request`, `context` and `out` live until `out` is closed and written.
  using Handle = std::function<void(grpc::ServerContext* context, const Request* request,
                                    StreamOut<Response>* out)>;
  // The generated raw RequestX of the method (new-call and notification
  // queue are the same queue).
  using RequestCall = std::function<void(grpc::ServerContext*, grpc::ByteBuffer*,
                                         grpc::ServerAsyncWriter<grpc::ByteBuffer>*,
                                         grpc::ServerCompletionQueue*, void* tag)>;

  // `method`: the full name ("/package.Service/Method"), for errors.
  AsyncServerStreamMethod(std::string method, RequestCall request, Handle handle)
      : method_(std::move(method)), request_(std::move(request)), handle_(std::move(handle)) {}

  void ServeOn(grpc::ServerCompletionQueue* queue, int waiting = 2) override {
    for (int i = 0; i < waiting; ++i) new Call(this, queue);
  }
  void AwaitNoCalls() override { calls_.AwaitNone(); }

 private:
  class Call final : public StreamOut<Response> {
   public:
    Call(AsyncServerStreamMethod* method, grpc::ServerCompletionQueue* queue)
        : method_(method), queue_(queue), writer_(&context_) {
      method_->calls_.Add();
      // Before the request: gRPC delivers it only for a call that started.
      context_.AsyncNotifyWhenDone(end_.done_tag());
      method_->request_(&context_, &raw_, &writer_, queue_, &requested_op_);
    }

    void Write(Response item) override {
      absl::MutexLock lock(&mu_);
      if (end_.finished()) return;
      pending_.push_back(std::move(item));
      MaybeWriteLocked();
    }

    void Close() override {
      {
        absl::MutexLock lock(&mu_);
        closed_ = true;
        MaybeWriteLocked();
      }
      MaybeEnd();
    }

   private:
    using Op = MemberTag<Call>;
    ~Call() { method_->calls_.Remove(); }

    void OnRequested(bool ok) {
      if (!ok) {  // the server is shutting down: no call came (nor will the done tag)
        delete this;
        return;
      }
      new Call(method_, queue_);
      if (!grpc::SerializationTraits<Request>::Deserialize(&raw_, &request_).ok()) {
        {
          absl::MutexLock lock(&mu_);
          closed_ = true;
          end_.Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   UnparsedRequestMessage(method_->method_)));
        }
        return;
      }
      method_->handle_(&context_, &request_, this);
    }

    void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (end_.writing() || end_.finished()) return;
      if (!pending_.empty()) {
        buffer_.Clear();
        bool own = false;
        (void)grpc::SerializationTraits<Response>::Serialize(pending_.front(), &buffer_, &own);
        pending_.pop_front();
        end_.WriteStarted();
        // More queued behind this one: let gRPC hold it for the next instead
        // of sending each alone (v2 ReceiveMessage writes one message per
        // item). The last queued goes unhinted, which flushes them all.
        grpc::WriteOptions options;
        if (!pending_.empty()) options.set_buffer_hint();
        writer_.Write(buffer_, options, &write_op_);
      } else if (closed_) {
        end_.Finish(grpc::Status::OK);
      }
    }

    void OnWrite(bool ok) {
      {
        absl::MutexLock lock(&mu_);
        end_.WriteDone();
        if (!ok) {  // the client went away: drop the rest, end the call
          pending_.clear();
          end_.Finish(grpc::Status::OK);
        } else {
          MaybeWriteLocked();
        }
      }
      MaybeEnd();
    }

    // Deletes the call for the one reaction that finds it over: the
    // handler closed it, gRPC holds nothing of it.
    void MaybeEnd() {
      {
        absl::MutexLock lock(&mu_);
        if (!end_.TakeEnd(/*busy=*/!closed_)) return;
      }
      delete this;
    }

    AsyncServerStreamMethod* const method_;
    grpc::ServerCompletionQueue* const queue_;
    grpc::ServerContext context_;
    grpc::ByteBuffer raw_;
    Request request_;
    grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_;
    Op requested_op_{this, &Call::OnRequested};
    Op write_op_{this, &Call::OnWrite};

    absl::Mutex mu_;
    std::deque<Response> pending_ ABSL_GUARDED_BY(mu_);
    grpc::ByteBuffer buffer_ ABSL_GUARDED_BY(mu_);  // the write in flight
    CallEnd<grpc::ServerAsyncWriter<grpc::ByteBuffer>, Call> end_ ABSL_GUARDED_BY(mu_){
        &writer_, &mu_, this, &Call::MaybeEnd};
    bool closed_ ABSL_GUARDED_BY(mu_) = false;  // by the handler
  };

  const std::string method_;
  const RequestCall request_;
  const Handle handle_;
  LiveCalls calls_;
};

}  // namespace apogee
