#include "apogee/push_consumer.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "apogee/broker/v1/push.grpc.pb.h"
#include "grpcpp/alarm.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "sdk/cpp/src/backoff.h"
#include "sdk/cpp/src/channels.h"
#include "sdk/cpp/src/client_common.h"
#include "sdk/cpp/src/convert.h"
#include "sdk/cpp/src/queue_loan.h"
#include "sdk/cpp/src/route.h"
#include "services/common/clock/proto_time.h"
#include "services/common/concurrency/executor.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/naming/names.h"

namespace apogee {
namespace {

namespace pb = ::apogee::broker::v1;

// Credits per stream when prefetch is 0: enough that the broker keeps
// popping while earlier frames are consumed and settled (a frame's settle
// and credit take a round trip), as RocketMQ's push consumer caches up to
// 1000 messages per queue.
constexpr int kDefaultPrefetch = 1024;
// Settlements that leave at once, without waiting for settle_linger (or a
// quarter of the credits, if fewer: those come back with them).
constexpr int kSettleFrameMessages = 128;

}  // namespace

// Thread-safe; see PushConsumer. One thread per broker stream, polling the
// stream's own completion queue (reads and writes on gRPC's async API); the
// listener runs on an Executor of `concurrency` threads. `mu_` guards the
// streams' bookkeeping and the in-flight count Shutdown waits on; each
// stream's `write_mu` guards its writes.
class PushConsumer::Impl {
 public:
  Impl(PushConsumerOptions options, MessageListener listener)
      : options_(std::move(options)),
        listener_(std::move(listener)),
        core_(options_),
        executor_(std::make_unique<Executor>(options_.concurrency)) {}

  ~Impl() { Shutdown(); }

