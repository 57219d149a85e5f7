#include "services/broker/delivery/push_session.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"

namespace apogee::broker {
namespace {

namespace av1 = ::apogee::admin::v1;
namespace nsv1 = ::apogee::nameserver::v1;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

std::string Range(absl::Duration low, absl::Duration high) {
  return absl::StrCat("allowed: ", absl::FormatDuration(low), "..", absl::FormatDuration(high));
}

}  // namespace

absl::StatusOr<std::shared_ptr<PushSession>> PushSession::Create(const PushDeps& deps,
                                                                 const PushLimits& limits,
                                                                 const pushv1::Subscribe& subscribe,
                                                                 Send send) {
  std::shared_ptr<PushSession> s(new PushSession(deps, limits, std::move(send)));
  if (subscribe.client_id().empty() || subscribe.client_id().size() > limits.max_client_id_bytes) {
    return Invalid(absl::StrCat("subscribe.client_id has ", subscribe.client_id().size(),
                                " bytes (allowed: 1..", limits.max_client_id_bytes, ")"));
  }
  s->client_id_ = subscribe.client_id();
  if (absl::Status ok = ValidateGroupName("subscribe.group", subscribe.group()); !ok.ok()) {
    return ok;
  }
  s->group_ = subscribe.group();
  if (absl::Status ok = ValidateClientTopic("subscribe.topic", subscribe.topic()); !ok.ok()) {
    return ok;
  }
  if (IsRetryTopic(subscribe.topic()) || IsDlqTopic(subscribe.topic())) {
    return Invalid(absl::StrCat("subscribe.topic \"", subscribe.topic(),
                                "\" is a retry or dead-letter topic (subscribe to its origin)"));
  }
  s->topic_ = subscribe.topic();
  // Compiled once here, used for the stream's life.
  const bool sql = !subscribe.sql_expression().empty();
  const std::string tags(absl::StripAsciiWhitespace(subscribe.tag_expression()));
  if (sql && !tags.empty() && tags != "*") {
    return Invalid(absl::StrCat("subscribe.tag_expression is \"", subscribe.tag_expression(),
                                "\" with a subscribe.sql_expression (allowed: one filter; ",
                                "use TAGS in the SQL expression)"));
  }
  v2::FilterExpression expression;
  expression.set_type(sql ? v2::SQL : v2::TAG);
  expression.set_expression(sql ? subscribe.sql_expression() : subscribe.tag_expression());
  auto filter = MessageFilter::Parse(expression);
  if (!filter.ok()) {
    return Invalid(absl::StrCat(sql ? "subscribe.sql_expression: " : "subscribe.tag_expression: ",
                                filter.status().message()));
  }
  s->filter_ = *std::move(filter);
  if (subscribe.initial_credits() < 0 || subscribe.initial_credits() > limits.max_credits) {
    return Invalid(absl::StrCat("subscribe.initial_credits is ", subscribe.initial_credits(),
                                " (allowed: 0..", limits.max_credits, ")"));
  }
  s->initial_credits_ = subscribe.initial_credits();
  s->ack_timeout_ = subscribe.has_ack_timeout() ? FromProtoDuration(subscribe.ack_timeout())
                                                : limits.default_ack_timeout;
  if (s->ack_timeout_ < limits.min_ack_timeout || s->ack_timeout_ > limits.max_ack_timeout) {
    return Invalid(absl::StrCat("subscribe.ack_timeout is ", absl::FormatDuration(s->ack_timeout_),
                                " (", Range(limits.min_ack_timeout, limits.max_ack_timeout), ")"));
  }
  av1::ConsumeMode mode = subscribe.consume_mode();
  if (mode == av1::CONSUME_MODE_UNSPECIFIED) mode = deps.groups->Get(s->group_).consume_mode();
  if (mode != av1::CONSUME_MODE_BROADCASTING && mode != av1::CONSUME_MODE_CLUSTERING &&
      mode != av1::CONSUME_MODE_UNSPECIFIED) {
    return Invalid(absl::StrCat("subscribe.consume_mode is ", static_cast<int>(mode),
                                " (allowed: CLUSTERING, BROADCASTING or UNSPECIFIED)"));
  }
  s->broadcasting_ = mode == av1::CONSUME_MODE_BROADCASTING;
  s->follows_read_from_ = subscribe.follows_read_from();
  s->stored_messages_ = subscribe.stored_messages();
  s->key_ =
      s->broadcasting_ ? GroupManager::MemberProgressKey(s->group_, s->client_id_) : s->group_;
  auto topic = deps.topics->Get(s->topic_);
  if (!topic.ok()) {
    return absl::NotFoundError(absl::StrCat("subscribe.topic \"", s->topic_,
                                            "\" does not exist on broker ", deps.broker_name,
                                            " (push does not create topics)"));
  }
  if (topic->permission() != nsv1::TOPIC_PERMISSION_READ &&
      topic->permission() != nsv1::TOPIC_PERMISSION_READ_WRITE) {
    return absl::PermissionDeniedError(
        absl::StrCat("subscribe.topic \"", s->topic_, "\" is not readable on this broker"));
  }
  s->queue_count_ = topic->read_queues();
  // Orderly only for a FIFO group on a FIFO topic (as PopEngine decides).
  s->fifo_ = !s->broadcasting_ && deps.groups->Get(s->group_).fifo() &&
             topic->message_type() == nsv1::TOPIC_MESSAGE_TYPE_FIFO;
  return s;
}

void PushSession::Start() {
  std::weak_ptr<PushSession> weak = weak_from_this();
  {
    absl::MutexLock lock(&mu_);
    if (started_ || closed_) return;
    started_ = true;
    credits_ = initial_credits_;
    pushv1::ConsumeResponse subscribed;
    subscribed.mutable_subscribed()->set_consume_mode(broadcasting_ ? av1::CONSUME_MODE_BROADCASTING
                                                                    : av1::CONSUME_MODE_CLUSTERING);
    subscribed.mutable_subscribed()->set_broker_name(deps_.broker_name);
    subscribed.mutable_subscribed()->set_fifo(fifo_);
    subscribed.mutable_subscribed()->set_settle_credits(true);
    send_(EncodeMessage(subscribed));
  }
  // Listening before the first pop (the Assignment's), so no arrival after
  // it is missed.
  const uint64_t listen = deps_.arrivals->Listen({topic_, RetryTopic(key_)},
                                                 [weak](const std::string& topic, int32_t queue) {
                                                   if (auto self = weak.lock())
                                                     self->OnArrival(topic, queue);
                                                 });
  // Joining runs our listener (the first Assignment), which wakes the loop.
  const uint64_t member =
      deps_.members->Join(group_, topic_, client_id_, queue_count_, broadcasting_,
                          [weak](const std::vector<int32_t>& queues, int members) {
                            if (auto self = weak.lock()) self->OnAssignment(queues, members);
                          });
  bool closed_meanwhile;
  {
    absl::MutexLock lock(&mu_);
    member_ = member;
    listen_ = listen;
    closed_meanwhile = closed_;
  }
  if (closed_meanwhile) {
    deps_.members->Leave(member);
    deps_.arrivals->Unlisten(listen);
  }
  std::fprintf(stderr,
               "event=push_subscribed client=%s group=%s topic=%s mode=%s credits=%d "
               "ack_timeout=%s\n",
               client_id_.c_str(), group_.c_str(), topic_.c_str(),
               broadcasting_ ? "broadcasting" : "clustering", initial_credits_,
               absl::FormatDuration(ack_timeout_).c_str());
}

void PushSession::OnAssignment(const std::vector<int32_t>& queues, int members) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    queues_ = queues;
    // A lent queue that moved to another member: the loan ends (what the
    // consumer did not report is delivered again by its new owner).
    for (auto it = lent_.begin(); it != lent_.end();) {
      if (std::find(queues.begin(), queues.end(), it->first) != queues.end()) {
        ++it;
        continue;
      }
      pushv1::ConsumeResponse end;
      end.mutable_read_from()->set_queue_id(it->first);
      send_(EncodeMessage(end));
      it = lent_.erase(it);
    }
    pushv1::ConsumeResponse response;
    for (int32_t q : queues) response.mutable_assignment()->add_queue_ids(q);
    response.mutable_assignment()->set_members(members);
    send_(EncodeMessage(response));
    unread_all_ = true;  // new queues: read them all once
    WakeLocked();
  }
}

