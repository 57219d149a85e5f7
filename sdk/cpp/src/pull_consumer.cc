#include "apogee/pull_consumer.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "sdk/cpp/src/backoff.h"
#include "sdk/cpp/src/channels.h"
#include "sdk/cpp/src/client_common.h"
#include "sdk/cpp/src/convert.h"
#include "sdk/cpp/src/pull_call.h"
#include "sdk/cpp/src/route.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/v2_status.h"

namespace apogee {

namespace v2 = ::apache::rocketmq::v2;

namespace {

std::string Describe(const QueueId& q) {
  return absl::StrCat(q.topic, "@", q.broker, "#", q.queue_id);
}

// An empty pull of one queue answers within the broker's poll tick; after a
// whole empty round, one queue is long-polled this long at most so that
// arrivals on the other queues are seen soon.
constexpr absl::Duration kMaxLongPoll = absl::Milliseconds(200);
// How long a queue whose pull failed is skipped before Poll tries it again:
// this, doubling per further failure up to the cap.
constexpr absl::Duration kFailedQueueRest = absl::Seconds(1);
constexpr absl::Duration kFailedQueueRestMax = absl::Seconds(5);

}  // namespace

// Not thread-safe; see PullConsumer.
class PullConsumer::Impl {
 public:
  explicit Impl(PullConsumerOptions options) : options_(std::move(options)), core_(options_) {}

  absl::StatusOr<std::vector<QueueId>> QueuesOf(const std::string& topic) {
    if (closed_) return Closed();
    if (absl::Status s = ValidateClientTopic("topic", topic); !s.ok()) return s;
    auto route = core_.routes.Get(topic);
    if (!route.ok()) return route.status();
    std::vector<QueueId> queues;
    for (const sdk::QueueRef& q : (*route)->readable)
      queues.push_back({topic, q.broker, q.queue_id});
    return queues;
  }

  absl::Status Assign(std::vector<QueueId> queues) {
    if (closed_) return Closed();
    std::vector<State> assigned;
    for (const QueueId& q : queues) {
      auto ref = Resolve(q);
      if (!ref.ok()) return ref.status();
      State state{q, *ref, 0, -1};
      auto committed = GetOffset(state);
      if (committed.ok()) {
        state.position = state.committed = *committed;
      } else if (committed.status().code() == absl::StatusCode::kNotFound) {
        auto start = QueryOffset(state, options_.start_from_earliest ? v2::BEGINNING : v2::END,
                                 absl::InfinitePast());
        if (!start.ok()) return start.status();
        state.position = *start;
      } else {
        return committed.status();
      }
      assigned.push_back(std::move(state));
    }
    assigned_ = std::move(assigned);
    next_ = 0;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<ReceivedMessage>> Poll(absl::Duration timeout) {
    if (closed_) return Closed();
    if (assigned_.empty())
      return absl::FailedPreconditionError("no queue assigned (Assign or Subscribe first)");
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      // One quick pass over the healthy queues; a queue whose pull fails
      // (its broker is down, say) is skipped for a while so the others
      // keep flowing. Only when none works does Poll return the error.
      absl::Status failed;
      bool any_healthy = false;
      absl::Time first_due = absl::InfiniteFuture();
      for (size_t i = 0; i < assigned_.size(); ++i) {
        State& state = assigned_[next_++ % assigned_.size()];
        if (state.retry_after > absl::Now()) {
          first_due = std::min(first_due, state.retry_after);
          continue;
        }
        auto messages = PullOrBackOff(state, absl::ZeroDuration());
        if (!messages.ok()) {
          if (failed.ok()) failed = messages.status();
          continue;
        }
        any_healthy = true;
        if (!messages->empty()) return messages;
      }
      if (!any_healthy) {
        if (!failed.ok()) return AllFailing(failed);
        // Every queue rests after earlier failures: wait for the first to be
        // due (within `timeout`) rather than fail at once to a caller that
        // polls in a loop.
        absl::SleepFor(std::min(first_due, deadline) - absl::Now());
        if (first_due >= deadline) return AllFailing(failed);
        continue;
      }
      const absl::Duration remaining = deadline - absl::Now();
      if (remaining <= absl::ZeroDuration()) return std::vector<ReceivedMessage>();
      State* waiter = NextHealthy();
      if (waiter == nullptr) return AllFailing(failed);
      auto messages = PullOrBackOff(*waiter, std::min(remaining, kMaxLongPoll));
      if (messages.ok() && !messages->empty()) return messages;
    }
  }

