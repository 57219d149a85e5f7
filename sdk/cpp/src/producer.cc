#include "apogee/producer.h"

#include <iterator>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "sdk/cpp/src/channels.h"
#include "sdk/cpp/src/client_common.h"
#include "sdk/cpp/src/completion_thread.h"
#include "sdk/cpp/src/convert.h"
#include "sdk/cpp/src/queue_selector.h"
#include "sdk/cpp/src/retry.h"
#include "sdk/cpp/src/route.h"
#include "sdk/cpp/src/send_coalescer.h"
#include "services/common/concurrency/executor.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/v2_status.h"

namespace apogee {

using sdk::OutgoingBatch;
using sdk::QueueRef;
using sdk::Retryable;
namespace v2 = ::apache::rocketmq::v2;

constexpr char kSendMessageMethod[] = "/apache.rocketmq.v2.MessagingService/SendMessage";

// Thread-safe; see Producer. `mu_` guards the in-flight count that
// Shutdown waits on.
class Producer::Impl {
 public:
  explicit Impl(ProducerOptions options)
      : options_(std::move(options)),
        clock_(RealClock::Default()),
        core_(options_),
        faults_(clock_),
        selector_(options_.fault_avoidance ? &faults_ : nullptr),
        executor_(std::make_unique<Executor>(std::max(1, options_.async_threads))),
        coalescer_(std::make_unique<sdk::SendCoalescer>(
            sdk::CoalescerOptions{options_.linger, options_.max_batch_messages,
                                  options_.max_batch_bytes, options_.max_batch_calls_in_flight},
            *clock_, [this](OutgoingBatch batch) { StartBatch(std::move(batch)); })) {}

  ~Impl() { Shutdown(); }

  absl::StatusOr<std::vector<SendReceipt>> Send(const std::vector<Message>& messages) {
    if (!Enter()) return absl::FailedPreconditionError("producer is shut down");
    auto result = SendNow(messages);
    Leave();
    return result;
  }

  // The send runs as a chain of gRPC callback-API calls (no thread waits on
  // the broker); the user's callback runs on the executor, never on a gRPC
  // thread, so a slow callback cannot stall the channel.
  void SendAsync(Message message, SendCallback callback) {
    absl::Status refused;
    {
      absl::MutexLock lock(&mu_);
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return shutdown_ || async_in_flight_ < options_.max_async_in_flight;
      };
      // Sends in flight end within send_timeout of their start; twice that
      // is only a guard against a send that never ends.
      const bool has_room = mu_.AwaitWithTimeout(absl::Condition(&room), 2 * options_.send_timeout);
      if (shutdown_) {
        refused = absl::FailedPreconditionError("producer is shut down");
      } else if (!has_room) {
        refused = absl::ResourceExhaustedError(absl::StrCat(
            "send to topic \"", message.topic, "\": ", async_in_flight_,
            " async sends in flight (max_async_in_flight ", options_.max_async_in_flight,
            ") and none finished within twice send_timeout ",
            absl::FormatDuration(options_.send_timeout)));
      } else {
        ++in_flight_;
        ++async_in_flight_;
      }
    }
    if (!refused.ok()) {
      callback(refused);  // outside mu_: the callback may call the producer
      return;
    }
    if (!message.message_group.empty()) {
      // Coalesced calls run in parallel and retry alone: no send order.
      Finish(std::move(callback),
             absl::InvalidArgumentError(absl::StrCat(
                 "SendAsync of a FIFO message (message_group \"", message.message_group,
                 "\") would not keep its group's order: use Send or SendBatch")));
      return;
    }
    std::vector<Message> one;
    one.push_back(std::move(message));
    auto prepared = Prepare(std::move(one));
    if (!prepared.ok()) {
      Finish(std::move(callback), prepared.status());
      return;
    }
    coalescer_->Add(prepared->topic, std::move(prepared->queues),
                    std::move(prepared->entries.front()), std::move(callback));
  }

