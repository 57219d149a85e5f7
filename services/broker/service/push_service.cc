#include "services/broker/service/push_service.h"

#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/common/server/encoded.h"
#include "services/common/status/grpc_status.h"

namespace apogee::broker {

// One Consume call. Owned by a shared_ptr to itself from Start until
// OnDone, so the session's deliveries (on worker threads) can hold a weak
// reference and find it gone instead of dangling. Reads run one at a time;
// writes are queued and written in order; the call finishes once it was
// ended (by the client, an error, or Shutdown) and no write is in flight.
class PushService::Stream final
    : public QueueBidiStream<pushv1::ConsumeRequest, Encoded<pushv1::ConsumeResponse>>,
      public std::enable_shared_from_this<Stream> {
 public:
  explicit Stream(PushService* service)
      : QueueBidiStream(
            service->queue_,
            [service](grpc::ServerContext* context, RawStream* stream,
                      grpc::ServerCompletionQueue* queue,
                      void* tag) { service->RequestConsume(context, stream, queue, queue, tag); },
            &service->calls_),
        service_(service) {}

  // Waits for a client, keeping itself alive until OnDone.
  void Post(std::shared_ptr<Stream> self) {
    self_ = std::move(self);
    Start();
  }

  // Queues a response; dropped once the call is ending.
  void Send(Encoded<pushv1::ConsumeResponse> response) {
    absl::MutexLock lock(&mu_);
    if (end_.has_value()) return;
    writes_.push_back(std::move(response));
    MaybeWrite();
  }

  // Ends the call with `status` (the first one wins); queued responses are
  // dropped: their messages are released when the session closes.
  void End(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (end_.has_value()) return;
    end_ = status;
    if (writes_.size() > 1) writes_.resize(writing_ ? 1 : 0);
    if (!writing_) writes_.clear();
    MaybeFinish();
  }

  void OnStart() override {
    service_->Accept();  // the next client's call waits meanwhile
    // Who opened the stream (--auth), and its place among all push streams.
    if (const auth::Authenticator* auth = service_->auth_; auth != nullptr && auth->enabled()) {
      user_ = auth->Authenticate(context());
    }
    peer_ = context().peer();
    service_->Opened(this, weak_from_this());
    absl::StatusOr<StreamCounter::Lease> place = service_->counter_.OpenAny();
    if (!place.ok()) return End(place.status());
    places_.push_back(*std::move(place));
    ReadRequest();
  }

  void OnRequest(bool ok) override {
    // Client half-close, cancellation or a broken connection.
    if (!ok) return End(absl::OkStatus());
    absl::Status status = Handle(request());
    if (!status.ok()) return End(status);
    absl::MutexLock lock(&mu_);
    if (!end_.has_value()) ReadRequest();
  }

  void OnUnparsed(std::string error) override {
    End(absl::InvalidArgumentError(absl::StrCat("Consume: ", error)));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!writes_.empty()) writes_.pop_front();
    if (!ok) {
      if (!end_.has_value()) end_ = absl::OkStatus();
      writes_.clear();
    }
    MaybeWrite();
    MaybeFinish();
  }

  void OnDone() override {
    // Reads are over (OnDone comes last), so session_ is ours alone here.
    if (session_ != nullptr) session_->Close();
    service_->Closed(this);
    std::shared_ptr<Stream> last = std::move(self_);  // may delete this on return
  }

