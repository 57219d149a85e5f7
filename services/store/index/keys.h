// Key and value encodings of the index column families
// (docs/design/store-format.md, "Index layout"). Integers in keys are
// big-endian so that RocksDB's bytewise order is numeric order; names are
// length-prefixed so that no encoded prefix is a prefix of another.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "services/store/commitlog/record.h"

namespace apogee::store::keys {

// [u8 topic length][topic][u32 queue id]
std::string TopicQueuePrefix(absl::string_view topic, int32_t queue_id);
inline std::string TopicQueuePrefix(const TopicQueue& tq) {
  return TopicQueuePrefix(tq.topic, tq.queue_id);
}
// Parses a TopicQueuePrefix from the front of `in`, consuming it.
std::optional<TopicQueue> ConsumeTopicQueue(absl::string_view* in);
// [u8 topic length][topic]: the start of every TopicQueuePrefix of `topic`
// (and of its key-index entries), and of no other topic's.
std::string TopicPrefix(absl::string_view topic);

// consume_queue: prefix + [u64 first queue offset] -> a run: the
// ConsumeQueueValue of each queue offset from the key's on, in order,
// kConsumeQueueValueSize bytes each. The dispatcher writes one run per queue
// and batch: one RocksDB entry for many messages.
std::string ConsumeQueueKey(const std::string& tq_prefix, int64_t queue_offset);

struct ConsumeQueueValue {
  int64_t commit_offset = 0;
  uint32_t size = 0;
  uint64_t tags_hash = 0;
  int64_t store_timestamp_ms = 0;
};
constexpr size_t kConsumeQueueValueSize = 28;
void PutConsumeQueueValue(std::string* run, const ConsumeQueueValue& v);
// The number of values in a run, or nullopt for a malformed (or empty) one.
std::optional<int64_t> ConsumeQueueRunLength(absl::string_view run);
// Value `i` of a run that ConsumeQueueRunLength accepted; i < its length.
ConsumeQueueValue ConsumeQueueRunValue(absl::string_view run, int64_t i);

// time: prefix + [u64 store second] + [u64 queue offset] -> "" (the first
// record of each second in each queue).
std::string TimeKey(const std::string& tq_prefix, int64_t second, int64_t queue_offset);

// msg_id: [u16 bucket length][bucket] + [u64 commit offset of the run's
// last record] -> a run: for each record, in log order, [u8 suffix
// length][suffix][u64 commit offset][u32 size] (LE). An id's bucket is the
// id without its last kMessageIdSuffixMax bytes (but at least its first
// byte), its suffix those bytes: ids issued together by one producer end
// in a counter, so a batch's ids share a bucket and take one entry
// (format 3). Formats 1 and 2 wrote an entry per id, [u16 id length][id] +
// [u64 commit offset] -> [u32 size]; such entries are still read (a value
// of kSingleEntryValueSize bytes; a run is never that short).
std::string MessageIdPrefix(absl::string_view message_id_or_bucket);
constexpr size_t kMessageIdSuffixMax = 2;
absl::string_view MessageIdBucket(absl::string_view message_id);
absl::string_view MessageIdSuffix(absl::string_view message_id);
void PutMessageIdRunEntry(std::string* run, absl::string_view suffix, int64_t commit_offset,
                          uint32_t size);
struct MessageIdRunEntry {
  absl::string_view suffix;
  int64_t commit_offset = 0;
  uint32_t size = 0;
};
// Takes the next entry off the front of `run`; nullopt when it is malformed.
std::optional<MessageIdRunEntry> ConsumeMessageIdRunEntry(absl::string_view* run);
// key: [u8 topic length][topic][u16 key length][key] + [u64 commit offset]
// -> [u32 size].
std::string KeyPrefix(absl::string_view topic, absl::string_view key);
// The value of a key entry and of a msg_id entry of formats 1-2.
constexpr size_t kSingleEntryValueSize = 4;
// Appends the big-endian commit offset that ends msg_id and key keys.
std::string WithCommitOffset(std::string prefix, int64_t commit_offset);
// The commit offset at the end of a msg_id or key key.
int64_t TrailingCommitOffset(absl::string_view key);

// offsets: [u8 group length][group] + TopicQueuePrefix -> OffsetValue.
std::string GroupPrefix(absl::string_view group);
// Parses a GroupPrefix from the front of `in`, consuming it.
std::optional<std::string> ConsumeGroup(absl::string_view* in);

// A consumer offset value: [u64 BE offset][u64 BE commit time ms]. Values
// written before commit times were kept are the offset alone and decode
// with commit_time_ms = 0 (unknown).
struct OffsetValue {
  int64_t offset = 0;
  int64_t commit_time_ms = 0;
};
std::string EncodeOffsetValue(const OffsetValue& v);
std::optional<OffsetValue> DecodeOffsetValue(absl::string_view in);

// config: [u8 kind][name] -> opaque value.
std::string ConfigKey(uint8_t kind, absl::string_view name);

// Typed-record families (docs/design/message-types.md §1.2).
// pending: T(o) -> PendingValue; resolved: T(subject) -> ResolvedValue;
// undo: T(resolver) -> UndoValue; timer_due / txn_check: MS(at) T(o) -> "".
struct PendingValue {
  uint8_t kind = 0;  // RecordKind of the pending record
  int64_t at_ms = 0;
  uint32_t count = 0;
  uint32_t size = 0;  // the record's bytes in the log
};
std::string EncodePendingValue(const PendingValue& v);
std::optional<PendingValue> DecodePendingValue(absl::string_view in);
std::string DueKey(int64_t at_ms, int64_t commit_offset);
// {at_ms, commit offset} of a DueKey.
std::optional<std::pair<int64_t, int64_t>> DecodeDueKey(absl::string_view in);
struct UndoValue {
  int64_t subject = 0;
  std::optional<PendingValue> before;  // the subject's pending entry before the resolver
};
std::string EncodeUndoValue(const UndoValue& v);
std::optional<UndoValue> DecodeUndoValue(absl::string_view in);

// meta (default column family).
inline constexpr absl::string_view kFormatVersionKey = "format_version";
inline constexpr absl::string_view kDispatchedKey = "dispatched";
inline constexpr char kQueueNextPrefix = 'q';  // 'q' + TopicQueuePrefix -> [u64 next offset]
// 'x' + TopicPrefix -> [u64 BE deleted below commit offset][u64 BE queue base]
inline constexpr char kTombstonePrefix = 'x';

std::string EncodeFixed64BE(int64_t v);
std::optional<int64_t> DecodeFixed64BE(absl::string_view in);

// The smallest key greater than every key starting with `prefix`; empty when
// there is none (prefix all 0xff).
std::string PrefixSuccessor(std::string prefix);

}  // namespace apogee::store::keys
