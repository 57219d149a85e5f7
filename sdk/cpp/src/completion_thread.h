// A gRPC completion queue polled by one thread of the client's own.
//
// gRPC 1.51's callback API hands every completion from the thread that
// polled it to one of its callback threads; on a completion queue the
// thread that polls runs the completion itself. The producer's async sends
// use one: 8–16 % less client CPU per message than callback calls, at one
// send in flight and at 64 or 1000 (docs/benchmarks.md, "Completion queues
// end to end").
#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "grpcpp/completion_queue.h"
#include "grpcpp/support/async_unary_call.h"
#include "grpcpp/support/status.h"

namespace apogee::sdk {

class CompletionThread {
 public:
  CompletionThread();
  // Waits for the calls still in flight (each ends by its deadline at the
  // latest) and joins the thread.
  ~CompletionThread();
  CompletionThread(const CompletionThread&) = delete;
  CompletionThread& operator=(const CompletionThread&) = delete;

  grpc::CompletionQueue* queue() { return &queue_; }

  // Starts the unary call `reader` (made by a stub's PrepareAsyncX on
  // queue()) and runs `done` with its status on this thread once
  // `*response` holds the answer. `response` must live until then.
  template <typename Response>
  void Start(std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader, Response* response,
             std::function<void(const grpc::Status&)> done) {
    auto* call = new Call<Response>(std::move(reader), std::move(done));
    call->reader->StartCall();
    call->reader->Finish(response, &call->status, call);
  }

 private:
  struct Tag {
    virtual ~Tag() = default;
    virtual void Run() = 0;
  };
  template <typename Response>
  struct Call final : Tag {
    Call(std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> r,
         std::function<void(const grpc::Status&)> d)
        : reader(std::move(r)), done(std::move(d)) {}
    void Run() override { done(status); }
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
    std::function<void(const grpc::Status&)> done;
    grpc::Status status;
  };

  grpc::CompletionQueue queue_;
  std::thread thread_;
};

}  // namespace apogee::sdk