  // Commits every queue it can; returns the first failure.
  absl::Status Commit() {
    if (closed_) return Closed();
    absl::Status first;
    for (State& state : assigned_) {
      if (state.position == state.committed) continue;
      v2::UpdateOffsetRequest request;
      request.mutable_group()->set_name(options_.group);
      FillQueue(state, request.mutable_message_queue());
      request.set_offset(state.position);
      absl::Status s = sdk::CallV2(core_.channels, state.ref.endpoint, options_.request_timeout,
                                   &v2::MessagingService::Stub::UpdateOffset, request)
                           .status();
      if (!s.ok()) {
        if (first.ok()) {
          first = absl::Status(s.code(), absl::StrCat("commit of ", Describe(state.id), " at ",
                                                      state.position, ": ", s.message()));
        }
        continue;
      }
      state.committed = state.position;
    }
    return first;
  }

  absl::StatusOr<int64_t> Committed(const QueueId& queue) {
    if (closed_) return Closed();
    auto ref = Resolve(queue);
    if (!ref.ok()) return ref.status();
    return GetOffset(State{queue, *ref, 0, -1});
  }

  absl::Status Seek(const QueueId& queue, int64_t offset) {
    if (closed_) return Closed();
    if (offset < 0)
      return absl::InvalidArgumentError(absl::StrCat("offset is ", offset, " (must be >= 0)"));
    auto state = Find(queue);
    if (!state.ok()) return state.status();
    (*state)->position = offset;
    return absl::OkStatus();
  }

