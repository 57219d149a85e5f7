#include "services/broker/ha/send_forwarder.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "services/common/client/channel.h"

namespace apogee::broker::ha {
namespace {

namespace v2 = ::apache::rocketmq::v2;

// The client headers a relayed call keeps: identity, namespace, signature.
bool Relayed(const grpc::string_ref& key) {
  const absl::string_view k(key.data(), key.size());
  return absl::StartsWith(k, "x-mq-") || k == "authorization";
}

}  // namespace

struct SendForwarder::Call {
  grpc::ServerContextBase* server_context;
  // Issues the relayed RPC (SendMessage or EndTransaction) on a stub.
  std::function<void(v2::MessagingService::Stub*, grpc::ClientContext*,
                     std::function<void(grpc::Status)>)>
      issue;
  std::function<void()> clear_response;  // before a retry
  Done done;
  absl::Time deadline;  // of each relayed call: the client's, less a margin
  absl::Time give_up;   // no more holding after this
  // The last endpoint that could not be reached: look the writer up afresh.
  std::string unreachable;
  std::unique_ptr<grpc::ClientContext> relay_context;
};

SendForwarder::SendForwarder(BrokerIdentity self, std::vector<std::string> nameservers,
                             const RoleManager* roles, Executor* executor, ForwardOptions options)
    : self_(self),
      roles_(roles),
      executor_(executor),
      options_(options),
      writers_(std::move(self), nameservers) {
  client_endpoint_ = self_.client_endpoint;
  retry_thread_ = std::thread([this] { RetryLoop(); });
}

SendForwarder::~SendForwarder() {
  std::multimap<absl::Time, std::shared_ptr<Call>> held;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    held.swap(held_);
  }
  retry_thread_.join();
  for (auto& [when, call] : held) {
    call->done(absl::UnavailableError("the broker is shutting down"));
  }
}

bool SendForwarder::WasForwarded(const grpc::ServerContextBase& context) {
  return context.client_metadata().count(kForwardedByHeader) > 0;
}

void SendForwarder::SetClientEndpoint(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  client_endpoint_ = endpoint;
}

absl::StatusOr<std::string> SendForwarder::WriterEndpoint(bool fresh) {
  {
    absl::MutexLock lock(&mu_);
    if (!fresh && writer_.has_value() && absl::Now() - looked_up_ < options_.lookup_ttl) {
      return *writer_;
    }
  }
  std::optional<WriterLocation> writer =
      writers_.Find(absl::Seconds(1), [this](const WriterLocation& found) {
        if (found.client_endpoint.empty()) return false;
        absl::MutexLock lock(&mu_);
        return found.client_endpoint != client_endpoint_;  // routes lag our own role
      });
  if (writer.has_value()) {
    absl::MutexLock lock(&mu_);
    writer_ = writer->client_endpoint;
    looked_up_ = absl::Now();
    return *writer_;
  }
  return absl::UnavailableError(absl::StrCat("no other writer of broker group \"",
                                             self_.broker_name,
                                             "\" is registered with any NameServer"));
}

v2::MessagingService::Stub* SendForwarder::StubFor(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  auto& stub = stubs_[endpoint];
  if (stub == nullptr) stub = v2::MessagingService::NewStub(CreateApogeeChannel(endpoint));
  return stub.get();
}

void SendForwarder::Forward(grpc::ServerContextBase* context, const v2::SendMessageRequest* request,
                            v2::SendMessageResponse* response, Done done) {
  auto call = std::make_shared<Call>();
  call->issue = [request, response](v2::MessagingService::Stub* stub, grpc::ClientContext* c,
                                    std::function<void(grpc::Status)> on_done) {
    stub->async()->SendMessage(c, request, response, std::move(on_done));
  };
  call->clear_response = [response] { response->Clear(); };
  Start(context, std::move(call), std::move(done));
}