  absl::Status Start() {
    auto route = core_.routes.Get(options_.topic);
    if (!route.ok()) return route.status();
    if ((*route)->readable.empty()) {
      return absl::UnavailableError(
          absl::StrCat("topic \"", options_.topic, "\" has no readable queue"));
    }
    AddStreams(**route, /*initial=*/true);
    // Wait for the first answer of the brokers: a subscription they all
    // reject (bad tag expression, unreadable topic, ...) fails Create
    // instead of being retried forever; brokers that are only unreachable
    // are retried in the background, as later disconnects are.
    absl::Status rejected;
    {
      absl::MutexLock lock(&mu_);
      auto answered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return subscribed_once_ || initial_answers_ == initial_streams_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&answered), options_.request_timeout);
      if (!subscribed_once_ && initial_answers_ == initial_streams_) rejected = rejection_;
    }
    if (!rejected.ok()) {
      Shutdown();
      return rejected;
    }
    // A broker that starts hosting the topic later gets a stream too.
    watcher_ = std::make_unique<PeriodicTask>(options_.route_refresh, [this] {
      auto latest = core_.routes.Get(options_.topic);
      if (latest.ok()) AddStreams(**latest);
    });
    return absl::OkStatus();
  }

  int Connected() const { return connected_.load(); }

  void Shutdown() {
    if (watcher_ != nullptr) watcher_->Stop();  // before mu_: a run takes it
    std::vector<std::unique_ptr<sdk::QueueLoan>> loans;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;  // no loan starts after this
      for (auto& stream : streams_) TakeLoans(stream.get(), &loans);
    }
    loans.clear();  // each waits for its running listener call
    std::vector<Stream*> to_join;
    {
      absl::MutexLock lock(&mu_);
      // Running callbacks finish and settle on their streams first.
      mu_.Await(absl::Condition(
          +[](int* n) { return *n == 0; }, &in_flight_));
      // Acks are durable once their SettleResult arrived; wait for those
      // (bounded: a broken stream redelivers instead).
      mu_.AwaitWithTimeout(absl::Condition(this, &Impl::SettlesAnswered), options_.request_timeout);
      for (auto& stream : streams_) {
        if (stream->context != nullptr) stream->context->TryCancel();
        to_join.push_back(stream.get());  // none is added once stopping_ is set
      }
    }
    for (Stream* stream : to_join) {
      if (stream->thread.joinable()) stream->thread.join();
    }
    executor_.reset();
  }

 private:
  using Rpc = grpc::ClientAsyncReaderWriter<pb::ConsumeRequest, pb::ConsumeResponse>;

  // What completed on a stream's queue. A connection has at most one of
  // each in flight (gRPC takes one read and one write at a time), so the
  // kind is the whole tag.
  enum class Op : intptr_t { kStart = 1, kRead, kWrite, kFinish, kLinger };
  static void* Tag(Op op) { return reinterpret_cast<void*>(static_cast<intptr_t>(op)); }

  struct Stream {
    std::string broker;
    std::string endpoint;
    std::thread thread;
    // The stream's calls complete here; `thread` polls it and handles each
    // read where it completes (no hand-off to another thread of gRPC's).
    grpc::CompletionQueue cq;
    // Guarded by Impl::mu_: the live call's context, which connection it
    // is, and Settle() calls whose SettleResult was not read yet.
    grpc::ClientContext* context = nullptr;
    uint64_t generation = 0;
    int unanswered_settles = 0;
    bool awaited = false;  // Create waits for this stream's first answer
    // The group consumes orderly (Subscribed.fifo); read by this stream's
    // own thread only.
    bool fifo = false;
    // Queues the broker lent to this consumer (ReadFrom), by queue id.
    std::map<int32_t, std::unique_ptr<sdk::QueueLoan>> loans;
    // Writes, one at a time: whoever finds none in flight starts the next
    // (`thread` when one completes, a settling thread otherwise), so the
    // settlements queued meanwhile leave in one frame. Taken before mu_
    // where both are held.
    absl::Mutex write_mu;
    Rpc* rpc ABSL_GUARDED_BY(write_mu) = nullptr;  // the live connection, if any
    uint64_t rpc_generation ABSL_GUARDED_BY(write_mu) = 0;
    bool writing ABSL_GUARDED_BY(write_mu) = false;
    // The broker takes Settle.credits (else a Credit frame follows).
    bool settle_credits ABSL_GUARDED_BY(write_mu) = false;
    std::deque<pb::ConsumeRequest> queued ABSL_GUARDED_BY(write_mu);  // sent in order
    // Settlements not written yet, and how many Settle() calls they hold.
    pb::Settle pending ABSL_GUARDED_BY(write_mu);
    int pending_count ABSL_GUARDED_BY(write_mu) = 0;
    int pending_calls ABSL_GUARDED_BY(write_mu) = 0;
    // How long settlements wait to share a frame on this connection: none
    // for a FIFO group, whose next message comes only after the ack.
    absl::Duration linger_for ABSL_GUARDED_BY(write_mu);
    // Wakes `thread` when pending settlements have waited `linger_for`.
    grpc::Alarm linger;
    bool linger_armed ABSL_GUARDED_BY(write_mu) = false;
    bool linger_over ABSL_GUARDED_BY(write_mu) = false;
    // Settle() calls per settle frame written, oldest first: a SettleResult
    // answers the oldest.
    std::deque<int> settle_frames ABSL_GUARDED_BY(write_mu);
  };

  // Starts a stream for every broker of `route` without one. Create waits
  // for the first answer of the `initial` ones.
  void AddStreams(const sdk::TopicRoute& route, bool initial = false) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (const sdk::QueueRef& q : route.readable) {
      bool known = false;
      for (const auto& s : streams_) known = known || s->broker == q.broker;
      if (known) continue;
      auto stream = std::make_unique<Stream>();
      stream->broker = q.broker;
      stream->endpoint = q.endpoint;
      stream->awaited = initial;
      if (initial) initial_streams_++;
      Stream* raw = stream.get();
      streams_.push_back(std::move(stream));
      raw->thread = std::thread([this, raw] { Run(raw); });
    }
  }

  // The broker refused the subscription itself (retrying cannot help).
  static bool IsRejection(grpc::StatusCode code) {
    return code == grpc::StatusCode::INVALID_ARGUMENT || code == grpc::StatusCode::NOT_FOUND ||
           code == grpc::StatusCode::PERMISSION_DENIED ||
           code == grpc::StatusCode::FAILED_PRECONDITION ||
           code == grpc::StatusCode::UNAUTHENTICATED;
  }

  // The first answer (subscribed, or the stream ended) of an awaited stream.
  void Answered(Stream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!s->awaited) return;
    s->awaited = false;
    initial_answers_++;
  }

  bool SettlesAnswered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& s : streams_) {
      if (s->unanswered_settles > 0) return false;
    }
    return true;
  }

  bool Stopping() {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }

  // Connects, consumes until the stream breaks, reconnects with backoff.
  void Run(Stream* s) {
    sdk::Backoff backoff(options_.reconnect_initial, options_.reconnect_max);
    auto stub = pb::PushConsumer::NewStub(core_.channels.Get(s->endpoint));
    while (!Stopping()) {
      bool subscribed = false;
      const grpc::Status ended = Connect(s, stub.get(), &backoff, &subscribed);
      if (subscribed) connected_--;
      if (!subscribed) {
        absl::MutexLock lock(&mu_);
        if (s->awaited && IsRejection(ended.error_code()) && rejection_.ok()) {
          rejection_ =
              absl::Status(static_cast<absl::StatusCode>(ended.error_code()),
                           absl::StrCat("broker ", s->broker, " (", s->endpoint,
                                        ") rejected the subscription: ", ended.error_message()));
        }
        Answered(s);
      }
      const absl::Duration wait = backoff.Failure();
      if (!Stopping()) {
        // One line per broken stream (at most one per backoff period), so a
        // subscription the broker rejects is visible.
        std::fprintf(stderr,
                     "apogee-sdk event=push_stream_ended broker=%s endpoint=%s code=%d "
                     "message=\"%s\" retry_in=%s\n",
                     s->broker.c_str(), s->endpoint.c_str(), static_cast<int>(ended.error_code()),
                     ended.error_message().c_str(), absl::FormatDuration(wait).c_str());
      }
      // Backoff, waking early on shutdown.
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait);
    }
    s->cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (s->cq.Next(&tag, &ok)) {
    }
  }

  // One connection: subscribes, then handles what completes on the
  // stream's queue until the call is over and nothing of it is in flight.
  // Returns how it ended; `subscribed` says whether the broker accepted.
  grpc::Status Connect(Stream* s, pb::PushConsumer::Stub* stub, sdk::Backoff* backoff,
                       bool* subscribed) {
    grpc::ClientContext context;
    context.AddMetadata("x-mq-client-id", core_.channels.client_id());
    core_.channels.Sign(&context);
    std::unique_ptr<Rpc> rpc = stub->PrepareAsyncConsume(&context, &s->cq);
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return grpc::Status(grpc::StatusCode::CANCELLED, "shutting down");
      s->context = &context;
      generation = ++s->generation;
    }
    rpc->StartCall(Tag(Op::kStart));
    pb::ConsumeResponse response;
    grpc::Status ended;
    bool reading = true;  // the start, then each read
    bool finished = false;
    auto end = [&] {
      reading = false;
      std::vector<std::unique_ptr<sdk::QueueLoan>> loans;
      {
        absl::MutexLock lock(&s->write_mu);
        s->rpc = nullptr;  // nothing more is written on this call
        s->queued.clear();
        s->pending.Clear();
        s->pending_count = s->pending_calls = 0;
        s->settle_frames.clear();
        s->settle_credits = false;
        s->linger_for = absl::ZeroDuration();
        s->linger_over = false;
        if (s->linger_armed) s->linger.Cancel();  // completes (not ok) on the queue
      }
      {
        absl::MutexLock lock(&mu_);
        s->unanswered_settles = 0;  // never answered: the broker redelivers
        TakeLoans(s, &loans);       // the lending connection is gone
      }
      loans.clear();
      rpc->Finish(&ended, Tag(Op::kFinish));
    };
    while (!finished || reading || WritesBusy(s)) {
      void* tag = nullptr;
      bool ok = false;
      if (!s->cq.Next(&tag, &ok)) break;  // not before Run's Shutdown
      switch (static_cast<Op>(reinterpret_cast<intptr_t>(tag))) {
        case Op::kStart:
          if (!ok) {
            end();
            break;
          }
          {
            absl::MutexLock lock(&s->write_mu);
            s->rpc = rpc.get();
            s->rpc_generation = generation;
            s->queued.push_back(Subscription());
            StartWriteLocked(s);
          }
          rpc->Read(&response, Tag(Op::kRead));
          break;
        case Op::kRead:
          if (!ok) {
            end();
            break;
          }
          OnResponse(s, generation, &response, subscribed, backoff);
          rpc->Read(&response, Tag(Op::kRead));
          break;
        case Op::kWrite: {
          absl::MutexLock lock(&s->write_mu);
          s->writing = false;
          if (ok) StartWriteLocked(s);
          break;
        }
        case Op::kFinish:
          finished = true;
          break;
        case Op::kLinger: {
          absl::MutexLock lock(&s->write_mu);
          s->linger_armed = false;
          s->linger_over = ok;  // not ok: cancelled by the connection's end
          StartWriteLocked(s);
          break;
        }
      }
    }
    absl::MutexLock lock(&mu_);
    s->context = nullptr;
    return ended;
  }

  // A write or the linger alarm is still to complete on the queue.
  bool WritesBusy(Stream* s) {
    absl::MutexLock lock(&s->write_mu);
    return s->writing || s->linger_armed;
  }

  pb::ConsumeRequest Subscription() const {
    pb::ConsumeRequest subscribe;
    pb::Subscribe* sub = subscribe.mutable_subscribe();
    sub->set_client_id(core_.channels.client_id());
    sub->set_group(options_.group);
    sub->set_topic(options_.topic);
    if (options_.filter.type == FilterExpression::Type::kSql) {
      sub->set_sql_expression(options_.filter.expression);
    } else {
      sub->set_tag_expression(options_.filter.expression);
    }
    sub->set_consume_mode(options_.mode == ConsumeMode::kBroadcasting
                              ? admin::v1::CONSUME_MODE_BROADCASTING
                              : admin::v1::CONSUME_MODE_CLUSTERING);
    sub->set_initial_credits(Credits());
    ToProtoDuration(options_.ack_timeout, sub->mutable_ack_timeout());
    sub->set_follows_read_from(true);
    sub->set_stored_messages(true);
    return subscribe;
  }

  // One frame from the broker, on the stream's thread.
  void OnResponse(Stream* s, uint64_t generation, pb::ConsumeResponse* response, bool* subscribed,
                  sdk::Backoff* backoff) {
    if (response->has_subscribed() && !*subscribed) {
      *subscribed = true;
      s->fifo = response->subscribed().fifo();
      {
        absl::MutexLock lock(&s->write_mu);
        s->settle_credits = response->subscribed().settle_credits();
        s->linger_for = s->fifo ? absl::ZeroDuration() : options_.settle_linger;
      }
      connected_++;
      backoff->Success();
      absl::MutexLock lock(&mu_);
      subscribed_once_ = true;
      Answered(s);
    }
    if (response->has_settle_result()) {
      int calls = 1;
      {
        absl::MutexLock lock(&s->write_mu);
        if (!s->settle_frames.empty()) {
          calls = s->settle_frames.front();
          s->settle_frames.pop_front();
        }
      }
      absl::MutexLock lock(&mu_);
      s->unanswered_settles = std::max(0, s->unanswered_settles - calls);
    }
    if (response->has_read_from()) OnReadFrom(s, generation, response->read_from());
    if (!response->has_deliveries()) return;
    std::vector<ReceivedMessage> messages;
    messages.reserve(static_cast<size_t>(response->deliveries().messages_size()));
    std::vector<std::pair<std::string, bool>> unreadable;
    for (const pb::PushedMessage& m : response->deliveries().messages()) {
      auto message = sdk::FromPushed(m, s->broker, s->endpoint);
      if (message.ok()) {
        messages.push_back(*std::move(message));
        continue;
      }
      // Never handed to the listener: nacked, so its credit comes back and
      // the broker's retries and dead-letter queue take it.
      std::fprintf(stderr, "apogee push: %s\n", std::string(message.status().message()).c_str());
      unreadable.emplace_back(m.receipt_handle(), false);
    }
    if (!unreadable.empty()) Settle(s, generation, unreadable);
    Dispatch(s, generation, std::move(messages));
  }

  void TakeLoans(Stream* s, std::vector<std::unique_ptr<sdk::QueueLoan>>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& [queue, loan] : s->loans) out->push_back(std::move(loan));
    s->loans.clear();
  }

  // The broker lends a queue (pull it from another broker of the group,
  // the slave suggestion for cold data) or, with broker id 0, takes it back.
  // Loans stop outside mu_: their threads take it to write progress.
  void OnReadFrom(Stream* s, uint64_t generation, const pb::ReadFrom& read_from) {
    const int32_t queue = read_from.queue_id();
    std::unique_ptr<sdk::QueueLoan> previous;
    {
      absl::MutexLock lock(&mu_);
      if (auto it = s->loans.find(queue); it != s->loans.end()) {
        previous = std::move(it->second);
        s->loans.erase(it);
      }
    }
    previous.reset();
    if (read_from.broker_id() == 0) return;
    std::string endpoint;
    if (auto route = core_.routes.Get(options_.topic); route.ok()) {
      endpoint = sdk::BrokerEndpoint(**route, s->broker, read_from.broker_id());
    }
    auto progress = [this, s, generation, queue](int64_t offset, bool returned) {
      pb::ConsumeRequest request;
      request.mutable_queue_progress()->set_queue_id(queue);
      request.mutable_queue_progress()->set_offset(offset);
      request.mutable_queue_progress()->set_returned(returned);
      (void)Write(s, generation, std::move(request));  // a gone stream ends the loan anyway
    };
    if (endpoint.empty()) {  // never read from a broker the route does not list
      progress(read_from.offset(), /*returned=*/true);
      return;
    }
    sdk::QueueLoanOptions loan_options;
    loan_options.group = options_.group;
    loan_options.topic = options_.topic;
    loan_options.filter = options_.filter;
    loan_options.broker = s->broker;
    loan_options.endpoint = endpoint;
    loan_options.queue_id = queue;
    loan_options.offset = read_from.offset();
    loan_options.request_timeout = options_.request_timeout;
    auto loan = std::make_unique<sdk::QueueLoan>(
        loan_options, &core_.channels,
        [this](const ReceivedMessage& m) {
          try {
            return listener_(m) == ConsumeResult::kSuccess;
          } catch (...) {
            return false;  // a throwing listener is a failure
          }
        },
        progress);
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_ && s->generation == generation) s->loans[queue] = std::move(loan);
    }
    loan.reset();  // not kept (shutting down, or reconnected): stopped here
  }

  // Queues `request` on the stream if it is still connection `generation`.
  bool Write(Stream* s, uint64_t generation, pb::ConsumeRequest request) {
    absl::MutexLock lock(&s->write_mu);
    if (s->rpc == nullptr || s->rpc_generation != generation) return false;
    s->queued.push_back(std::move(request));
    StartWriteLocked(s);
    return true;
  }

  // Starts the next write unless one is in flight: queued requests first,
  // then every settlement pending, in one Settle carrying their credits —
  // once the oldest has waited settle_linger or enough are pending, so that
  // at moderate rates one frame (and one broker wake-up) carries several.
  void StartWriteLocked(Stream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->write_mu) {
    if (s->writing || s->rpc == nullptr) return;
    pb::ConsumeRequest next;
    if (!s->queued.empty()) {
      next = std::move(s->queued.front());
      s->queued.pop_front();
    } else if (s->pending_count > 0) {
      if (!s->linger_over && s->pending_count < settle_frame_messages_ &&
          s->linger_for > absl::ZeroDuration()) {
        if (!s->linger_armed) {
          s->linger_armed = true;
          s->linger.Set(&s->cq, absl::ToChronoTime(absl::Now() + s->linger_for), Tag(Op::kLinger));
        }
        return;
      }
      s->linger_over = false;
      next.mutable_settle()->Swap(&s->pending);
      if (s->settle_credits) {
        next.mutable_settle()->set_credits(s->pending_count);
      } else {
        s->queued.emplace_back().mutable_credit()->set_messages(s->pending_count);
      }
      s->settle_frames.push_back(s->pending_calls);
      s->pending_count = s->pending_calls = 0;
    } else {
      return;
    }
    s->writing = true;
    s->rpc->Write(next, Tag(Op::kWrite));  // serialized here; `next` may go
  }

  // Runs the listener on a frame's messages: in up to `concurrency` runs
  // of consecutive messages (orderly: one run per queue), one executor task
  // each (not one task per message), each settling its run at once.
  void Dispatch(Stream* s, uint64_t generation, std::vector<ReceivedMessage> messages) {
    const size_t n = messages.size();
    if (n == 0) return;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;  // unsettled: redelivered once the stream closes
      in_flight_ += static_cast<int>(n);
    }
    std::vector<std::vector<ReceivedMessage>> runs;
    if (s->fifo) {
      // Orderly: one run per message group (messages without one: per
      // queue), so a group's messages never run at once nor out of order
      // while different groups run in parallel. The broker also sends a
      // group's next message only after this one is settled.
      std::map<std::pair<int32_t, std::string>, std::vector<ReceivedMessage>> by_group;
      for (ReceivedMessage& m : messages) {
        by_group[{m.queue_id, m.message_group}].push_back(std::move(m));
      }
      for (auto& [group, run] : by_group) runs.push_back(std::move(run));
    } else {
      const size_t count = std::min(n, static_cast<size_t>(options_.concurrency));
      const size_t per_run = (n + count - 1) / count;
      for (size_t begin = 0; begin < n; begin += per_run) {
        const size_t end = std::min(n, begin + per_run);
        runs.emplace_back(std::make_move_iterator(messages.begin() + begin),
                          std::make_move_iterator(messages.begin() + end));
      }
    }
    for (std::vector<ReceivedMessage>& run : runs) {
      executor_->Submit([this, s, generation, run = std::move(run)] {
        std::vector<std::pair<std::string, bool>> settlements;
        settlements.reserve(run.size());
        for (const ReceivedMessage& message : run) {
          ConsumeResult result = ConsumeResult::kRetry;
          try {
            result = listener_(message);
          } catch (...) {
            result = ConsumeResult::kRetry;  // a throwing listener is a failure
          }
          settlements.emplace_back(message.receipt_handle, result == ConsumeResult::kSuccess);
        }
        Settle(s, generation, settlements);
        absl::MutexLock lock(&mu_);
        in_flight_ -= static_cast<int>(run.size());
      });
    }
  }

  // Queues the settlements (and one credit each) for the next write; under
  // load one frame carries many. Settles only on the connection that
  // delivered the messages: a newer one got fresh credits and the broker
  // redelivers them there. `settlements`: (receipt handle, ack) pairs;
  // nack when not ack.
  void Settle(Stream* s, uint64_t generation,
              const std::vector<std::pair<std::string, bool>>& settlements) {
    {
      absl::MutexLock lock(&mu_);
      // Counted before it is queued so that the answer never arrives first.
      if (s->generation != generation) return;
      s->unanswered_settles++;
    }
    {
      absl::MutexLock lock(&s->write_mu);
      if (s->rpc != nullptr && s->rpc_generation == generation) {
        for (const auto& [handle, ack] : settlements) {
          if (ack) {
            s->pending.add_acks(handle);
          } else {
            s->pending.add_nacks()->set_receipt_handle(handle);
          }
        }
        s->pending_count += static_cast<int>(settlements.size());
        s->pending_calls++;
        StartWriteLocked(s);
        return;
      }
    }
    absl::MutexLock lock(&mu_);  // its connection is gone
    if (s->generation == generation && s->unanswered_settles > 0) s->unanswered_settles--;
  }

  int Credits() const {
    return options_.prefetch > 0 ? options_.prefetch
                                 : std::max(options_.concurrency, kDefaultPrefetch);
  }

  const PushConsumerOptions options_;
  const MessageListener listener_;
  const int settle_frame_messages_ = std::clamp(Credits() / 4, 1, kSettleFrameMessages);
  sdk::ClientCore core_;
  std::unique_ptr<Executor> executor_;
  std::atomic<int> connected_{0};
  std::unique_ptr<PeriodicTask> watcher_;  // route changes -> AddStreams

  absl::Mutex mu_;
  // Only grows, and only before stopping_; elements never move.
  std::vector<std::unique_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Create's wait for the first answers (see Start).
  int initial_streams_ ABSL_GUARDED_BY(mu_) = 0;
  int initial_answers_ ABSL_GUARDED_BY(mu_) = 0;
  bool subscribed_once_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status rejection_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<PushConsumer>> PushConsumer::Create(PushConsumerOptions options,
                                                                   MessageListener listener) {
  if (absl::Status s = sdk::ValidateClientOptions(options); !s.ok()) return s;
  if (absl::Status s = ValidateGroupName("group", options.group); !s.ok()) return s;
  if (absl::Status s = ValidateClientTopic("topic", options.topic); !s.ok()) return s;
  if (options.concurrency < 1 || options.concurrency > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("concurrency is ", options.concurrency, " (allowed: 1..1024)"));
  }
  if (options.prefetch != 0 &&
      (options.prefetch < options.concurrency || options.prefetch > 10000)) {
    return absl::InvalidArgumentError(absl::StrCat("prefetch is ", options.prefetch,
                                                   " (allowed: 0 or ", options.concurrency,
                                                   "..10000, at least the ", "concurrency)"));
  }
  if (options.settle_linger < absl::ZeroDuration() ||
      options.settle_linger > absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "settle_linger is ", absl::FormatDuration(options.settle_linger), " (allowed: 0..100ms)"));
  }
  if (listener == nullptr) return absl::InvalidArgumentError("listener is empty");
  if (options.reconnect_initial <= absl::ZeroDuration() ||
      options.reconnect_max < options.reconnect_initial) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reconnect backoff ", absl::FormatDuration(options.reconnect_initial), "..",
        absl::FormatDuration(options.reconnect_max), " is invalid (need 0 < initial <= max)"));
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(listener));
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<PushConsumer>(new PushConsumer(std::move(impl)));
}

PushConsumer::PushConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PushConsumer::~PushConsumer() = default;
int PushConsumer::ConnectedStreams() const { return impl_->Connected(); }
void PushConsumer::Shutdown() { impl_->Shutdown(); }

}  // namespace apogee