 private:
  absl::Status Handle(pushv1::ConsumeRequest& request) {
    switch (request.request_case()) {
      case pushv1::ConsumeRequest::kSubscribe: {
        if (session_ != nullptr) {
          return absl::InvalidArgumentError("subscribe may be sent once per stream");
        }
        if (const auth::Authenticator* auth = service_->auth_; auth != nullptr && auth->enabled()) {
          if (!user_.ok()) return user_.status();
          const pushv1::Subscribe& sub = request.subscribe();
          absl::Status allowed =
              auth->Authorize(*user_, peer_,
                              {{auth::ResourceKind::kGroup, sub.group(), {auth::Action::kSub}},
                               {auth::ResourceKind::kTopic, sub.topic(), {auth::Action::kSub}}});
          if (!allowed.ok()) return allowed;
        }
        std::weak_ptr<Stream> weak = weak_from_this();
        auto session = PushSession::Create(service_->deps_, service_->limits_, request.subscribe(),
                                           [weak](Encoded<pushv1::ConsumeResponse> response) {
                                             if (auto self = weak.lock()) {
                                               self->Send(std::move(response));
                                             }
                                           });
        if (!session.ok()) return session.status();
        // Counted once the subscription is valid (its client id checked).
        absl::StatusOr<StreamCounter::Lease> mine =
            service_->counter_.OpenForClient(request.subscribe().client_id());
        if (!mine.ok()) return mine.status();
        places_.push_back(*std::move(mine));
        session_ = std::move(session).value();
        session_->Start();
        return absl::OkStatus();
      }
      case pushv1::ConsumeRequest::kCredit:
        if (session_ == nullptr) return NotSubscribed("credit");
        return session_->Grant(request.credit().messages());
      case pushv1::ConsumeRequest::kSettle: {
        if (session_ == nullptr) return NotSubscribed("settle");
        const int32_t credits = request.settle().credits();
        session_->Settle(std::move(*request.mutable_settle()));
        // As a Credit frame after the settle (checked the same way).
        return credits == 0 ? absl::OkStatus() : session_->Grant(credits, "settle.credits");
      }
      case pushv1::ConsumeRequest::kQueueProgress:
        if (session_ == nullptr) return NotSubscribed("queue_progress");
        return session_->OnQueueProgress(request.queue_progress());
      default:
        return absl::InvalidArgumentError(
            "request is empty (expected subscribe, credit, settle or queue_progress)");
    }
  }

  static absl::Status NotSubscribed(const char* what) {
    return absl::InvalidArgumentError(std::string(what) +
                                      " before subscribe (the first request must be subscribe)");
  }

  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || writes_.empty()) return;
    writing_ = true;
    WriteResponse(writes_.front());
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !end_.has_value() || writing_) return;
    finished_ = true;
    Finish(ToGrpcStatus(*end_));
  }

  PushService* const service_;
  // Set in OnStart, before the first read; then read loop only.
  absl::StatusOr<auth::User> user_ = auth::User{};
  std::string peer_;
  std::shared_ptr<Stream> self_;              // released in OnDone
  std::shared_ptr<PushSession> session_;      // read loop and OnDone only
  std::vector<StreamCounter::Lease> places_;  // read loop only; released with the stream

  absl::Mutex mu_;
  std::deque<Encoded<pushv1::ConsumeResponse>> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> end_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

PushService::PushService(PushDeps deps, PushLimits limits, const auth::Authenticator* auth,
                         const StreamLimits& streams)
    : deps_(std::move(deps)),
      limits_(limits),
      auth_(auth),
      counter_("push", "max_push_streams", streams.max_push_streams, "max_push_streams_per_client",
               streams.max_push_streams_per_client) {}

void PushService::Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) {
  queue_ = queues.front();
  Accept();
}

void PushService::Detach() { calls_.AwaitNone(); }

void PushService::Accept() {
  auto stream = std::make_shared<Stream>(this);
  Stream* raw = stream.get();
  raw->Post(std::move(stream));
}

void PushService::Opened(Stream* stream, std::weak_ptr<Stream> weak) {
  absl::MutexLock lock(&mu_);
  streams_[stream] = std::move(weak);
  deps_.probe->SetPushStreams(static_cast<int64_t>(streams_.size()));
}

void PushService::Closed(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
  deps_.probe->SetPushStreams(static_cast<int64_t>(streams_.size()));
}

void PushService::Shutdown() {
  std::vector<std::shared_ptr<Stream>> open;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [raw, weak] : streams_) {
      if (auto stream = weak.lock()) open.push_back(std::move(stream));
    }
  }
  for (auto& stream : open) stream->End(absl::UnavailableError("broker is shutting down"));
}

}  // namespace apogee::broker
