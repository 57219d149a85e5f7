#include "services/store/service/record_codec.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"
#include "services/store/io/coding.h"

namespace apogee::store {

uint32_t RecordBodyLimit(uint32_t max_message_body) {
  return max_message_body + static_cast<uint32_t>(kRecordHeadroomBytes);
}

uint64_t TagHash(absl::string_view tag) {
  if (tag.empty()) return 0;
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : tag) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h == 0 ? 1 : h;  // 0 means "no tag"
}

RecordInput ToRecordInput(sv1::AppendRecord* record) {
  RecordInput in;
  in.topic = std::move(*record->mutable_topic());
  in.queue_id = record->queue_id();
  in.message_id = std::move(*record->mutable_message_id());
  in.keys.reserve(record->keys_size());
  for (std::string& key : *record->mutable_keys()) in.keys.push_back(std::move(key));
  in.tags_hash = TagHash(record->tag());
  in.tag = std::move(*record->mutable_tag());
  in.born_timestamp_ms = record->has_born_time() ? ToMillis(record->born_time()) : 0;
  in.flags = record->flags();
  in.body = std::move(*record->mutable_body());
  if (record->kind() == sv1::RECORD_TIMER) {
    // Kept in the system topic until due; the client's queue is the target.
    in.ext.kind = RecordKind::kTimer;
    in.ext.at_ms = record->has_deliver_time() ? ToMillis(record->deliver_time()) : 0;
    in.ext.target_topic = std::move(in.topic);
    in.ext.target_queue = in.queue_id;
    in.topic = kTimerTopic;
    in.queue_id = 0;
  } else if (record->kind() == sv1::RECORD_HALF) {
    // Kept, invisible, in the half topic until resolved (message-types.md §3).
    in.ext.kind = RecordKind::kHalf;
    in.ext.at_ms = record->has_check_time() ? ToMillis(record->check_time()) : 0;
    in.ext.target_topic = std::move(in.topic);
    in.ext.target_queue = in.queue_id;
    in.topic = kTransHalfTopic;
    in.queue_id = 0;
  }
  return in;
}

absl::Status CheckAppendKind(const sv1::AppendRecord& record, int index) {
  if (record.kind() == sv1::RECORD_NORMAL || record.kind() == sv1::RECORD_TIMER ||
      record.kind() == sv1::RECORD_HALF) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("records[", index, "].kind ", sv1::RecordKind_Name(record.kind()),
                   " cannot be appended (allowed: RECORD_NORMAL, RECORD_TIMER, RECORD_HALF; the "
                   "store writes the other kinds itself)"));
}

absl::StatusOr<UnpackedBody> UnpackBody(absl::string_view stored) {
  if (stored.size() < 3 || static_cast<uint8_t>(stored[0]) != kEnvelopeVersion) {
    return absl::DataLossError(
        absl::StrCat("stored body of ", stored.size(),
                     " bytes has no tag envelope (was the version-1 record written through the "
                     "service?)"));
  }
  const size_t tag_length = coding::GetFixed16LE(stored.data() + 1);
  if (tag_length > stored.size() - 3) {
    return absl::DataLossError(absl::StrCat("stored body envelope claims a ", tag_length,
                                            "-byte tag but only ", stored.size() - 3,
                                            " bytes follow"));
  }
  return UnpackedBody{stored.substr(3, tag_length), stored.substr(3 + tag_length)};
}

absl::StatusOr<UnpackedBody> TagAndBody(const RecordView& v) {
  if (v.version() != 1) return UnpackedBody{v.tag(), v.body()};
  absl::StatusOr<UnpackedBody> body = UnpackBody(v.body());
  if (!body.ok()) {
    return absl::DataLossError(absl::StrCat("record at commit offset ", v.commit_offset(), " (",
                                            v.topic(), "/", v.queue_id(), "@", v.queue_offset(),
                                            "): ", body.status().message()));
  }
  return body;
}

absl::Status ToProto(const StoredRecord& record, sv1::StoredRecord* out) {
  const RecordView v = record.view();
  APOGEE_ASSIGN_OR_RETURN(const UnpackedBody body, TagAndBody(v));
  out->set_topic(std::string(v.topic()));
  out->set_queue_id(v.queue_id());
  out->set_queue_offset(v.queue_offset());
  out->set_commit_log_offset(v.commit_offset());
  out->set_message_id(std::string(v.message_id()));
  for (absl::string_view key : v.keys()) out->add_keys(std::string(key));
  out->set_tag(std::string(body.tag));
  if (v.born_timestamp_ms() != 0) *out->mutable_born_time() = FromMillis(v.born_timestamp_ms());
  *out->mutable_store_time() = FromMillis(v.store_timestamp_ms());
  out->set_flags(v.flags());
  out->set_body(std::string(body.body));
  if (v.kind() != RecordKind::kNormal) {
    out->set_kind(static_cast<sv1::RecordKind>(v.kind()));
    out->set_target_topic(std::string(v.target_topic()));
    out->set_target_queue(v.target_queue());
    if (v.at_ms() != 0) *out->mutable_at_time() = FromMillis(v.at_ms());
    out->set_subject_offset(v.subject());
    out->set_check_count(static_cast<int32_t>(v.count()));
  }
  return absl::OkStatus();
}

int64_t ToMillis(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1'000'000;
}

google::protobuf::Timestamp FromMillis(int64_t ms) {
  google::protobuf::Timestamp t;
  int64_t seconds = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    seconds -= 1;
    millis += 1000;
  }
  t.set_seconds(seconds);
  t.set_nanos(static_cast<int32_t>(millis * 1'000'000));
  return t;
}

}  // namespace apogee::store
