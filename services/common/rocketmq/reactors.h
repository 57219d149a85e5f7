// Small gRPC callback reactors shared by every apache.rocketmq.v2 server:
// unary answers with an in-band status, status-only streams, the Telemetry
// settings stream, and a writer for ReceiveMessage/PullMessage streams.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "services/common/server/parsing_reactor.h"
#include "services/common/server/queue_service.h"
#include "services/common/status/v2_status.h"

namespace apogee::rocketmq {

namespace v2 = ::apache::rocketmq::v2;

// Finishes a unary call with gRPC OK and `status` in the response (the
// proxy's convention: errors travel in-band).
template <typename Response>
grpc::ServerUnaryReactor* AnswerInBand(grpc::CallbackServerContext* context,
                                       const absl::Status& status, Response* response) {
  ToV2Status(status, response->mutable_status());
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

// The same for a unary call served from a completion queue.
template <typename Response>
void AnswerInBand(UnaryCall& call, const absl::Status& status, Response* response) {
  ToV2Status(status, response->mutable_status());
  call.finish(grpc::Status::OK);
}

// Writes a sequence of stream items, then finishes with gRPC OK. Items may be
// added from any thread until Close(), which must be called exactly once. The
// reactor deletes itself once both Close() returned and gRPC called OnDone():
// OnDone may run on another thread as soon as Finish() is called, so neither
// side alone may free it (a writer still inside Close() would unlock freed
// memory).
template <typename Response>
class StreamWriter final : public grpc::ServerWriteReactor<Response> {
 public:
  void Write(Response item) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;  // the client went away
    pending_.push_back(std::move(item));
    MaybeWrite();
  }
  // No more items: finish once everything queued is written.
  void Close() {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
      MaybeWrite();
      last = done_;
    }
    if (last) delete this;
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {  // the client went away: drop what is left
      pending_.clear();
      if (!finished_) {
        finished_ = true;
        this->Finish(grpc::Status::OK);
      }
      return;
    }
    pending_.pop_front();
    MaybeWrite();
  }
  void OnDone() override {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      last = closed_;
    }
    if (last) delete this;
  }

 private:
  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!pending_.empty()) {
      writing_ = true;
      this->StartWrite(&pending_.front());
    } else if (closed_) {
      finished_ = true;
      this->Finish(grpc::Status::OK);
    }
  }

  absl::Mutex mu_;
  std::deque<Response> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // gRPC called OnDone
};

// A stream that carries one status item and ends (for calls a server does
// not serve).
template <typename Response>
grpc::ServerWriteReactor<Response>* StatusOnlyStream(const absl::Status& status) {
  auto* writer = new StreamWriter<Response>();
  Response item;
  ToV2Status(status, item.mutable_status());
  writer->Write(std::move(item));
  writer->Close();
  return writer;
}

// What the broker pushes server-initiated Telemetry commands through.
class TelemetrySender {
 public:
  // Queues a server-initiated command; false once the stream is finishing.
  virtual bool Send(v2::TelemetryCommand command) = 0;

 protected:
  ~TelemetrySender() = default;
};

// One client's Telemetry stream. Every Settings the client sends is answered
// on the same stream with what `on_settings` returns (errors in-band: a
// stream error makes the Node client reconnect in a loop); other client
// commands (thread stack traces, verify results) go to `on_command`. The
// server may push commands at any time with Send(). Reads and writes run
// independently; the stream stays open until the client half-closes it and
// every queued write is out, then `on_close` runs. Bytes that are not a
// TelemetryCommand end the stream with INVALID_ARGUMENT naming the problem
// (as the proxy does), after the writes already queued. The method must be
// served raw: `Base` is ParsingBidiReactor (gRPC's callback API;
// RegisterTelemetry) or QueueBidiStream (a completion queue), which offer
// the same hooks. The object deletes itself once the call is over.
// Thread-safe: Send() may be called from any thread until on_close ran.
template <typename Base>
class TelemetryStream : public Base, public TelemetrySender {
 public:
  using OnSettings = std::function<absl::StatusOr<v2::Settings>(const std::string& client_id,
                                                                const v2::Settings&)>;
  using OnCommand = std::function<void(const std::string& client_id, const v2::TelemetryCommand&)>;

