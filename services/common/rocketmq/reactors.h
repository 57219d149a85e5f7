// Small gRPC callback reactors shared by every apache.rocketmq.v2 server:
// unary answers with an in-band status, status-only streams, the Telemetry
// settings stream, and a writer for ReceiveMessage/PullMessage streams.
#pragma once

#include <deque>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "services/common/server/parsing_reactor.h"
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

// One client's Telemetry stream. Every Settings the client sends is answered
// on the same stream with what `on_settings` returns (errors in-band: a
// stream error makes the Node client reconnect in a loop); other client
// commands (thread stack traces, verify results) go to `on_command`. The
// server may push commands at any time with Send(). Reads and writes run
// independently; the stream stays open until the client half-closes it and
// every queued write is out, then `on_close` runs. Bytes that are not a
// TelemetryCommand end the stream with INVALID_ARGUMENT naming the problem
// (as the proxy does), after the writes already queued. The method must be
// served raw (see parsing_reactor.h): RegisterTelemetry does that.
// Thread-safe: Send() may be called from any thread until on_close ran.
class TelemetryReactor final
    : public ParsingBidiReactor<v2::TelemetryCommand, v2::TelemetryCommand> {
 public:
  using OnSettings = std::function<absl::StatusOr<v2::Settings>(const std::string& client_id,
                                                                const v2::Settings&)>;
  using OnCommand = std::function<void(const std::string& client_id, const v2::TelemetryCommand&)>;

  TelemetryReactor(absl::StatusOr<std::string> client_id, OnSettings on_settings,
                   OnCommand on_command,
                   std::function<void(const std::string& client_id)> on_close);

  // Starts reading. Call once, after registering the stream wherever Send()
  // will come from (the stream may finish, and `on_close` run, right after).
  void Start();
  // Instead of Start: ends the call at once with `status` (e.g. a stream
  // limit), reading nothing.
  void Refuse(const absl::Status& status);

  // Queues a server-initiated command; false once the stream is finishing.
  bool Send(v2::TelemetryCommand command);

  void OnRequest(bool ok) override;
  void OnUnparsed(std::string error) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::StatusOr<std::string> client_id_;
  const OnSettings on_settings_;
  const OnCommand on_command_;
  const std::function<void(const std::string&)> on_close_;

  absl::Mutex mu_;
  std::deque<v2::TelemetryCommand> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_ ABSL_GUARDED_BY(mu_);  // OK unless the client sent garbage
};

// Serves the Telemetry method of `service` (a v2 MessagingService) raw with
// `open`, so TelemetryReactor can tell garbage from a half-close. Call from
// the service's constructor through a member that can reach the protected
// grpc::Service::MarkMethodRawCallback, e.g.
//   MarkMethodRawCallback(TelemetryMethodIndex(), TelemetryHandler(...)).
int TelemetryMethodIndex();
grpc::internal::MethodHandler* TelemetryHandler(
    std::function<TelemetryReactor*(grpc::CallbackServerContext*)> open);

}  // namespace apogee::rocketmq