void SendForwarder::Forward(grpc::ServerContextBase* context,
                            const v2::EndTransactionRequest* request,
                            v2::EndTransactionResponse* response, Done done) {
  auto call = std::make_shared<Call>();
  call->issue = [request, response](v2::MessagingService::Stub* stub, grpc::ClientContext* c,
                                    std::function<void(grpc::Status)> on_done) {
    stub->async()->EndTransaction(c, request, response, std::move(on_done));
  };
  call->clear_response = [response] { response->Clear(); };
  Start(context, std::move(call), std::move(done));
}

void SendForwarder::Start(grpc::ServerContextBase* context, std::shared_ptr<Call> call, Done done) {
  call->server_context = context;
  call->done = std::move(done);
  call->deadline = absl::Now() + absl::Seconds(10);
  const auto deadline = context->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    // Leave the answer time to reach the client before its deadline.
    call->deadline = absl::FromChrono(deadline) - absl::Milliseconds(100);
  }
  call->give_up = std::min(call->deadline, absl::Now() + options_.max_hold);
  executor_->Submit([this, call] { Attempt(call); });
}

void SendForwarder::Attempt(std::shared_ptr<Call> call) {
  if (roles_->AcceptsWrites()) {
    call->done(Outcome::kBecameWriter);
    return;
  }
  absl::StatusOr<std::string> endpoint = WriterEndpoint(!call->unreachable.empty());
  if (!endpoint.ok()) return Hold(call, endpoint.status());
  if (*endpoint == call->unreachable) {
    return Hold(
        call, absl::UnavailableError(absl::StrCat("the writer at ", *endpoint, " is unreachable")));
  }
  // A fresh client context per try: a ClientContext serves one call only.
  call->relay_context = std::make_unique<grpc::ClientContext>();
  call->relay_context->set_deadline(absl::ToChronoTime(call->deadline));
  for (const auto& [key, value] : call->server_context->client_metadata()) {
    if (Relayed(key)) {
      call->relay_context->AddMetadata(std::string(key.data(), key.size()),
                                       std::string(value.data(), value.size()));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    call->relay_context->AddMetadata(kForwardedByHeader, client_endpoint_);
  }
  const std::string target = *endpoint;
  call->issue(StubFor(target), call->relay_context.get(),
              [this, call, target](grpc::Status status) {
                if (status.ok()) {
                  call->done(Outcome::kRelayed);
                  return;
                }
                const absl::Status failed = absl::UnavailableError(absl::StrCat(
                    "relaying to the writer at ", target, " failed: ", status.error_message()));
                // Only a writer that could not be reached is worth waiting out; any
                // other answer (deadline, refusal) is final.
                if (status.error_code() != grpc::StatusCode::UNAVAILABLE) {
                  call->done(failed);
                  return;
                }
                call->unreachable = target;
                call->clear_response();
                Hold(call, failed);
              });
}

void SendForwarder::Hold(std::shared_ptr<Call> call, const absl::Status& why) {
  const absl::Time next = absl::Now() + options_.retry_interval;
  if (next >= call->give_up) {
    call->done(absl::UnavailableError(
        absl::StrCat("no writer answered within the hold (", why.message(), ")")));
    return;
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    call->done(absl::UnavailableError("the broker is shutting down"));
    return;
  }
  held_.emplace(next, std::move(call));
}

void SendForwarder::RetryLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    if (held_.empty() || held_.begin()->first > now) {
      const absl::Time wake = held_.empty() ? now + absl::Seconds(1) : held_.begin()->first;
      // Woken early by a stop or by a call due before `wake`.
      auto due_or_stopping = [this, wake]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!held_.empty() && held_.begin()->first < wake);
      };
      mu_.AwaitWithDeadline(absl::Condition(&due_or_stopping), wake);
      continue;
    }
    std::shared_ptr<Call> call = std::move(held_.begin()->second);
    held_.erase(held_.begin());
    mu_.Unlock();
    Attempt(std::move(call));
    mu_.Lock();
  }
}

}  // namespace apogee::broker::ha
