#include "services/store/typed/record_copy.h"

#include <utility>

namespace apogee::store {

RecordInput CopyRecord(const RecordView& subject, RecordKind kind, std::string topic, int32_t queue,
                       bool with_message) {
  RecordInput in;
  in.ext.kind = kind;
  in.ext.subject = subject.commit_offset();
  in.ext.at_ms = subject.at_ms();
  in.ext.count = subject.count();
  in.ext.target_topic = std::string(subject.target_topic());
  in.ext.target_queue = subject.target_queue();
  in.message_id = std::string(subject.message_id());
  in.topic = std::move(topic);
  in.queue_id = queue;
  if (!with_message) return in;
  for (absl::string_view key : subject.keys()) in.keys.emplace_back(key);
  in.tag = std::string(subject.tag());
  in.tags_hash = subject.tags_hash();
  in.born_timestamp_ms = subject.born_timestamp_ms();
  in.flags = subject.flags();
  in.body = std::string(subject.body());
  return in;
}

}  // namespace apogee::store
