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

pushv1::PushedMessage ToPushedMessage(v2::Message message) {
  pushv1::PushedMessage out;
  out.set_delivery_attempt(std::max(1, message.system_properties().delivery_attempt()));
  out.set_receipt_handle(message.system_properties().receipt_handle());
  out.set_message_group(message.system_properties().message_group());
  if (message.system_properties().has_delivery_timestamp()) {
    *out.mutable_delivery_time() = message.system_properties().delivery_timestamp();
  }
  *out.mutable_message() = ToMessageView(std::move(message));
  return out;
}

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
    send_(std::move(subscribed));
  }
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
    closed_meanwhile = closed_;
  }
  if (closed_meanwhile) deps_.members->Leave(member);
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
      send_(std::move(end));
      it = lent_.erase(it);
    }
    pushv1::ConsumeResponse response;
    for (int32_t q : queues) response.mutable_assignment()->add_queue_ids(q);
    response.mutable_assignment()->set_members(members);
    send_(std::move(response));
  }
  Wake();
}

absl::Status PushSession::Grant(int32_t messages) {
  {
    absl::MutexLock lock(&mu_);
    if (messages < 1 || messages > limits_.max_credits) {
      return Invalid(absl::StrCat("credit.messages is ", messages, " (allowed: 1..",
                                  limits_.max_credits, ")"));
    }
    if (credits_ + messages > limits_.max_credits) {
      return Invalid(absl::StrCat("credit.messages=", messages, " would leave ",
                                  credits_ + messages, " credits unused (max ", limits_.max_credits,
                                  ")"));
    }
    credits_ += messages;
  }
  Wake(/*credits_only=*/true);
  return absl::OkStatus();
}

void PushSession::Wake(bool credits_only) {
  absl::MutexLock lock(&mu_);
  if (closed_ || !started_) return;
  if (pumping_) {
    again_ = true;
    return;
  }
  if (credits_only && starved_) return;
  starved_ = false;
  if (credits_ <= 0) return;
  pumping_ = true;
  deps_.executor->Submit([self = shared_from_this()] { self->Pump(); });
}

void PushSession::Pump() {
  bool check_lend;
  int batch;
  std::vector<int32_t> queues;
  uint64_t old_watch;
  {
    absl::MutexLock lock(&mu_);
    again_ = false;
    if (closed_ || credits_ <= 0) {
      pumping_ = false;
      return;
    }
    batch = static_cast<int>(std::min<int64_t>(credits_, limits_.max_batch));
    queues = queues_;
    old_watch = std::exchange(watch_, 0);
    check_lend = deps_.read_advisor != nullptr && deps_.store != nullptr && follows_read_from_ &&
                 !broadcasting_ && deps_.clock->Now() >= lend_check_at_;
    if (check_lend) lend_check_at_ = deps_.clock->Now() + limits_.lend_check;
  }
  if (old_watch != 0) deps_.arrivals->Unwatch(old_watch);
  if (check_lend) LendColdQueues(queues);
  queues = NotLent(std::move(queues));
  // Watch before popping, so an arrival between an empty pop and parking
  // is not missed (it sets again_).
  std::weak_ptr<PushSession> weak = weak_from_this();
  const uint64_t watch = deps_.arrivals->Watch({topic_, RetryTopic(key_)},
                                               deps_.clock->Now() + limits_.park, [weak](bool) {
                                                 if (auto self = weak.lock()) self->Wake();
                                               });
  // Broadcasting members read every queue; clustering members their own.
  bool drained = false;
  auto popped = deps_.pop->Pop(key_, topic_, filter_, batch, ack_timeout_,
                               broadcasting_ ? nullptr : &queues, &drained);
  std::vector<v2::Message> messages;
  if (popped.ok()) {
    messages = std::move(popped).value();
  } else {
    drained = true;  // park; the watch retries after `park`
    std::fprintf(stderr, "event=push_pop_failed group=%s topic=%s error=\"%s\"\n", key_.c_str(),
                 topic_.c_str(), std::string(popped.status().message()).c_str());
  }

  std::vector<std::string> orphans;
  bool keep_watch = false;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) {
      pumping_ = false;
      for (const v2::Message& m : messages) {
        orphans.push_back(m.system_properties().receipt_handle());
      }
    } else {
      if (!messages.empty()) {
        credits_ -= static_cast<int64_t>(messages.size());
        // As few frames as fit: a frame closes before it would pass
        // max_frame_bytes (a message alone may).
        pushv1::ConsumeResponse response;
        int64_t bytes = 0, frame_bytes = 0;
        for (v2::Message& m : messages) {
          unsettled_.insert(m.system_properties().receipt_handle());
          const auto size = static_cast<int64_t>(m.ByteSizeLong());
          if (frame_bytes > 0 && frame_bytes + size > limits_.max_frame_bytes) {
            send_(std::exchange(response, pushv1::ConsumeResponse()));
            frame_bytes = 0;
          }
          frame_bytes += size;
          bytes += static_cast<int64_t>(m.body().size());
          *response.mutable_deliveries()->add_messages() = ToPushedMessage(std::move(m));
        }
        send_(std::move(response));
        deps_.probe->OnPushed(topic_, group_, static_cast<int64_t>(messages.size()), bytes);
      }
      // Pop again while it may find more: something changed meanwhile, or a
      // queue was not read to its end (a full batch, or a tag filter that
      // skipped its scan limit of records: every read makes progress).
      const bool more = again_ || (!drained && credits_ > 0);
      if (more && credits_ > 0) {
        deps_.executor->Submit([self = shared_from_this()] { self->Pump(); });
      } else {
        pumping_ = false;
        // Parked with credits: the watch (set before popping, so nothing
        // that arrived since is missed) wakes us on an arrival or after
        // `park`. Without credits the next grant does.
        keep_watch = credits_ > 0;
        starved_ = keep_watch;
        if (keep_watch) watch_ = watch;
      }
    }
  }
  if (!keep_watch) deps_.arrivals->Unwatch(watch);
  if (!orphans.empty()) Release(std::move(orphans));
}

