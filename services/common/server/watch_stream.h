// A server-streaming call served from a completion queue whose server
// writes whenever it has news (a watch: grpc.health.v1 Watch, the store's
// WatchQueues). One write is in flight at a time; news that comes meanwhile
// is merged by the subclass into the next message. The call lasts until the
// client goes, the subclass finishes it, or the server shuts down.
#pragma once

#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_stream.h"
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
    context_.AsyncNotifyWhenDone(&done_op_);
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
    if (writing_ || finished_ || done_ || !TakeLocked(&out_)) return;
    writing_ = true;
    writer_.Write(out_, &write_op_);
  }
  // Ends the call with `status`, after the write in flight if there is one.
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    if (writing_) {
      if (!finish_after_write_.has_value()) finish_after_write_ = status;
      return;
    }
    finished_ = true;
    finish_pending_ = true;
    writer_.Finish(status, &finished_op_);
  }

  const Request& request() const { return request_; }
  const grpc::ServerContext& context() const { return context_; }
  grpc::ServerCompletionQueue* queue() const { return queue_; }

  absl::Mutex mu_;

 private:
  void OnRequested(bool ok) {
    if (!ok) {  // the server is shutting down: no call came (nor will done_op_)
      delete this;
      return;
    }
    OnStart();
  }

  void OnWrite(bool ok) {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (finish_after_write_.has_value()) {
        FinishLocked(*finish_after_write_);
      } else if (!ok) {
        FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      } else {
        WriteLocked();
      }
    }
    MaybeEnd();
  }

  void OnFinished(bool /*ok*/) {
    {
      absl::MutexLock lock(&mu_);
      finish_pending_ = false;
    }
    MaybeEnd();
  }

  // The client went, or the server is shutting down (or the call ended).
  void OnDone(bool /*ok*/) {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      FinishLocked(grpc::Status::CANCELLED);
    }
    MaybeEnd();
  }

  // Deletes the call, for the one reaction that finds it over.
  void MaybeEnd() {
    {
      absl::MutexLock lock(&mu_);
      if (!done_ || writing_ || finish_pending_ || ending_) return;
      ending_ = true;
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
  MemberTag<WatchStream> finished_op_{this, &WatchStream::OnFinished};
  MemberTag<WatchStream> done_op_{this, &WatchStream::OnDone};
  Response out_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> finish_after_write_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace apogee
