#include "services/broker/offset/consumer_progress.h"

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {
namespace {

namespace av1 = ::apogee::admin::v1;

// Age of the message at `offset` (the oldest one not consumed); zero when
// it cannot be read.
absl::Duration AgeAt(StoreClient* store, const std::string& topic, int32_t queue, int64_t offset,
                     absl::Time now) {
  sv1::ReadRequest read;
  read.set_topic(topic);
  read.set_queue_id(queue);
  read.set_offset(offset);
  read.set_max_messages(1);
  read.set_max_bytes(1);
  auto oldest = store->Read(read);
  if (!oldest.ok() || oldest->records_size() == 0) return absl::ZeroDuration();
  return std::max(absl::ZeroDuration(), now - FromProtoTimestamp(oldest->records(0).store_time()));
}

}  // namespace

std::map<std::pair<std::string, std::string>, TopicLag> ConsumerProgress::LagByGroupTopic() {
  std::map<std::pair<std::string, std::string>, TopicLag> lag;
  const absl::Time now = clock_->Now();
  for (const PopEngine::QueueProgress& p : pop_->Progress()) {
    auto offsets = store_->GetQueueOffsets(p.topic, p.queue_id);
    if (!offsets.ok()) continue;
    TopicLag& total = lag[{p.group, p.topic}];
    const int64_t behind = std::max<int64_t>(0, offsets->max_offset() - p.committed);
    total.messages += behind;
    if (behind == 0) continue;
    total.oldest_unconsumed =
        std::max(total.oldest_unconsumed, AgeAt(store_, p.topic, p.queue_id, p.committed, now));
  }
  return lag;
}

int64_t ConsumerProgress::StartOffset(const std::string& topic,
                                      const sv1::GetQueueOffsetsResponse& offsets) const {
  return from_earliest_ || IsRetryTopic(topic) ? offsets.min_offset() : offsets.max_offset();
}

absl::StatusOr<std::map<std::string, std::string>> ConsumerProgress::Members(
    const std::string& group) {
  std::map<std::string, std::string> members;
  if (groups_->Get(group).consume_mode() != av1::CONSUME_MODE_BROADCASTING) {
    members[group] = "";
    return members;
  }
  // Members that made progress (connected or not) ...
  const std::string member_prefix = absl::StrCat(group, "%");
  const size_t member_length = groups_->ProgressKey(group, "").size();
  APOGEE_ASSIGN_OR_RETURN(sv1::ListOffsetsResponse stored, store_->ListOffsets(""));
  for (const sv1::ConsumerOffset& o : stored.offsets()) {
    if (o.group().size() == member_length && absl::StartsWith(o.group(), member_prefix)) {
      members.emplace(o.group(), "");
    }
  }
  for (const PopEngine::QueueProgress& p : pop_->Progress()) {
    if (p.group.size() == member_length && absl::StartsWith(p.group, member_prefix)) {
      members.emplace(p.group, "");
    }
  }
  // ... and the connected ones, whose client ids we know.
  for (const std::string& client_id : clients_->ClientsOfGroup(group)) {
    members[groups_->ProgressKey(group, client_id)] = client_id;
  }
  return members;
}

absl::StatusOr<std::map<ConsumerProgress::QueueKey, ConsumerProgress::Position>>
ConsumerProgress::Positions(const std::string& key) {
  std::map<QueueKey, Position> positions;
  APOGEE_ASSIGN_OR_RETURN(sv1::ListOffsetsResponse stored, store_->ListOffsets(key));
  for (const sv1::ConsumerOffset& o : stored.offsets()) {
    Position& p = positions[{o.topic(), o.queue_id()}];
    p.committed = o.offset();
    if (o.has_commit_time()) {
      p.commit_time_ms = absl::ToUnixMillis(FromProtoTimestamp(o.commit_time()));
    }
  }
  // The PopEngine's cursors are fresher (a failed commit is retried later).
  for (const PopEngine::QueueProgress& q : pop_->Progress()) {
    if (q.group != key) continue;
    Position& p = positions[{q.topic, q.queue_id}];
    p.committed = q.committed;
    p.in_flight = q.in_flight;
    p.busy_message_groups = q.busy_message_groups;
    p.waiting = q.waiting;
  }
  return positions;
}

absl::StatusOr<av1::GetGroupProgressResponse> ConsumerProgress::Get(const std::string& group,
                                                                    const std::string& topic) {
  APOGEE_RETURN_IF_ERROR(ValidateGroupName("group", group));
  int32_t topic_queues = 0;
  if (!topic.empty()) {
    APOGEE_ASSIGN_OR_RETURN(TopicConfig config, topics_->Get(topic));
    topic_queues = std::max(config.read_queues(), config.write_queues());
  }
  av1::GetGroupProgressResponse response;
  response.set_group(group);
  response.set_consume_mode(groups_->Get(group).consume_mode());
  APOGEE_ASSIGN_OR_RETURN(auto members, Members(group));
  for (const auto& [key, client_id] : members) {
    APOGEE_ASSIGN_OR_RETURN(auto positions, Positions(key));
    std::set<QueueKey> queues;
    for (const auto& [queue, position] : positions) {
      if (topic.empty() || queue.first == topic) queues.insert(queue);
    }
    for (int32_t q = 0; q < topic_queues; ++q) queues.insert({topic, q});
    for (const QueueKey& queue : queues) {
      APOGEE_ASSIGN_OR_RETURN(sv1::GetQueueOffsetsResponse offsets,
                              store_->GetQueueOffsets(queue.first, queue.second));
      auto found = positions.find(queue);
      const Position position = found == positions.end() ? Position{} : found->second;
      av1::QueueProgress* out = response.add_queues();
      out->set_topic(queue.first);
      out->set_queue_id(queue.second);
      out->set_committed_offset(position.committed >= 0 ? position.committed
                                                        : StartOffset(queue.first, offsets));
      out->set_max_offset(offsets.max_offset());
      out->set_lag(std::max<int64_t>(0, out->max_offset() - out->committed_offset()));
      if (position.commit_time_ms > 0) {
        *out->mutable_last_consume_time() =
            ToProtoTimestamp(absl::FromUnixMillis(position.commit_time_ms));
      }
      out->set_in_flight(position.in_flight);
      out->set_busy_message_groups(position.busy_message_groups);
      out->set_waiting(position.waiting);
      out->set_client_id(client_id);
      if (key != group) out->set_progress_key(key);
      response.set_lag(response.lag() + out->lag());
    }
  }
  return response;
}

absl::StatusOr<av1::ResetOffsetResponse> ConsumerProgress::Reset(
    const av1::ResetOffsetRequest& request) {
  APOGEE_RETURN_IF_ERROR(ValidateGroupName("group", request.group()));
  APOGEE_ASSIGN_OR_RETURN(TopicConfig config, topics_->Get(request.topic()));
  const int32_t queue_count = std::max(config.read_queues(), config.write_queues());
  if (request.target_case() == av1::ResetOffsetRequest::TARGET_NOT_SET) {
    return absl::InvalidArgumentError(
        absl::StrCat("reset of group \"", request.group(), "\" on topic \"", request.topic(),
                     "\" names no target (set to_time or to_offset)"));
  }
  if (request.target_case() == av1::ResetOffsetRequest::kToOffset && request.to_offset() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("to_offset=", request.to_offset(), " is negative (allowed: >= 0)"));
  }
  std::vector<int32_t> queues(request.queue_ids().begin(), request.queue_ids().end());
  for (int32_t q : queues) {
    if (q < 0 || q >= queue_count) {
      return absl::InvalidArgumentError(
          absl::StrCat("queue_ids entry ", q, " is out of range for topic \"", request.topic(),
                       "\" (allowed: 0..", queue_count - 1, ")"));
    }
  }
  if (queues.empty()) {
    for (int32_t q = 0; q < queue_count; ++q) queues.push_back(q);
  }
  APOGEE_ASSIGN_OR_RETURN(auto members, Members(request.group()));
  std::map<std::string, std::map<QueueKey, Position>> before;
  for (const auto& [key, client_id] : members) {
    APOGEE_ASSIGN_OR_RETURN(before[key], Positions(key));
  }
  av1::ResetOffsetResponse response;
  for (int32_t q : queues) {
    APOGEE_ASSIGN_OR_RETURN(sv1::GetQueueOffsetsResponse offsets,
                            store_->GetQueueOffsets(request.topic(), q));
    int64_t target;
    if (request.has_to_time()) {
      APOGEE_ASSIGN_OR_RETURN(
          target,
          store_->LookupOffsetByTime(request.topic(), q, FromProtoTimestamp(request.to_time())));
    } else {
      target = request.to_offset();
    }
    target = std::clamp(target, offsets.min_offset(), offsets.max_offset());
    for (const auto& [key, client_id] : members) {
      auto found = before[key].find({request.topic(), q});
      const int64_t old_offset = found == before[key].end() ? -1 : found->second.committed;
      APOGEE_RETURN_IF_ERROR(pop_->ResetCursor(key, request.topic(), q, target));
      av1::OffsetChange* change = response.add_changes();
      change->set_queue_id(q);
      change->set_old_offset(old_offset);
      change->set_new_offset(target);
      change->set_client_id(client_id);
      if (key != request.group()) change->set_progress_key(key);
    }
  }
  return response;
}

}  // namespace apogee::broker