void PushSession::Settle(pushv1::Settle settle) {
  deps_.executor->Submit([self = shared_from_this(), settle = std::move(settle)] {
    pushv1::ConsumeResponse response;
    pushv1::SettleResult* result = response.mutable_settle_result();
    int settled = 0;
    std::vector<std::string> acks(settle.acks().begin(), settle.acks().end());
    std::vector<absl::Status> statuses = self->deps_.pop->AckBatch(self->key_, acks);
    for (size_t i = 0; i < acks.size(); ++i) {
      if (statuses[i].ok()) {
        ++settled;
        continue;
      }
      auto* failure = result->add_failures();
      failure->set_receipt_handle(acks[i]);
      failure->set_message(std::string(statuses[i].message()));
    }
    for (const pushv1::Nack& nack : settle.nacks()) {
      absl::Duration delay =
          nack.has_retry_delay() ? FromProtoDuration(nack.retry_delay()) : absl::ZeroDuration();
      absl::Status status;
      if (delay < absl::ZeroDuration() || delay > self->limits_.max_retry_delay) {
        status =
            Invalid(absl::StrCat("nack.retry_delay is ", absl::FormatDuration(delay), " (",
                                 Range(absl::ZeroDuration(), self->limits_.max_retry_delay), ")"));
      } else {
        if (delay == absl::ZeroDuration()) delay = self->limits_.default_retry_delay;
        // Its invisible time now ends after the delay; the reviver then
        // sends it to the retry topic with attempt + 1 (or to the DLQ).
        status =
            self->deps_.pop->ChangeInvisible(self->key_, nack.receipt_handle(), delay).status();
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
    absl::MutexLock lock(&self->mu_);
    for (const std::string& h : acks) self->unsettled_.erase(h);
    for (const pushv1::Nack& nack : settle.nacks()) self->unsettled_.erase(nack.receipt_handle());
    if (!self->closed_) self->send_(std::move(response));
  });
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
    send_(std::move(response));
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
    {
      absl::MutexLock lock(&self->mu_);
      self->lent_.erase(progress.queue_id());
    }
    std::fprintf(stderr, "event=push_queue_returned group=%s topic=%s queue=%d offset=%lld\n",
                 self->key_.c_str(), self->topic_.c_str(), progress.queue_id(),
                 static_cast<long long>(progress.offset()));
    self->Wake();
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
  uint64_t member;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    unsettled.assign(unsettled_.begin(), unsettled_.end());
    unsettled_.clear();
    watch = std::exchange(watch_, 0);
    member = member_;
  }
  if (watch != 0) deps_.arrivals->Unwatch(watch);
  if (member != 0) deps_.members->Leave(member);
  std::fprintf(stderr, "event=push_closed client=%s group=%s topic=%s unsettled=%zu\n",
               client_id_.c_str(), group_.c_str(), topic_.c_str(), unsettled.size());
  Release(std::move(unsettled));
}

}  // namespace apogee::broker