void PushSession::OnArrival(const std::string& topic, int32_t queue) {
  {
    absl::MutexLock lock(&mu_);
    // What was just sent is usually in the tail cache: pop it here, on the
    // thread that heard the arrival (the store's answer to the send), without
    // a hop to a worker. That pop makes no store call (Scope::memory_only);
    // whatever it leaves goes to a worker's Pump.
    if (!ArrivedLocked(topic, queue) || !StartRoundLocked()) return;
  }
  Pump(/*memory_only=*/true);
}

bool PushSession::ArrivedLocked(const std::string& topic, int32_t queue) {
  if (closed_) return false;
  if (topic != topic_) {
    unread_retry_ = true;
  } else if (queue == Arrivals::kAnyQueue) {
    unread_all_ = true;
  } else if (lent_.count(queue) > 0 ||
             std::find(queues_.begin(), queues_.end(), queue) == queues_.end()) {
    return false;  // not ours (another member's, or read elsewhere)
  } else {
    unread_.insert(queue);
  }
  return true;
}

absl::Status PushSession::Grant(int32_t messages, absl::string_view field) {
  {
    absl::MutexLock lock(&mu_);
    if (messages < 1 || messages > limits_.max_credits) {
      return Invalid(
          absl::StrCat(field, " is ", messages, " (allowed: 1..", limits_.max_credits, ")"));
    }
    if (credits_ + messages > limits_.max_credits) {
      return Invalid(absl::StrCat(field, "=", messages, " would leave ", credits_ + messages,
                                  " credits unused (max ", limits_.max_credits, ")"));
    }
    credits_ += messages;
    WakeLocked();
  }
  return absl::OkStatus();
}

