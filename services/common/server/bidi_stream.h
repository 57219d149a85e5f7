// A bidirectional streaming call served from a completion queue, with the
// shape of ParsingBidiReactor (parsing_reactor.h): requests arrive as raw
// bytes and are parsed here, so one that does not parse is told apart from
// the client's half-close; one read and one write in flight at a time. Its
// reactions run on the queue's poller instead of gRPC's callback threads,
// which cost two thread hand-offs per event (completion_queues.h).
#pragma once

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_stream.h"
#include "grpcpp/support/byte_buffer.h"
#include "services/common/server/call_end.h"
#include "services/common/server/completion_queues.h"

namespace apogee {

// Start() posts the call; a client's call then runs OnStart (which should
// post the next waiting call). ReadRequest, WriteResponse and Finish may be
// called from any thread; the On* reactions come on the poller, never
// under the stream's own lock. The subclass owns the object: OnDone comes
// once, last, after which nothing here touches it.
template <typename Request, typename Response>
class QueueBidiStream {
 public:
  using RawStream = grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;
  // The service's RequestXxx of the method marked raw (WithRawMethod_X),
  // with the queue as both the call's and the notification queue.
  using RequestCall = std::function<void(grpc::ServerContext*, RawStream*,
                                         grpc::ServerCompletionQueue*, void* tag)>;

  QueueBidiStream(const QueueBidiStream&) = delete;
  QueueBidiStream& operator=(const QueueBidiStream&) = delete;

  void Start() {
    // Before the request: gRPC delivers it only for a call that started.
    context_.AsyncNotifyWhenDone(end_.done_tag());
    request_call_(&context_, &stream_, queue_, &requested_op_);
  }

 protected:
  QueueBidiStream(grpc::ServerCompletionQueue* queue, RequestCall request_call, LiveCalls* live)
      : queue_(queue), request_call_(std::move(request_call)), live_(live), stream_(&context_) {
    live_->Add();
  }
  virtual ~QueueBidiStream() { live_->Remove(); }

  // A client called.
  virtual void OnStart() = 0;
  // A request is in request() (ok), or reads are over (!ok): the client
  // half-closed, cancelled or went away.
  virtual void OnRequest(bool ok) = 0;
  // The client sent bytes that are not a Request; `error` says which.
  virtual void OnUnparsed(std::string error) = 0;
  virtual void OnWriteDone(bool ok) = 0;
  // No client came (the server shut down), or the call is over and nothing
  // of it is pending with gRPC.
  virtual void OnDone() = 0;

  // Reads the next request into request(); nothing once finished.
  void ReadRequest() {
    absl::MutexLock lock(&mu_);
    if (end_.finished()) return;
    reading_ = true;
    stream_.Read(&read_buffer_, &read_op_);
  }

  // Writes `response` (serialized now, so it need not outlive the call).
  void WriteResponse(const Response& response) {
    absl::MutexLock lock(&mu_);
    if (end_.finished()) return;
    write_buffer_.Clear();
    bool own_buffer = false;
    (void)grpc::SerializationTraits<Response>::Serialize(response, &write_buffer_, &own_buffer);
    end_.WriteStarted();
    stream_.Write(write_buffer_, &write_op_);
  }

  // Ends the call with `status` (the first one wins), after the write in
  // flight if there is one.
  void Finish(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    end_.Finish(status);
  }

  Request& request() { return request_; }
  grpc::ServerContext& context() { return context_; }
  grpc::ServerCompletionQueue* queue() const { return queue_; }

 private:
  using Op = MemberTag<QueueBidiStream>;

  void OnRequested(bool ok) {
    if (!ok) {  // the server is shutting down: no call came (nor will the done tag)
      {
        absl::MutexLock lock(&mu_);
        end_.MarkEnded();
      }
      OnDone();
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      started_ = true;
    }
    OnStart();
    MaybeEnd();
  }

  void OnRead(bool ok) {
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
    }
    if (!ok) {
      OnRequest(false);
    } else {
      ++reads_;
      const size_t bytes = read_buffer_.Length();
      request_.Clear();
      if (grpc::SerializationTraits<Request>::Deserialize(&read_buffer_, &request_).ok()) {
        OnRequest(true);
      } else {
        OnUnparsed(absl::StrCat("message ", reads_, " of the stream (", bytes,
                                " bytes) does not parse as ", Request::descriptor()->full_name()));
      }
    }
    MaybeEnd();
  }

  void OnWrite(bool ok) {
    {
      absl::MutexLock lock(&mu_);
      end_.WriteDone();
    }
    OnWriteDone(ok);
    MaybeEnd();
  }

  void MaybeEnd() {
    {
      absl::MutexLock lock(&mu_);
      // (done implies finished once no write is in flight: CallEnd
      // finishes the call then, or the write's completion does.)
      if (!end_.TakeEnd(/*busy=*/!started_ || reading_)) return;
    }
    OnDone();
  }

  grpc::ServerCompletionQueue* const queue_;
  const RequestCall request_call_;
  LiveCalls* const live_;
  grpc::ServerContext context_;
  RawStream stream_;
  // Only the read path (one read at a time) touches these.
  grpc::ByteBuffer read_buffer_;
  Request request_;
  int64_t reads_ = 0;
  Op requested_op_{this, &QueueBidiStream::OnRequested};
  Op read_op_{this, &QueueBidiStream::OnRead};
  Op write_op_{this, &QueueBidiStream::OnWrite};

  absl::Mutex mu_;
  grpc::ByteBuffer write_buffer_ ABSL_GUARDED_BY(mu_);
  CallEnd<RawStream, QueueBidiStream> end_ ABSL_GUARDED_BY(mu_){&stream_, &mu_, this,
                                                                &QueueBidiStream::MaybeEnd};
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace apogee
