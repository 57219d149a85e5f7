// A server-streaming call served from a completion queue whose server
// writes whenever it has news (a watch: grpc.health.v1 Watch, the store's
// WatchQueues). One write is in flight at a time; news that comes meanwhile
// is merged by the subclass into the next message. The call lasts until the
// client goes, the subclass finishes it, or the server shuts down.
#pragma once

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_stream.h"
#include "services/common/server/call_end.h"
#include "services/common/server/completion_queues.h"

namespace apogee {

// Create with `new`, then Start(): the call waits for a client and deletes
// itself once it is over. Reactions run on the queue's poller; news may
// come from any thread.
template <typename Request, typename Response>
class WatchStream {
 public:
  // The service's RequestXxx for the method, with the queue as both the
  // call's and the notification queue.
  using RequestCall =
      std::function<void(grpc::ServerContext*, Request*, grpc::ServerAsyncWriter<Response>*,
                         grpc::ServerCompletionQueue*, void* tag)>;

  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  void Start() {
    context_.AsyncNotifyWhenDone(end_.done_tag());
    request_call_(&context_, &request_, &writer_, queue_, &requested_op_);
  }

 protected:
  WatchStream(grpc::ServerCompletionQueue* queue, RequestCall request_call, LiveCalls* live)
      : queue_(queue), request_call_(std::move(request_call)), live_(live), writer_(&context_) {
    live_->Add();
  }
  virtual ~WatchStream() { live_->Remove(); }

  // A client called (the request is read): start the next waiting call and
  // the watch. On the poller, not under mu_.
  virtual void OnStart() = 0;
  // Moves the news into `out`; false when there is none.
  virtual bool TakeLocked(Response* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // Just before the object is deleted (the client is gone, nothing of the
  // call is pending with gRPC); not under mu_.
  virtual void OnEnd() {}

  // Writes the news unless a write is in flight (its completion writes
  // what came meanwhile) or the call is over.
  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (end_.writing() || end_.finished() || end_.done() || !TakeLocked(&out_)) return;
    end_.WriteStarted();
    writer_.Write(out_, &write_op_);
  }
  // Ends the call with `status`, after the write in flight if there is one.
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    end_.Finish(status);
  }

  const Request& request() const { return request_; }
  const grpc::ServerContext& context() const { return context_; }
  grpc::ServerCompletionQueue* queue() const { return queue_; }

  absl::Mutex mu_;

 private:
  void OnRequested(bool ok) {
    if (!ok) {  // the server is shutting down: no call came (nor will the done tag)
      delete this;
      return;
    }
    OnStart();
  }

  void OnWrite(bool ok) {
    {
      absl::MutexLock lock(&mu_);
      end_.WriteDone();  // finishes now if a Finish waited for the write
      if (!ok) {
        end_.Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      } else {
        WriteLocked();
      }
    }
    MaybeEnd();
  }

  // Deletes the call, for the one reaction that finds it over.
  void MaybeEnd() {
    {
      absl::MutexLock lock(&mu_);
      if (!end_.TakeEnd()) return;
    }
    OnEnd();
    delete this;
  }

  grpc::ServerCompletionQueue* const queue_;
  const RequestCall request_call_;
  LiveCalls* const live_;
  grpc::ServerContext context_;
  Request request_;
  grpc::ServerAsyncWriter<Response> writer_;
  MemberTag<WatchStream> requested_op_{this, &WatchStream::OnRequested};
  MemberTag<WatchStream> write_op_{this, &WatchStream::OnWrite};
  Response out_ ABSL_GUARDED_BY(mu_);
  CallEnd<grpc::ServerAsyncWriter<Response>, WatchStream> end_ ABSL_GUARDED_BY(mu_){
      &writer_, &mu_, this, &WatchStream::MaybeEnd};
};

}  // namespace apogee