void PushSession::Wake() {
  absl::MutexLock lock(&mu_);
  WakeLocked();
}

bool PushSession::StartRoundLocked() {
  // A running round looks at credits_ and the unread queues once more before
  // it stops, so while every round is running nothing needs a signal.
  if (closed_ || !started_ || rounds_ >= limits_.max_rounds) return false;
  if (!WorkLocked()) return false;
  rounds_++;
  return true;
}

void PushSession::WakeLocked() {
  if (StartRoundLocked()) deps_.executor->Submit([self = shared_from_this()] { self->Pump(); });
}

std::vector<int32_t> PushSession::FreeUnreadLocked() {
  if (unread_all_) {
    unread_.insert(queues_.begin(), queues_.end());
    unread_retry_ = true;
    unread_all_ = false;
  }
  std::vector<int32_t> free;
  for (auto it = unread_.begin(); it != unread_.end();) {
    if (std::find(queues_.begin(), queues_.end(), *it) == queues_.end()) {
      it = unread_.erase(it);  // not ours any more
      continue;
    }
    if (reading_.count(*it) == 0) free.push_back(*it);
    ++it;
  }
  return free;
}

bool PushSession::WorkLocked() {
  if (credits_ - reserved_ <= 0) return false;
  const bool free_queue = !FreeUnreadLocked().empty();  // first: it expands unread_all_
  return free_queue || (unread_retry_ && !reading_retry_);
}