  template <typename... BaseArgs>
  explicit TelemetryStream(BaseArgs&&... base_args) : Base(std::forward<BaseArgs>(base_args)...) {}

  // Whose stream it is and what to do with its commands. Call once, before
  // Begin or Refuse.
  void Open(absl::StatusOr<std::string> client_id, OnSettings on_settings, OnCommand on_command,
            std::function<void(const std::string& client_id)> on_close) {
    client_id_ = std::move(client_id);
    on_settings_ = std::move(on_settings);
    on_command_ = std::move(on_command);
    on_close_ = std::move(on_close);
  }

  // Starts reading. Call once, after registering the stream wherever Send()
  // will come from (the stream may finish, and `on_close` run, right after).
  // (Not "Start": QueueBidiStream::Start posts the call.)
  void Begin() { this->ReadRequest(); }
  // Instead of Begin: ends the call at once with `status` (e.g. a stream
  // limit), reading nothing.
  void Refuse(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    reads_done_ = true;
    end_ =
        grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
    MaybeFinish();
  }

  bool Send(v2::TelemetryCommand command) override {
    absl::MutexLock lock(&mu_);
    if (finished_ || reads_done_) return false;
    writes_.push_back(std::move(command));
    MaybeWrite();
    return true;
  }

  void OnRequest(bool ok) override {
    if (!ok) {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      MaybeFinish();
      return;
    }
    const v2::TelemetryCommand& request = this->request();
    if (request.command_case() == v2::TelemetryCommand::kSettings) {
      v2::TelemetryCommand reply;
      absl::Status status = client_id_.status();
      if (status.ok()) {
        auto settings = on_settings_(*client_id_, request.settings());
        status = settings.status();
        if (settings.ok()) *reply.mutable_settings() = std::move(settings).value();
      }
      ToV2Status(status, reply.mutable_status());
      absl::MutexLock lock(&mu_);
      writes_.push_back(std::move(reply));
      MaybeWrite();
    } else if (client_id_.ok() && on_command_) {
      on_command_(*client_id_, request);  // stack traces, verify results
    }
    absl::MutexLock lock(&mu_);
    if (!finished_) this->ReadRequest();
  }

  void OnUnparsed(std::string error) override {
    absl::MutexLock lock(&mu_);
    reads_done_ = true;
    end_ = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Telemetry: " + error);
    MaybeFinish();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      // The stream broke; the pending read fails too and ends the call.
      writes_.clear();
      reads_done_ = true;
      MaybeFinish();
      return;
    }
    writes_.pop_front();
    MaybeWrite();
    MaybeFinish();
  }

  void OnDone() override {
    if (client_id_.ok() && on_close_) on_close_(*client_id_);
    delete this;
  }

 private:
  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || writes_.empty()) return;
    writing_ = true;
    this->WriteResponse(writes_.front());
  }
  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || writing_ || !writes_.empty()) return;
    finished_ = true;
    this->Finish(end_);
  }

  // Set by Open, before any reaction.
  absl::StatusOr<std::string> client_id_ = std::string();
  OnSettings on_settings_;
  OnCommand on_command_;
  std::function<void(const std::string&)> on_close_;

  absl::Mutex mu_;
  std::deque<v2::TelemetryCommand> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_ ABSL_GUARDED_BY(mu_);  // OK unless the client sent garbage
};

// On gRPC's callback API (the NameServer).
using TelemetryReactor =
    TelemetryStream<ParsingBidiReactor<v2::TelemetryCommand, v2::TelemetryCommand>>;

// Serves the Telemetry method of `service` (a v2 MessagingService) raw with
// `open`, so TelemetryReactor can tell garbage from a half-close. Call from
// the service's constructor through a member that can reach the protected
// grpc::Service::MarkMethodRawCallback, e.g.
//   MarkMethodRawCallback(TelemetryMethodIndex(), TelemetryHandler(...)).
int TelemetryMethodIndex();
grpc::internal::MethodHandler* TelemetryHandler(
    std::function<TelemetryReactor*(grpc::CallbackServerContext*)> open);

}  // namespace apogee::rocketmq
