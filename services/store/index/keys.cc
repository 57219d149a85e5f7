#include "services/store/index/keys.h"

#include <algorithm>

#include "services/store/io/coding.h"

namespace apogee::store::keys {

std::string TopicPrefix(absl::string_view topic) {
  std::string out;
  out.reserve(1 + topic.size() + 4);  // room for a queue id
  out.push_back(static_cast<char>(topic.size()));
  out.append(topic.data(), topic.size());
  return out;
}

std::string TopicQueuePrefix(absl::string_view topic, int32_t queue_id) {
  std::string out = TopicPrefix(topic);
  coding::PutFixed32BE(&out, static_cast<uint32_t>(queue_id));
  return out;
}

std::optional<std::string> ConsumeGroup(absl::string_view* in) {
  if (in->empty()) return std::nullopt;
  const size_t length = static_cast<unsigned char>((*in)[0]);
  if (in->size() < 1 + length) return std::nullopt;
  std::string group(in->substr(1, length));
  in->remove_prefix(1 + length);
  return group;
}

std::optional<TopicQueue> ConsumeTopicQueue(absl::string_view* in) {
  std::optional<std::string> topic = ConsumeGroup(in);  // same [u8 len][name] layout
  if (!topic.has_value() || in->size() < 4) return std::nullopt;
  TopicQueue tq;
  tq.topic = std::move(*topic);
  uint32_t queue = 0;
  coding::ConsumeFixed32BE(in, &queue);
  tq.queue_id = static_cast<int32_t>(queue);
  return tq;
}

std::string ConsumeQueueKey(const std::string& tq_prefix, int64_t queue_offset) {
  std::string out = tq_prefix;
  coding::PutFixed64BE(&out, static_cast<uint64_t>(queue_offset));
  return out;
}

void PutConsumeQueueValue(std::string* run, const ConsumeQueueValue& v) {
  coding::PutFixed64LE(run, static_cast<uint64_t>(v.commit_offset));
  coding::PutFixed32LE(run, v.size);
  coding::PutFixed64LE(run, v.tags_hash);
  coding::PutFixed64LE(run, static_cast<uint64_t>(v.store_timestamp_ms));
}

std::optional<int64_t> ConsumeQueueRunLength(absl::string_view run) {
  if (run.empty() || run.size() % kConsumeQueueValueSize != 0) return std::nullopt;
  return static_cast<int64_t>(run.size() / kConsumeQueueValueSize);
}

ConsumeQueueValue ConsumeQueueRunValue(absl::string_view run, int64_t i) {
  const char* p = run.data() + static_cast<size_t>(i) * kConsumeQueueValueSize;
  ConsumeQueueValue v;
  v.commit_offset = static_cast<int64_t>(coding::GetFixed64LE(p));
  v.size = coding::GetFixed32LE(p + 8);
  v.tags_hash = coding::GetFixed64LE(p + 12);
  v.store_timestamp_ms = static_cast<int64_t>(coding::GetFixed64LE(p + 20));
  return v;
}

std::string TimeKey(const std::string& tq_prefix, int64_t second, int64_t queue_offset) {
  std::string out = tq_prefix;
  coding::PutFixed64BE(&out, static_cast<uint64_t>(second));
  coding::PutFixed64BE(&out, static_cast<uint64_t>(queue_offset));
  return out;
}

namespace {
void PutName16(std::string* out, absl::string_view name) {
  out->push_back(static_cast<char>(name.size() >> 8));
  out->push_back(static_cast<char>(name.size()));
  out->append(name.data(), name.size());
}
}  // namespace

std::string MessageIdPrefix(absl::string_view message_id_or_bucket) {
  std::string out;
  PutName16(&out, message_id_or_bucket);
  return out;
}

absl::string_view MessageIdBucket(absl::string_view message_id) {
  return message_id.substr(0, message_id.size() - MessageIdSuffix(message_id).size());
}

absl::string_view MessageIdSuffix(absl::string_view message_id) {
  // The bucket keeps at least the first byte: ids of one or two bytes do not
  // all land in one bucket.
  const size_t suffix =
      std::min(message_id.size() > 0 ? message_id.size() - 1 : 0, kMessageIdSuffixMax);
  return message_id.substr(message_id.size() - suffix);
}

void PutMessageIdRunEntry(std::string* run, absl::string_view suffix, int64_t commit_offset,
                          uint32_t size) {
  run->push_back(static_cast<char>(suffix.size()));
  run->append(suffix.data(), suffix.size());
  coding::PutFixed64LE(run, static_cast<uint64_t>(commit_offset));
  coding::PutFixed32LE(run, size);
}

std::optional<MessageIdRunEntry> ConsumeMessageIdRunEntry(absl::string_view* run) {
  if (run->empty()) return std::nullopt;
  const size_t suffix_size = static_cast<uint8_t>((*run)[0]);
  const size_t entry_size = 1 + suffix_size + 8 + 4;  // length, suffix, offset, size
  if (suffix_size > kMessageIdSuffixMax || run->size() < entry_size) return std::nullopt;
  const char* fixed = run->data() + 1 + suffix_size;
  MessageIdRunEntry entry;
  entry.suffix = run->substr(1, suffix_size);
  entry.commit_offset = static_cast<int64_t>(coding::GetFixed64LE(fixed));
  entry.size = coding::GetFixed32LE(fixed + 8);
  run->remove_prefix(entry_size);
  return entry;
}

std::string KeyPrefix(absl::string_view topic, absl::string_view key) {
  std::string out;
  out.push_back(static_cast<char>(topic.size()));
  out.append(topic.data(), topic.size());
  PutName16(&out, key);
  return out;
}

std::string WithCommitOffset(std::string prefix, int64_t commit_offset) {
  coding::PutFixed64BE(&prefix, static_cast<uint64_t>(commit_offset));
  return prefix;
}

int64_t TrailingCommitOffset(absl::string_view key) {
  if (key.size() < 8) return -1;
  return static_cast<int64_t>(coding::GetFixed64BE(key.data() + key.size() - 8));
}

std::string GroupPrefix(absl::string_view group) {
  std::string out;
  out.push_back(static_cast<char>(group.size()));
  out.append(group.data(), group.size());
  return out;
}

std::string EncodeOffsetValue(const OffsetValue& v) {
  std::string out;
  coding::PutFixed64BE(&out, static_cast<uint64_t>(v.offset));
  coding::PutFixed64BE(&out, static_cast<uint64_t>(v.commit_time_ms));
  return out;
}

std::optional<OffsetValue> DecodeOffsetValue(absl::string_view in) {
  if (in.size() != 8 && in.size() != 16) return std::nullopt;
  OffsetValue v;
  v.offset = static_cast<int64_t>(coding::GetFixed64BE(in.data()));
  if (in.size() == 16) v.commit_time_ms = static_cast<int64_t>(coding::GetFixed64BE(in.data() + 8));
  return v;
}

std::string ConfigKey(uint8_t kind, absl::string_view name) {
  std::string out(1, static_cast<char>(kind));
  out.append(name.data(), name.size());
  return out;
}

std::string EncodeFixed64BE(int64_t v) {
  std::string out;
  coding::PutFixed64BE(&out, static_cast<uint64_t>(v));
  return out;
}

std::optional<int64_t> DecodeFixed64BE(absl::string_view in) {
  if (in.size() != 8) return std::nullopt;
  return static_cast<int64_t>(coding::GetFixed64BE(in.data()));
}

std::string PrefixSuccessor(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

std::string EncodePendingValue(const PendingValue& v) {
  std::string out;
  out.push_back(static_cast<char>(v.kind));
  coding::PutFixed64BE(&out, static_cast<uint64_t>(v.at_ms));
  coding::PutFixed32BE(&out, v.count);
  coding::PutFixed32BE(&out, v.size);
  return out;
}

std::optional<PendingValue> DecodePendingValue(absl::string_view in) {
  if (in.size() != 17) return std::nullopt;
  PendingValue v;
  v.kind = static_cast<uint8_t>(in[0]);
  v.at_ms = static_cast<int64_t>(coding::GetFixed64BE(in.data() + 1));
  v.count = coding::GetFixed32BE(in.data() + 9);
  v.size = coding::GetFixed32BE(in.data() + 13);
  return v;
}

std::string DueKey(int64_t at_ms, int64_t commit_offset) {
  return EncodeFixed64BE(at_ms) + EncodeFixed64BE(commit_offset);
}

std::optional<std::pair<int64_t, int64_t>> DecodeDueKey(absl::string_view in) {
  if (in.size() != 16) return std::nullopt;
  return std::make_pair(*DecodeFixed64BE(in.substr(0, 8)), *DecodeFixed64BE(in.substr(8)));
}

std::string EncodeUndoValue(const UndoValue& v) {
  std::string out = EncodeFixed64BE(v.subject);
  out.push_back(v.before.has_value() ? 1 : 0);
  if (v.before.has_value()) out += EncodePendingValue(*v.before);
  return out;
}

std::optional<UndoValue> DecodeUndoValue(absl::string_view in) {
  if (in.size() < 9) return std::nullopt;
  UndoValue v;
  v.subject = *DecodeFixed64BE(in.substr(0, 8));
  if (in[8] != 0) {
    v.before = DecodePendingValue(in.substr(9));
    if (!v.before.has_value()) return std::nullopt;
  } else if (in.size() != 9) {
    return std::nullopt;
  }
  return v;
}

}  // namespace apogee::store::keys