  absl::Status SeekAll(v2::QueryOffsetPolicy policy, absl::Time time) {
    if (closed_) return Closed();
    for (State& state : assigned_) {
      auto offset = QueryOffset(state, policy, time);
      if (!offset.ok()) return offset.status();
      state.position = *offset;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Position(const QueueId& queue) {
    auto state = Find(queue);
    if (!state.ok()) return state.status();
    return (*state)->position;
  }

  absl::Status Shutdown() {
    if (closed_) return absl::OkStatus();
    absl::Status s = Commit();
    closed_ = true;
    return s;
  }

 private:
  struct State {
    QueueId id;
    sdk::QueueRef ref;
    int64_t position;   // next offset to read
    int64_t committed;  // -1: unknown
    // Where pulls go when a broker suggested another one of the group (a
    // slave for cold data); empty: ref.endpoint. Offsets always go there.
    std::string read_endpoint{};
    // After a failed pull the queue rests until then; last_error says why.
    absl::Time retry_after = absl::InfinitePast();
    absl::Status last_error = absl::OkStatus();
    sdk::Backoff backoff{kFailedQueueRest, kFailedQueueRestMax};
  };

  // Pull, and on failure put the queue to rest (capped exponential backoff).
  absl::StatusOr<std::vector<ReceivedMessage>> PullOrBackOff(State& state,
                                                             absl::Duration long_poll) {
    auto messages = Pull(state, long_poll);
    if (!messages.ok() && !state.read_endpoint.empty()) {
      // The suggested broker cannot serve the queue (down, or it does not
      // know the topic yet): back to the route's broker at once.
      std::fprintf(stderr, "apogee-sdk event=read_from_failed queue=%s endpoint=%s error=\"%s\"\n",
                   Describe(state.id).c_str(), state.read_endpoint.c_str(),
                   messages.status().ToString().c_str());
      state.read_endpoint.clear();
      messages = Pull(state, long_poll);
    }
    if (messages.ok()) {
      state.retry_after = absl::InfinitePast();
      state.last_error = absl::OkStatus();
      state.backoff.Success();
      return messages;
    }
    state.retry_after = absl::Now() + state.backoff.Failure();
    state.last_error = absl::Status(
        messages.status().code(),
        absl::StrCat("pull of ", Describe(state.id), ": ", messages.status().message()));
    return state.last_error;
  }

  // Follows a broker's suggestion to pull `state`'s queue from route id
  // `broker_id` of its group (0: the writer, the route's own endpoint). An
  // id the route does not list is ignored: never read from an unknown
  // broker.
  void ReadFrom(State& state, int64_t broker_id) {
    std::string endpoint;
    if (broker_id != 0) {
      auto route = core_.routes.Get(state.id.topic);
      if (!route.ok()) return;
      endpoint = sdk::BrokerEndpoint(**route, state.ref.broker, broker_id);
      if (endpoint.empty() || endpoint == state.ref.endpoint) return;
    }
    if (endpoint == state.read_endpoint) return;
    std::fprintf(stderr, "apogee-sdk event=read_from queue=%s broker_id=%lld endpoint=%s\n",
                 Describe(state.id).c_str(), static_cast<long long>(broker_id),
                 endpoint.empty() ? state.ref.endpoint.c_str() : endpoint.c_str());
    state.read_endpoint = std::move(endpoint);
  }

  // The next queue not resting, round robin; nullptr when all rest.
  State* NextHealthy() {
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < assigned_.size(); ++i) {
      State& state = assigned_[next_++ % assigned_.size()];
      if (state.retry_after <= now) return &state;
    }
    return nullptr;
  }

  // Every assigned queue failed or is resting after a failure.
  absl::Status AllFailing(const absl::Status& failed) const {
    if (!failed.ok()) return failed;
    for (const State& state : assigned_) {
      if (!state.last_error.ok()) return state.last_error;
    }
    return absl::UnavailableError("every assigned queue is failing");
  }

  static absl::Status Closed() {
    return absl::FailedPreconditionError("pull consumer is shut down");
  }

  absl::StatusOr<sdk::QueueRef> Resolve(const QueueId& q) {
    auto route = core_.routes.Get(q.topic);
    if (!route.ok()) return route.status();
    for (const sdk::QueueRef& ref : (*route)->readable) {
      if (ref.broker == q.broker && ref.queue_id == q.queue_id) return ref;
    }
    return absl::NotFoundError(
        absl::StrCat("queue ", Describe(q), " is not a readable queue of topic \"", q.topic, "\""));
  }

  absl::StatusOr<State*> Find(const QueueId& q) {
    for (State& state : assigned_) {
      if (state.id == q) return &state;
    }
    return absl::NotFoundError(absl::StrCat("queue ", Describe(q), " is not assigned"));
  }

  void FillQueue(const State& state, v2::MessageQueue* mq) const {
    mq->mutable_topic()->set_name(state.id.topic);
    mq->set_id(state.id.queue_id);
    mq->mutable_broker()->set_name(state.id.broker);
  }

  absl::StatusOr<int64_t> GetOffset(const State& state) {
    v2::GetOffsetRequest request;
    request.mutable_group()->set_name(options_.group);
    FillQueue(state, request.mutable_message_queue());
    auto response = sdk::CallV2(core_.channels, state.ref.endpoint, options_.request_timeout,
                                &v2::MessagingService::Stub::GetOffset, request);
    if (!response.ok()) return response.status();
    return response->offset();
  }

  absl::StatusOr<int64_t> QueryOffset(const State& state, v2::QueryOffsetPolicy policy,
                                      absl::Time time) {
    v2::QueryOffsetRequest request;
    FillQueue(state, request.mutable_message_queue());
    request.set_query_offset_policy(policy);
    if (policy == v2::TIMESTAMP) *request.mutable_timestamp() = ToProtoTimestamp(time);
    auto response = sdk::CallV2(core_.channels, state.ref.endpoint, options_.request_timeout,
                                &v2::MessagingService::Stub::QueryOffset, request);
    if (!response.ok()) return response.status();
    return response->offset();
  }

  absl::StatusOr<std::vector<ReceivedMessage>> Pull(State& state, absl::Duration long_poll) {
    v2::PullMessageRequest request;
    request.mutable_group()->set_name(options_.group);
    FillQueue(state, request.mutable_message_queue());
    request.set_offset(state.position);
    request.set_batch_size(options_.max_batch);
    *request.mutable_filter_expression() = sdk::ToV2Filter(options_.filter);
    ToProtoDuration(long_poll, request.mutable_long_polling_timeout());
    const std::string endpoint =
        state.read_endpoint.empty() ? state.ref.endpoint : state.read_endpoint;
    auto answer =
        sdk::PullOnce(core_.channels, endpoint, request, long_poll, options_.request_timeout);
    if (!answer.ok()) {
      core_.routes.Invalidate(state.id.topic);
      return answer.status();
    }
    if (answer->read_from.has_value()) ReadFrom(state, *answer->read_from);
    const absl::Status& in_band = answer->in_band;
    std::vector<ReceivedMessage> messages;
    for (const v2::Message& m : answer->messages) {
      messages.push_back(sdk::FromV2(m, state.ref.broker, endpoint));
    }
    if (ToV2Code(in_band) == v2::ILLEGAL_OFFSET) {
      // Out of the queue's range (retention removed it, or past the end):
      // continue from the nearest valid end.
      auto begin = QueryOffset(state, v2::BEGINNING, absl::InfinitePast());
      if (!begin.ok()) return begin.status();
      if (state.position < *begin) {
        state.position = *begin;
      } else {
        auto end = QueryOffset(state, v2::END, absl::InfinitePast());
        if (!end.ok()) return end.status();
        state.position = *end;
      }
      return messages;
    }
    if (!in_band.ok() && ToV2Code(in_band) != v2::MESSAGE_NOT_FOUND) return in_band;
    if (answer->next_offset >= 0) state.position = answer->next_offset;
    return messages;
  }

  const PullConsumerOptions options_;
  sdk::ClientCore core_;
  std::vector<State> assigned_;
  size_t next_ = 0;
  bool closed_ = false;
};

absl::StatusOr<std::unique_ptr<PullConsumer>> PullConsumer::Create(PullConsumerOptions options) {
  if (absl::Status s = sdk::ValidateClientOptions(options); !s.ok()) return s;
  if (absl::Status s = ValidateGroupName("group", options.group); !s.ok()) return s;
  if (options.max_batch < 1 || options.max_batch > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch is ", options.max_batch, " (allowed: 1..32)"));
  }
  return std::unique_ptr<PullConsumer>(
      new PullConsumer(std::make_unique<Impl>(std::move(options))));
}

PullConsumer::PullConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PullConsumer::~PullConsumer() { (void)impl_->Shutdown(); }

absl::StatusOr<std::vector<QueueId>> PullConsumer::QueuesOf(const std::string& topic) {
  return impl_->QueuesOf(topic);
}
absl::Status PullConsumer::Assign(std::vector<QueueId> queues) {
  return impl_->Assign(std::move(queues));
}
absl::Status PullConsumer::Subscribe(const std::string& topic) {
  auto queues = impl_->QueuesOf(topic);
  if (!queues.ok()) return queues.status();
  return impl_->Assign(std::move(queues).value());
}
absl::StatusOr<std::vector<ReceivedMessage>> PullConsumer::Poll(absl::Duration timeout) {
  return impl_->Poll(timeout);
}
absl::Status PullConsumer::Commit() { return impl_->Commit(); }
absl::StatusOr<int64_t> PullConsumer::Committed(const QueueId& queue) {
  return impl_->Committed(queue);
}
absl::Status PullConsumer::Seek(const QueueId& queue, int64_t offset) {
  return impl_->Seek(queue, offset);
}
absl::Status PullConsumer::SeekToTime(absl::Time time) {
  return impl_->SeekAll(v2::TIMESTAMP, time);
}
absl::Status PullConsumer::SeekToBeginning() {
  return impl_->SeekAll(v2::BEGINNING, absl::InfinitePast());
}
absl::Status PullConsumer::SeekToEnd() { return impl_->SeekAll(v2::END, absl::InfinitePast()); }
absl::StatusOr<int64_t> PullConsumer::Position(const QueueId& queue) const {
  return impl_->Position(queue);
}
absl::Status PullConsumer::Shutdown() { return impl_->Shutdown(); }

}  // namespace apogee