void PushSession::Pump(bool memory_only) {
  int batch;
  std::vector<int32_t> assigned;
  std::vector<int32_t> lend_held;  // held for the lend check only
  PopEngine::Scope scope;
  uint64_t old_watch;
  bool another = false;
  bool check_lend;
  {
    absl::MutexLock lock(&mu_);
    if (closed_ || credits_ - reserved_ <= 0) {
      rounds_--;
      return;
    }
    batch = static_cast<int>(std::min<int64_t>(credits_ - reserved_, limits_.max_batch));
    reserved_ += batch;
    std::vector<int32_t> free = FreeUnreadLocked();
    // Leave half of the queues to a round of their own: a full round waits
    // on the store for its batch, and another one reads meanwhile.
    size_t take = free.size();
    if (!memory_only && rounds_ < limits_.max_rounds && take > 1) take = (take + 1) / 2;
    for (size_t i = 0; i < take; ++i) {
      scope.queues.push_back(free[i]);
      reading_.insert(free[i]);
      unread_.erase(free[i]);
    }
    scope.retry = unread_retry_ && !reading_retry_;
    if (scope.retry) {
      reading_retry_ = true;
      unread_retry_ = false;
    }
    scope.memory_only = memory_only;
    old_watch = std::exchange(watch_, 0);
    check_lend = !memory_only && rounds_ == 1 && deps_.read_advisor != nullptr &&
                 deps_.store != nullptr && follows_read_from_ && !broadcasting_ &&
                 deps_.clock->Now() >= lend_check_at_;
    if (check_lend) {
      lend_check_at_ = deps_.clock->Now() + limits_.lend_check;
      assigned = queues_;
      // No other round may pop a queue while it may be lent.
      for (int32_t q : assigned) {
        if (reading_.insert(q).second) lend_held.push_back(q);
      }
    }
    another = take < free.size() && StartRoundLocked();
  }
  if (another) deps_.executor->Submit([self = shared_from_this()] { self->Pump(); });
  if (old_watch != 0) deps_.arrivals->Unwatch(old_watch);
  if (check_lend) {
    LendColdQueues(assigned);
    absl::MutexLock lock(&mu_);
    for (int32_t q : lend_held) reading_.erase(q);
  }
  std::vector<int32_t> mine = scope.queues;
  scope.queues = NotLent(std::move(scope.queues));
  // Broadcasting members read every queue (their assignment); clustering
  // members their own.
  PopEngine::Unread unread;
  scope.stored = stored_messages_;
  absl::StatusOr<PopEngine::Popped> popped = PopEngine::Popped();
  if (!scope.queues.empty() || scope.retry) {
    popped = deps_.pop->PopScoped(key_, topic_, filter_, batch, ack_timeout_, scope, &unread);
  }
  PopEngine::Popped messages;
  if (popped.ok()) {
    messages = std::move(popped).value();
  } else {
    std::fprintf(stderr, "event=push_pop_failed group=%s topic=%s error=\"%s\"\n", key_.c_str(),
                 topic_.c_str(), std::string(popped.status().message()).c_str());
  }

  std::vector<std::string> orphans;
  {
    absl::MutexLock lock(&mu_);
    reserved_ -= batch;
    for (int32_t q : mine) reading_.erase(q);
    if (scope.retry) reading_retry_ = false;
    if (closed_) {
      rounds_--;
      for (const v2::Message& m : messages.messages) {
        orphans.push_back(m.system_properties().receipt_handle());
      }
      for (const StoredDelivery& d : messages.stored) orphans.push_back(d.receipt_handle);
    } else {
      if (messages.count() > 0) {
        const int64_t count = messages.count();
        credits_ -= count;
        int64_t bytes = 0;
        for (const v2::Message& m : messages.messages) {
          unsettled_.insert(m.system_properties().receipt_handle());
          bytes += static_cast<int64_t>(m.body().size());
        }
        for (const StoredDelivery& d : messages.stored) {
          unsettled_.insert(d.receipt_handle);
          bytes += static_cast<int64_t>(d.record.body().size());
        }
        for (auto& frame : EncodeDeliveries(std::move(messages), limits_.max_frame_bytes)) {
          send_(std::move(frame));
        }
        deps_.probe->OnPushed(topic_, group_, count, bytes);
      }
      // Pop again while it may find more: an arrival meanwhile, or a queue
      // not read to its end (a full batch, or a tag filter that skipped its
      // scan limit of records: every read makes progress). After a store
      // error everything is unread, but only an arrival or the park timeout
      // retries it (no spinning on a failing store).
      if (popped.ok()) {
        unread_.insert(unread.queues.begin(), unread.queues.end());
        unread_retry_ |= unread.retry;
      } else {
        unread_all_ = true;
      }
      if (popped.ok() && WorkLocked()) {
        deps_.executor->Submit([self = shared_from_this()] { self->Pump(); });
      } else {
        rounds_--;
        // The last round out parks with credits: re-read everything after
        // `park` even without an arrival. Without credits the next grant
        // wakes us.
        if (rounds_ == 0 && credits_ > 0 && watch_ == 0) {
          std::weak_ptr<PushSession> weak = weak_from_this();
          watch_ = deps_.arrivals->Watch({}, deps_.clock->Now() + limits_.park, [weak](bool) {
            if (auto self = weak.lock()) self->OnParkTimeout();
          });
        }
      }
    }
  }
  if (!orphans.empty()) Release(std::move(orphans));
}

void PushSession::OnParkTimeout() {
  absl::MutexLock lock(&mu_);
  unread_all_ = true;  // watch_ stays: the next Pump's Unwatch of it is a no-op
  WakeLocked();
}