  void Shutdown() {
    {
      absl::MutexLock lock(&mu_);
      if (coalescer_ == nullptr) return;  // shut down before
      shutdown_ = true;
    }
    // Messages waiting for a call leave now; those admitted meanwhile leave
    // within linger.
    coalescer_->FlushAll();
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](int* n) { return *n == 0; }, &in_flight_));
    }
    completions_.reset();  // its thread may still be leaving the last answer
    core_.refresher.Stop();
    executor_.reset();  // runs the CallDone tasks still queued
    std::unique_ptr<sdk::SendCoalescer> coalescer;
    {
      absl::MutexLock lock(&mu_);
      coalescer = std::move(coalescer_);
    }
    coalescer.reset();  // joins its linger thread; outside mu_
  }

 private:
  bool Enter() {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return false;
    ++in_flight_;
    return true;
  }
  void Leave() {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }

  // A send's messages encoded (ids and born time assigned, input checked)
  // and the topic's writable queues.
  struct Prepared {
    std::string topic;
    std::vector<grpc::Slice> entries;
    std::vector<QueueRef> queues;
  };

  absl::StatusOr<Prepared> Prepare(const std::vector<Message>& messages) {
    if (messages.empty()) return absl::InvalidArgumentError("no messages to send");
    Prepared out;
    out.topic = messages.front().topic;
    const std::string group = messages.front().message_group;
    const absl::Time born = absl::Now();
    int64_t bytes = 0;  // the request's
    for (size_t i = 0; i < messages.size(); ++i) {
      const std::string where =
          messages.size() == 1 ? std::string("message") : absl::StrCat("messages[", i, "]");
      if (absl::Status s = sdk::ValidateMessage(messages[i], where); !s.ok()) return s;
      if (messages[i].topic != out.topic) {
        return absl::InvalidArgumentError(absl::StrCat(where, ".topic is \"", messages[i].topic,
                                                       "\" but a batch has one topic (\"",
                                                       out.topic, "\")"));
      }
      if (messages[i].message_group != group) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".message_group is \"", messages[i].message_group,
                         "\" but a batch has one message group (\"", group, "\")"));
      }
      out.entries.push_back(sdk::EncodeSendEntry(messages[i], sdk::NewMessageId(), born));
      bytes += static_cast<int64_t>(out.entries.back().size());
    }
    if (bytes > options_.max_request_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "send of ", messages.size(), " message(s) to topic \"", out.topic, "\" is ", bytes,
          " bytes (max_request_bytes ", options_.max_request_bytes, "): send a smaller batch"));
    }
    auto route = core_.routes.Get(out.topic, /*any_master_if_unknown=*/true);
    if (!route.ok()) return route.status();
    out.queues = (*route)->writable;
    if (!group.empty()) out.queues = PinnedQueues(out.queues, group);
    return out;
  }

  // A message group always goes to one broker (by its hash over the sorted
  // broker names), whose queue for it the broker picks: its order holds.
  static std::vector<QueueRef> PinnedQueues(const std::vector<QueueRef>& queues,
                                            const std::string& group) {
    std::set<std::string> brokers;
    for (const QueueRef& q : queues) brokers.insert(q.broker);
    if (brokers.size() <= 1) return queues;
    uint64_t hash = 14695981039346656037ull;  // FNV-1a: the same in every process
    for (unsigned char c : group) hash = (hash ^ c) * 1099511628211ull;
    auto home = brokers.begin();
    std::advance(home, hash % brokers.size());
    std::vector<QueueRef> pinned;
    for (const QueueRef& q : queues) {
      if (q.broker == *home) pinned.push_back(q);
    }
    return pinned;
  }

  sdk::RetryPolicy Policy() const {
    return sdk::RetryPolicy{options_.send_timeout, options_.max_retries};
  }
  sdk::FaultTracker* Faults() { return options_.fault_avoidance ? &faults_ : nullptr; }

  // A send that failed on the brokers may have used a stale route: have the
  // refresher fetch it again (the cached route serves until then).
  void ForgetRouteAfter(const std::string& topic, const absl::Status& send_status) {
    if (!send_status.ok() && sdk::Retryable(send_status)) core_.routes.Invalidate(topic);
  }

  absl::StatusOr<std::vector<SendReceipt>> SendNow(const std::vector<Message>& messages) {
    auto prepared = Prepare(messages);
    if (!prepared.ok()) return prepared.status();
    auto result =
        sdk::SendWithRetries(prepared->topic, prepared->queues, Policy(), *clock_, selector_,
                             Faults(), [&](const QueueRef& queue, absl::Time deadline) {
                               return Attempt(prepared->entries, queue, deadline);
                             });
    ForgetRouteAfter(prepared->topic, result.status());
    return result;
  }

  // One coalesced SendMessage call in flight (SendAsync messages of one
  // topic) across its attempts: what its gRPC callbacks carry along.
  // callbacks[i] belongs to entries[i]; messages answered are dropped from
  // both before a retry.
  struct AsyncBatch {
    AsyncBatch(OutgoingBatch batch, sdk::SendRetry retry)
        : topic(std::move(batch.topic)),
          entries(std::move(batch.entries)),
          callbacks(std::move(batch.callbacks)),
          retry(std::move(retry)) {}
    std::string topic;
    std::vector<grpc::Slice> entries;
    std::vector<SendCallback> callbacks;
    sdk::SendRetry retry;
  };

  // One attempt's call objects. Each attempt has its own, owned by its
  // completion callback: gRPC may still be finishing a call after running
  // its callback, so a retry must not reuse that call's context.
  struct AsyncAttempt {
    QueueRef queue;
    grpc::ClientContext context;
    grpc::ByteBuffer answer;  // a v2::SendMessageResponse
    std::unique_ptr<grpc::GenericStub> stub;
  };

  using Outcomes = std::vector<std::pair<SendCallback, absl::StatusOr<SendReceipt>>>;

  // The coalescer hands over a batch: its send_timeout runs from its
  // oldest message's SendAsync.
  void StartBatch(OutgoingBatch batch) {
    const absl::Duration waited = clock_->Now() - batch.oldest;
    sdk::RetryPolicy policy = Policy();
    policy.timeout = std::max(policy.timeout - waited, absl::Milliseconds(1));
    std::vector<QueueRef> queues = std::move(batch.queues);
    const std::string topic = batch.topic;
    auto send = std::make_shared<AsyncBatch>(
        std::move(batch),
        sdk::SendRetry(topic, std::move(queues), policy, *clock_, selector_, Faults()));
    TryNext(std::move(send));
  }

  // Starts the next attempt of `send`, or fails what is left of it.
  void TryNext(std::shared_ptr<AsyncBatch> send) {
    absl::StatusOr<QueueRef> queue = send->retry.Next();
    if (!queue.ok()) {
      ForgetRouteAfter(send->topic, queue.status());
      FailAll(*send, queue.status());
      return;
    }
    const std::vector<grpc::Slice>& entries = send->entries;
    const absl::Time deadline = send->retry.deadline();
    StartSend(entries, *queue, deadline,
              [this, send = std::move(send)](const QueueRef& to, const grpc::Status& status,
                                             const v2::SendMessageResponse& response) {
                OnAnswer(send, to, status, response);
              });
  }

  // Starts one SendMessage call of `entries` to `queue`'s broker; `done`
  // runs on the completion thread with the queue, the call's status and the
  // answer. The request is the entries one after another, referred to, not
  // copied (a v2::SendMessageRequest's wire format), sent through a generic
  // stub: the generated one would want a message built and serialized.
  using SendDone =
      std::function<void(const QueueRef&, const grpc::Status&, const v2::SendMessageResponse&)>;
  void StartSend(const std::vector<grpc::Slice>& entries, const QueueRef& queue,
                 absl::Time deadline, SendDone done) {
    auto attempt = std::make_shared<AsyncAttempt>();
    attempt->queue = queue;
    core_.channels.Prepare(&attempt->context, deadline - clock_->Now());
    attempt->stub = std::make_unique<grpc::GenericStub>(core_.channels.Get(queue.endpoint));
    AsyncAttempt* raw = attempt.get();
    const grpc::ByteBuffer request(entries.data(), entries.size());
    completions_->Start(
        raw->stub->PrepareUnaryCall(&raw->context, kSendMessageMethod, request,
                                    completions_->queue()),
        &raw->answer,
        [attempt = std::move(attempt), done = std::move(done)](const grpc::Status& status) {
          v2::SendMessageResponse response;
          grpc::Status answered = status;
          if (status.ok() && !grpc::SerializationTraits<v2::SendMessageResponse>::Deserialize(
                                  &attempt->answer, &response)
                                  .ok()) {
            // As the generated stub would say.
            answered = grpc::Status(grpc::StatusCode::INTERNAL,
                                    "the broker's SendMessage answer does not parse");
          }
          done(attempt->queue, answered, response);
        });
  }

  // Settles each message of the batch on the broker's answer: its receipt,
  // its own rejection, or (failures of the whole call, and entries the
  // broker did not store for a retryable reason) another attempt elsewhere
  // while the retry policy allows one.
  void OnAnswer(const std::shared_ptr<AsyncBatch>& send, const QueueRef& queue,
                const grpc::Status& status, const v2::SendMessageResponse& response) {
    const int n = static_cast<int>(send->entries.size());
    sdk::BatchAnswer answer = sdk::ReadBatchAnswer(
        status.ok() ? absl::OkStatus() : FromGrpcStatus(status), response, n, send->topic, queue);
    ForgetRouteIfNotWriter(queue, answer.whole);
    if (!answer.whole.ok()) return RetryOrFail(send, answer.whole);
    Outcomes answered;
    std::vector<grpc::Slice> rest;
    std::vector<SendCallback> rest_callbacks;
    for (int i = 0; i < n; ++i) {
      auto& each = answer.each[static_cast<size_t>(i)];
      SendCallback& callback = send->callbacks[static_cast<size_t>(i)];
      if (each.has_value()) {
        answered.emplace_back(std::move(callback), *std::move(each));
      } else {
        rest.push_back(std::move(send->entries[static_cast<size_t>(i)]));
        rest_callbacks.push_back(std::move(callback));
      }
    }
    if (rest_callbacks.empty()) {
      (void)send->retry.Done(std::vector<SendReceipt>());  // fault bookkeeping
      FinishMany(std::move(answered), &send->topic);
      return;
    }
    FinishMany(std::move(answered));  // the rest still hold Shutdown back
    send->entries = std::move(rest);
    send->callbacks = std::move(rest_callbacks);
    RetryOrFail(send, answer.retry_error);
  }

  // After a failed attempt: another broker (started from the executor
  // rather than from inside the call's completion), or the final error for
  // every message left.
  void RetryOrFail(const std::shared_ptr<AsyncBatch>& send, const absl::Status& error) {
    auto done = send->retry.Done(error);
    if (!done.has_value()) {
      executor_->Submit([this, send] { TryNext(send); });
      return;
    }
    ForgetRouteAfter(send->topic, done->status());
    FailAll(*send, done->status());
  }

  void FailAll(AsyncBatch& send, const absl::Status& status) {
    Outcomes failed;
    for (SendCallback& callback : send.callbacks) failed.emplace_back(std::move(callback), status);
    send.callbacks.clear();
    FinishMany(std::move(failed), &send.topic);
  }

  // Frees the sends' places in the async window at once (so a callback that
  // sends again never waits on callbacks queued behind it), then on the
  // executor (not inside a gRPC completion) lets the topic's next call
  // leave when `call_done_topic` is set (this call has no message left),
  // and runs the user's callbacks; Shutdown waits for them too. Must be the
  // last use of `this` by a gRPC completion: Shutdown may end after it.
  void FinishMany(Outcomes outcomes, const std::string* call_done_topic = nullptr) {
    const int n = static_cast<int>(outcomes.size());
    if (n == 0 && call_done_topic == nullptr) return;
    {
      absl::MutexLock lock(&mu_);
      async_in_flight_ -= n;
    }
    std::string topic = call_done_topic != nullptr ? *call_done_topic : std::string();
    executor_->Submit([this, n, done = call_done_topic != nullptr, topic = std::move(topic),
                       outcomes = std::move(outcomes)]() mutable {
      if (done) coalescer_->CallDone(topic);
      for (auto& [callback, result] : outcomes) callback(std::move(result));
      absl::MutexLock lock(&mu_);
      in_flight_ -= n;
    });
  }

  void Finish(SendCallback callback, absl::StatusOr<SendReceipt> result) {
    Outcomes one;
    one.emplace_back(std::move(callback), std::move(result));
    FinishMany(std::move(one));
  }

  // One synchronous attempt: the async call, waited for.
  absl::StatusOr<std::vector<SendReceipt>> Attempt(const std::vector<grpc::Slice>& entries,
                                                   const QueueRef& queue, absl::Time deadline) {
    absl::Notification answered;
    absl::StatusOr<std::vector<SendReceipt>> receipts;
    // Read on the completion thread, where the answer lives (not copied).
    StartSend(
        entries, queue, deadline,
        [&](const QueueRef&, const grpc::Status& status, const v2::SendMessageResponse& response) {
          if (status.ok()) {
            receipts = Receipts(entries.size(), response, queue);
            ForgetRouteIfNotWriter(queue, receipts.status());
          } else {
            receipts = FromGrpcStatus(status);
          }
          answered.Notify();
        });
    answered.WaitForNotification();
    return receipts;
  }

  // A broker that is no longer its group's writer (a failover moved it)
  // answers HA_NOT_AVAILABLE: the route is stale whatever the retry does
  // next, so fetch it again at once.
  void ForgetRouteIfNotWriter(const QueueRef& queue, const absl::Status& status) {
    if (ToV2Code(status) == v2::HA_NOT_AVAILABLE) core_.routes.Invalidate(queue.topic);
  }

  // The receipts of a broker's answer to a send of `messages`, or its error.
  static absl::StatusOr<std::vector<SendReceipt>> Receipts(size_t messages,
                                                           const v2::SendMessageResponse& response,
                                                           const QueueRef& queue) {
    if (response.status().code() == v2::MULTIPLE_RESULTS) {
      // Some messages of the batch were stored, others rejected (bad
      // input): not retried, which would store the good ones twice.
      for (int i = 0; i < response.entries_size(); ++i) {
        absl::Status s = FromV2Status(response.entries(i).status());
        if (s.ok()) continue;
        return absl::Status(
            Retryable(s) ? absl::StatusCode::kFailedPrecondition : s.code(),
            absl::StrCat("messages[", i,
                         "] was rejected and the batch partly stored: ", s.message()));
      }
    }
    if (absl::Status s = FromV2Status(response.status()); !s.ok()) return s;
    if (static_cast<size_t>(response.entries_size()) != messages) {
      return absl::InternalError(absl::StrCat("broker answered ", response.entries_size(),
                                              " entries for ", messages, " messages"));
    }
    std::vector<SendReceipt> receipts;
    for (const v2::SendResultEntry& e : response.entries()) {
      if (e.status().code() != v2::OK) return FromV2Status(e.status());
      receipts.push_back({e.message_id(), queue.broker, e.offset()});
    }
    return receipts;
  }

  const ProducerOptions options_;
  const Clock* const clock_;
  sdk::ClientCore core_;
  sdk::FaultTracker faults_;
  sdk::QueueSelector selector_;
  std::unique_ptr<Executor> executor_;
  // Async sends' calls; reset by Shutdown once none is in flight.
  std::unique_ptr<sdk::CompletionThread> completions_ = std::make_unique<sdk::CompletionThread>();
  // Null once shut down (set to null under mu_).
  std::unique_ptr<sdk::SendCoalescer> coalescer_;

  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;        // sends of any kind
  int async_in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // SendAsync sends
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(ProducerOptions options) {
  if (absl::Status s = sdk::ValidateClientOptions(options); !s.ok()) return s;
  if (options.send_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "send_timeout is ", absl::FormatDuration(options.send_timeout), " (must be > 0)"));
  }
  if (options.max_retries < 0 || options.max_retries > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_retries is ", options.max_retries, " (allowed: 0..16)"));
  }
  if (options.max_async_in_flight < 1 || options.max_async_in_flight > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_async_in_flight is ", options.max_async_in_flight, " (allowed: 1..65536)"));
  }
  if (options.max_request_bytes < (64 << 10) || options.max_request_bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_request_bytes is ", options.max_request_bytes, " (allowed: 65536..1073741824)"));
  }
  if (options.linger < absl::ZeroDuration() || options.linger > absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("linger is ", absl::FormatDuration(options.linger), " (allowed: 0..1s)"));
  }
  if (options.max_batch_messages < 1 || options.max_batch_messages > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_messages is ", options.max_batch_messages, " (allowed: 1..4096)"));
  }
  if (options.max_batch_bytes < 1024 || options.max_batch_bytes > options.max_request_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("max_batch_bytes is ", options.max_batch_bytes,
                                                   " (allowed: 1024..", options.max_request_bytes,
                                                   ", the max_request_bytes)"));
  }
  if (options.max_batch_calls_in_flight < 1 || options.max_batch_calls_in_flight > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_batch_calls_in_flight is ", options.max_batch_calls_in_flight, " (allowed: 1..1024)"));
  }
  return std::unique_ptr<Producer>(new Producer(std::make_unique<Impl>(std::move(options))));
}

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Producer::~Producer() = default;

absl::StatusOr<SendReceipt> Producer::Send(const Message& message) {
  auto receipts = impl_->Send({message});
  if (!receipts.ok()) return receipts.status();
  return std::move(receipts)->front();
}

void Producer::SendAsync(Message message, SendCallback callback) {
  impl_->SendAsync(std::move(message), std::move(callback));
}

absl::StatusOr<std::vector<SendReceipt>> Producer::SendBatch(const std::vector<Message>& messages) {
  return impl_->Send(messages);
}

void Producer::Shutdown() { impl_->Shutdown(); }

}  // namespace apogee
