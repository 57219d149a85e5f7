#include "services/broker/query/message_query.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/broker/message/codec.h"
#include "services/common/clock/proto_time.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {
namespace {

namespace av1 = ::apogee::admin::v1;

// Store time order, then position, so results are stable.
bool StoredBefore(const sv1::StoredRecord& a, const sv1::StoredRecord& b) {
  const absl::Time ta = FromProtoTimestamp(a.store_time());
  const absl::Time tb = FromProtoTimestamp(b.store_time());
  if (ta != tb) return ta < tb;
  return a.commit_log_offset() < b.commit_log_offset();
}

}  // namespace

absl::StatusOr<av1::MessageView> StoredMessageView(const sv1::StoredRecord& record) {
  APOGEE_ASSIGN_OR_RETURN(v2::Message message, FromStoreRecord(record));
  const bool has_born_time = message.system_properties().has_born_timestamp();
  av1::MessageView view = ToMessageView(std::move(message));
  view.set_topic(record.topic());  // where it is stored (a retry or DLQ topic too)
  if (!has_born_time && record.has_born_time()) *view.mutable_born_time() = record.born_time();
  view.set_commit_log_offset(record.commit_log_offset());
  return view;
}

absl::StatusOr<av1::GetMessageResponse> MessageQuery::Get(const av1::GetMessageRequest& request) {
  if (request.message_id().empty()) {
    return absl::InvalidArgumentError("message_id is empty (want the id a producer sent)");
  }
  if (!request.topic().empty()) APOGEE_RETURN_IF_ERROR(topics_->Get(request.topic()).status());
  APOGEE_ASSIGN_OR_RETURN(std::vector<sv1::StoredRecord> records,
                          store_->LookupById(request.message_id()));
  av1::GetMessageResponse response;
  for (const sv1::StoredRecord& record : records) {
    if (!request.topic().empty() && record.topic() != request.topic()) continue;
    APOGEE_ASSIGN_OR_RETURN(*response.add_messages(), StoredMessageView(record));
  }
  if (response.messages_size() == 0) {
    return absl::NotFoundError(absl::StrCat("no message with id \"", request.message_id(),
                                            "\" in topic \"", request.topic(), "\""));
  }
  return response;
}

absl::Status MessageQuery::ReadRange(const std::string& topic, int32_t queue, absl::Time from,
                                     absl::Time to, int limit,
                                     std::vector<sv1::StoredRecord>* out) {
  APOGEE_ASSIGN_OR_RETURN(int64_t offset, store_->LookupOffsetByTime(topic, queue, from));
  int found = 0;
  while (found < limit) {
    sv1::ReadRequest read;
    read.set_topic(topic);
    read.set_queue_id(queue);
    read.set_offset(offset);
    read.set_max_messages(std::min(limit - found, 256));
    read.set_max_bytes(8 * 1024 * 1024);
    auto batch = store_->Read(read);
    if (!batch.ok() && batch.status().code() == absl::StatusCode::kOutOfRange) {
      // Retention moved the queue's start past `offset`: continue from there.
      APOGEE_ASSIGN_OR_RETURN(auto offsets, store_->GetQueueOffsets(topic, queue));
      if (offsets.min_offset() <= offset) return batch.status();
      offset = offsets.min_offset();
      continue;
    }
    APOGEE_RETURN_IF_ERROR(batch.status());
    if (batch->records_size() == 0) return absl::OkStatus();
    for (sv1::StoredRecord& record : *batch->mutable_records()) {
      const absl::Time stored = FromProtoTimestamp(record.store_time());
      if (stored >= to) return absl::OkStatus();  // store times only grow within a queue
      if (stored < from) continue;
      out->push_back(std::move(record));
      ++found;
    }
    offset = batch->next_offset();
  }
  return absl::OkStatus();
}

absl::StatusOr<av1::FindMessagesResponse> MessageQuery::Find(
    const av1::FindMessagesRequest& request, absl::Time now) {
  const int max = request.max_messages() == 0 ? kDefaultFindMessages : request.max_messages();
  if (max < 1 || max > kMaxFindMessages) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_messages=", request.max_messages(), " is out of range (allowed: 1..",
                     kMaxFindMessages, "; 0 means ", kDefaultFindMessages, ")"));
  }
  if (request.topic().empty()) {
    return absl::InvalidArgumentError("topic is empty (messages are found within one topic)");
  }
  APOGEE_ASSIGN_OR_RETURN(TopicConfig config, topics_->Get(request.topic()));
  const absl::Time to = request.has_to() ? FromProtoTimestamp(request.to()) : now;
  std::vector<sv1::StoredRecord> records;
  if (!request.key().empty()) {
    // One more than asked, to know whether the answer is truncated.
    sv1::LookupByKeyRequest lookup;
    lookup.set_topic(request.topic());
    lookup.set_key(request.key());
    lookup.set_max_results(max + 1);
    if (request.has_from()) *lookup.mutable_begin_time() = request.from();
    if (request.has_to()) *lookup.mutable_end_time() = request.to();
    auto found = store_->LookupByKey(lookup);
    if (!found.ok() && found.status().code() != absl::StatusCode::kNotFound) {
      return found.status();
    }
    if (found.ok()) records.assign(found->records().begin(), found->records().end());
  } else {
    if (!request.has_from()) {
      return absl::InvalidArgumentError(
          "neither key nor from is set (find by key, or by store time range [from, to))");
    }
    const absl::Time from = FromProtoTimestamp(request.from());
    if (from >= to) {
      return absl::InvalidArgumentError(absl::StrCat(
          "time range [", absl::FormatTime(absl::RFC3339_full, from, absl::UTCTimeZone()), ", ",
          absl::FormatTime(absl::RFC3339_full, to, absl::UTCTimeZone()),
          ") is empty (from must be before to)"));
    }
    const int32_t queues = std::max(config.read_queues(), config.write_queues());
    for (int32_t q = 0; q < queues; ++q) {
      APOGEE_RETURN_IF_ERROR(ReadRange(request.topic(), q, from, to, max + 1, &records));
    }
  }
  std::sort(records.begin(), records.end(), StoredBefore);
  av1::FindMessagesResponse response;
  response.set_truncated(static_cast<int>(records.size()) > max);
  if (response.truncated()) records.resize(max);
  for (const sv1::StoredRecord& record : records) {
    APOGEE_ASSIGN_OR_RETURN(*response.add_messages(), StoredMessageView(record));
  }
  return response;
}

}  // namespace apogee::broker