void PushSession::Settle(pushv1::Settle settle) {
  {
    absl::MutexLock lock(&mu_);
    settles_.push_back(std::move(settle));
    if (settling_) return;  // the running ApplySettles takes it too
    settling_ = true;
  }
  deps_.executor->Submit([self = shared_from_this()] { self->ApplySettles(); });
}

void PushSession::ApplySettles() {
  std::vector<pushv1::Settle> settles;
  {
    absl::MutexLock lock(&mu_);
    settles.swap(settles_);
  }
  // The acks of every settle that queued up meanwhile in one AckBatch: one
  // offset commit per queue for all of them. Each settle still gets its own
  // SettleResult, once its acks are committed.
  std::vector<std::string> acks;
  std::vector<size_t> first_ack;
  for (const pushv1::Settle& settle : settles) {
    first_ack.push_back(acks.size());
    acks.insert(acks.end(), settle.acks().begin(), settle.acks().end());
  }
  first_ack.push_back(acks.size());
  const std::vector<absl::Status> statuses = deps_.pop->AckBatch(key_, acks);
  std::vector<pushv1::ConsumeResponse> responses;
  for (size_t s = 0; s < settles.size(); ++s) {
    pushv1::ConsumeResponse response;
    pushv1::SettleResult* result = response.mutable_settle_result();
    int settled = 0;
    for (size_t i = first_ack[s]; i < first_ack[s + 1]; ++i) {
      if (statuses[i].ok()) {
        ++settled;
        continue;
      }
      auto* failure = result->add_failures();
      failure->set_receipt_handle(acks[i]);
      failure->set_message(std::string(statuses[i].message()));
    }
    for (const pushv1::Nack& nack : settles[s].nacks()) {
      absl::Duration delay =
          nack.has_retry_delay() ? FromProtoDuration(nack.retry_delay()) : absl::ZeroDuration();
      absl::Status status;
      if (delay < absl::ZeroDuration() || delay > limits_.max_retry_delay) {
        status = Invalid(absl::StrCat("nack.retry_delay is ", absl::FormatDuration(delay), " (",
                                      Range(absl::ZeroDuration(), limits_.max_retry_delay), ")"));
      } else {
        if (delay == absl::ZeroDuration()) delay = limits_.default_retry_delay;
        // Its invisible time now ends after the delay; the reviver then
        // sends it to the retry topic with attempt + 1 (or to the DLQ).
        status = deps_.pop->ChangeInvisible(key_, nack.receipt_handle(), delay).status();
      }
      if (status.ok()) {
        ++settled;
      } else {
        auto* failure = result->add_failures();
        failure->set_receipt_handle(nack.receipt_handle());
        failure->set_message(std::string(status.message()));
      }
    }
    result->set_settled(settled);
    responses.push_back(std::move(response));
  }
  absl::MutexLock lock(&mu_);
  for (const std::string& h : acks) unsettled_.erase(h);
  for (const pushv1::Settle& settle : settles) {
    for (const pushv1::Nack& nack : settle.nacks()) unsettled_.erase(nack.receipt_handle());
  }
  if (!closed_) {
    for (pushv1::ConsumeResponse& response : responses) send_(EncodeMessage(response));
  }
  if (settles_.empty()) {
    settling_ = false;
  } else {
    deps_.executor->Submit([self = shared_from_this()] { self->ApplySettles(); });
  }
}

void PushSession::LendColdQueues(const std::vector<int32_t>& queues) {
  if (!deps_.read_advisor->MaySuggestSlave()) return;  // spare the record reads
  if (fifo_) return;  // a slave reader would not keep one in flight per message group
  for (int32_t q : queues) {
    {
      absl::MutexLock lock(&mu_);
      if (closed_ || lent_.count(q) > 0) continue;
    }
    absl::StatusOr<int64_t> next = deps_.pop->NextOffset(key_, topic_, q);
    if (!next.ok()) continue;
    // Where the next message lies in the commit log (one record).
    store::v1::ReadRequest read;
    read.set_topic(topic_);
    read.set_queue_id(q);
    read.set_offset(*next);
    read.set_max_messages(1);
    read.set_max_bytes(1);
    auto record = deps_.store->Read(read);
    if (!record.ok() || record->records_size() == 0) continue;
    std::optional<ha::ReadAdvice> advice =
        deps_.read_advisor->AfterRead(record->records(0).commit_log_offset());
    if (!advice.has_value() || advice->target != ha::Role::kSlave) continue;
    absl::MutexLock lock(&mu_);
    if (closed_ || std::find(queues_.begin(), queues_.end(), q) == queues_.end()) continue;
    lent_[q] = advice->broker_id;
    pushv1::ConsumeResponse response;
    response.mutable_read_from()->set_queue_id(q);
    response.mutable_read_from()->set_broker_id(advice->broker_id);
    response.mutable_read_from()->set_offset(*next);
    send_(EncodeMessage(response));
    deps_.probe->OnReadSuggestion(ha::RoleName(advice->target));
    std::fprintf(stderr,
                 "event=push_queue_lent client=%s group=%s topic=%s queue=%d offset=%lld "
                 "broker_id=%lld\n",
                 client_id_.c_str(), key_.c_str(), topic_.c_str(), q, static_cast<long long>(*next),
                 static_cast<long long>(advice->broker_id));
  }
}

std::vector<int32_t> PushSession::NotLent(std::vector<int32_t> queues) {
  absl::MutexLock lock(&mu_);
  if (lent_.empty()) return queues;
  queues.erase(std::remove_if(queues.begin(), queues.end(),
                              [this](int32_t q)
                                  ABSL_NO_THREAD_SAFETY_ANALYSIS { return lent_.count(q) > 0; }),
               queues.end());
  return queues;
}

absl::Status PushSession::OnQueueProgress(const pushv1::QueueProgress& progress) {
  if (progress.offset() < 0) {
    return Invalid(absl::StrCat("queue_progress.offset is ", progress.offset(), " (must be >= 0)"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (closed_ || lent_.count(progress.queue_id()) == 0) return absl::OkStatus();  // stale
  }
  deps_.executor->Submit([self = shared_from_this(), progress] {
    absl::Status moved =
        self->deps_.pop->MoveUpTo(self->key_, self->topic_, progress.queue_id(), progress.offset());
    if (!moved.ok()) {
      std::fprintf(stderr, "event=push_progress_failed group=%s topic=%s queue=%d error=\"%s\"\n",
                   self->key_.c_str(), self->topic_.c_str(), progress.queue_id(),
                   std::string(moved.message()).c_str());
    }
    if (!progress.returned()) return;
    std::fprintf(stderr, "event=push_queue_returned group=%s topic=%s queue=%d offset=%lld\n",
                 self->key_.c_str(), self->topic_.c_str(), progress.queue_id(),
                 static_cast<long long>(progress.offset()));
    absl::MutexLock lock(&self->mu_);
    self->lent_.erase(progress.queue_id());
    self->unread_.insert(progress.queue_id());
    self->WakeLocked();
  });
  return absl::OkStatus();
}

void PushSession::Release(std::vector<std::string> handles) {
  if (handles.empty()) return;
  deps_.executor->Submit([self = shared_from_this(), handles = std::move(handles)] {
    int released = 0;
    for (const std::string& h : handles) {
      // Stale handles (acked by another stream, or expired) are fine to skip.
      if (self->deps_.pop->ChangeInvisible(self->key_, h, absl::ZeroDuration()).ok()) ++released;
    }
    std::fprintf(stderr, "event=push_released client=%s group=%s topic=%s messages=%d\n",
                 self->client_id_.c_str(), self->key_.c_str(), self->topic_.c_str(), released);
  });
}

void PushSession::Close() {
  std::vector<std::string> unsettled;
  uint64_t watch;
  uint64_t listen;
  uint64_t member;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    unsettled.assign(unsettled_.begin(), unsettled_.end());
    unsettled_.clear();
    watch = std::exchange(watch_, 0);
    listen = std::exchange(listen_, 0);
    member = member_;
  }
  if (watch != 0) deps_.arrivals->Unwatch(watch);
  if (listen != 0) deps_.arrivals->Unlisten(listen);
  if (member != 0) deps_.members->Leave(member);
  std::fprintf(stderr, "event=push_closed client=%s group=%s topic=%s unsettled=%zu\n",
               client_id_.c_str(), group_.c_str(), topic_.c_str(), unsettled.size());
  Release(std::move(unsettled));
}

}  // namespace apogee::broker
