// The commit-log record: what a producer hands the store, and its byte layout
// on disk (docs/design/store-format.md, "Record layout"). The message body is
// opaque to the store; the header carries what the indexes need.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apogee::store {

// Format version 2 (written) adds the tag; version 1 (no tag field) is still
// read. docs/design/store-format.md, "Record layout".
inline constexpr uint8_t kRecordMagicV1 = 0xA1;
inline constexpr uint8_t kRecordMagic = 0xA2;
inline constexpr size_t kRecordHeaderSizeV1 = 68;
inline constexpr size_t kRecordHeaderSize = 70;  // v1's plus the u16 tag length
// Version 3 (docs/design/message-types.md §1.1): v2 plus a u16 extension
// length and a typed extension; written only for records of a kind other
// than NORMAL, so plain messages stay v2 byte for byte.
inline constexpr uint8_t kRecordMagicV3 = 0xA3;
inline constexpr size_t kRecordHeaderSizeV3 = 72;
inline constexpr size_t kRecordExtFixedSize = 34;
// Structural limits of the format (field widths). The store's own, smaller
// limits are checked once, by the engine (Store::ValidateRecord).
inline constexpr size_t kMaxRecordTopicLength = 255;
inline constexpr size_t kMaxRecordMessageIdLength = 0xffff;
inline constexpr size_t kMaxRecordTagLength = 0xffff;
inline constexpr size_t kMaxRecordKeyLength = 0xffff;

// One message queue of one topic.
struct TopicQueue {
  std::string topic;
  int32_t queue_id = 0;

  friend bool operator==(const TopicQueue& a, const TopicQueue& b) {
    return a.queue_id == b.queue_id && a.topic == b.topic;
  }
  friend bool operator<(const TopicQueue& a, const TopicQueue& b) {
    return std::tie(a.topic, a.queue_id) < std::tie(b.topic, b.queue_id);
  }
  template <typename H>
  friend H AbslHashValue(H h, const TopicQueue& tq) {
    return H::combine(std::move(h), tq.topic, tq.queue_id);
  }
};

// What a typed record is (message-types.md §1.1). Values are on disk.
enum class RecordKind : uint8_t {
  kNormal = 0,
  kTimer = 1,       // deliver a copy to the target at at_ms
  kHalf = 2,        // transactional half message
  kFired = 3,       // the delivered copy of TIMER `subject`
  kCommitted = 4,   // the visible copy of HALF `subject`
  kRolledBack = 5,  // HALF `subject` discarded by the producer
  kDiscarded = 6,   // HALF `subject` gave up after max checks
  kChecked = 7,     // HALF `subject` was checked (count, next at_ms)
  kDropped = 8,     // TIMER `subject` not delivered: its target topic is gone
};
inline constexpr uint8_t kMaxRecordKind = 8;
absl::string_view RecordKindName(RecordKind kind);

// The v3 extension of a typed record. Unused for kNormal.
struct RecordExtension {
  RecordKind kind = RecordKind::kNormal;
  int64_t subject = 0;  // commit offset of the record this one acts on (0: none)
  int64_t at_ms = 0;    // TIMER: due time; HALF/CHECKED: next check (Unix ms)
  uint32_t count = 0;   // HALF/CHECKED: checks done so far
  int32_t target_queue = 0;
  std::string target_topic;  // TIMER, HALF, DISCARDED: the real topic
};

// What a producer supplies for one record. The log assigns the commit-log
// offset, the queue offset and the store timestamp.
struct RecordInput {
  std::string topic;
  int32_t queue_id = 0;
  std::string message_id;         // the client's unique id; may be empty
  std::vector<std::string> keys;  // business keys, indexed per topic
  std::string tag;                // the message's tag; may be empty
  uint64_t tags_hash = 0;         // for server-side tag filtering
  int64_t born_timestamp_ms = 0;  // producer clock
  uint32_t flags = 0;             // opaque to the engine (transaction, delay, ...),
                                  // except kBatchContinuesFlag
  std::string body;               // the encoded message, opaque to the engine
  RecordExtension ext;            // kind != kNormal: written as version 3
};

// The engine's own bit of `flags`: set on every record of an append batch
// but the last, so recovery can cut a torn batch back whole (a batch is
// appended atomically). Producers may not set it.
inline constexpr uint32_t kBatchContinuesFlag = 1u << 31;

// Fields the log assigns at append time.
struct RecordPosition {
  int64_t commit_offset = 0;
  int64_t queue_offset = 0;
  int64_t store_timestamp_ms = 0;
  bool batch_continues = false;  // not the last record of its batch
};

// Bytes `input` takes in the log (header included). Structural limits
// (topic <= 255 bytes, id, tag and each key <= 65535 bytes) are checked by
// ValidateRecordInput.
size_t EncodedRecordSize(const RecordInput& input);
absl::Status ValidateRecordInput(const RecordInput& input);

// Appends the encoded record to `dst`. `input` must be valid.
void EncodeRecord(const RecordInput& input, const RecordPosition& position, std::string* dst);

// A parsed record: views into bytes someone else owns. Copyable, cheap.
class RecordView {
 public:
  // Parses and verifies the record at the front of `data`: length bounds
  // (`max_length`), magic, CRC, field lengths, and that its stored commit
  // offset is `expected_offset`. DATA_LOSS describes the first problem; a
  // record cut short by the end of `data` gives OUT_OF_RANGE instead, so a
  // reader can tell "need more bytes" from "corrupt".
  static absl::StatusOr<RecordView> Parse(absl::string_view data, int64_t expected_offset,
                                          uint32_t max_length);
  // Parse without the CRC, for bytes this process encoded and still holds
  // (they never left its memory; the CRC was computed from them).
  static absl::StatusOr<RecordView> ParseEncodedHere(absl::string_view data,
                                                     int64_t expected_offset, uint32_t max_length);

  // The length prefix of a record starting at `header` (>= 4 bytes).
  static uint32_t PeekLength(absl::string_view header);

  absl::string_view raw() const { return raw_; }
  uint32_t length() const { return static_cast<uint32_t>(raw_.size()); }
  absl::string_view topic() const { return topic_; }
  int32_t queue_id() const { return queue_id_; }
  int64_t queue_offset() const { return queue_offset_; }
  int64_t commit_offset() const { return commit_offset_; }
  int64_t store_timestamp_ms() const { return store_timestamp_ms_; }
  int64_t born_timestamp_ms() const { return born_timestamp_ms_; }
  uint64_t tags_hash() const { return tags_hash_; }
  // The producer's flags (without the engine's kBatchContinuesFlag).
  uint32_t flags() const { return flags_ & ~kBatchContinuesFlag; }
  // More records of the same append batch follow this one.
  bool batch_continues() const { return (flags_ & kBatchContinuesFlag) != 0; }
  absl::string_view message_id() const { return message_id_; }
  // Empty in a version-1 record (its writer kept the tag elsewhere).
  absl::string_view tag() const { return tag_; }
  uint8_t version() const { return version_; }
  // The typed extension (kNormal, zeros and empty before version 3).
  RecordKind kind() const { return kind_; }
  int64_t subject() const { return subject_; }
  int64_t at_ms() const { return at_ms_; }
  uint32_t count() const { return count_; }
  int32_t target_queue() const { return target_queue_; }
  absl::string_view target_topic() const { return target_topic_; }
  absl::string_view body() const { return body_; }
  std::vector<absl::string_view> keys() const;
  int64_t end_offset() const { return commit_offset_ + static_cast<int64_t>(raw_.size()); }

 private:
  friend class StoredRecord;
  static absl::StatusOr<RecordView> ParseInternal(absl::string_view data, int64_t expected_offset,
                                                  uint32_t max_length, bool verify_crc);

  absl::string_view raw_;
  absl::string_view topic_;
  absl::string_view message_id_;
  absl::string_view tag_;
  absl::string_view keys_;
  absl::string_view body_;
  absl::string_view target_topic_;
  RecordKind kind_ = RecordKind::kNormal;
  int64_t subject_ = 0;
  int64_t at_ms_ = 0;
  uint32_t count_ = 0;
  int32_t target_queue_ = 0;
  int32_t queue_id_ = 0;
  int64_t queue_offset_ = 0;
  int64_t commit_offset_ = 0;
  int64_t store_timestamp_ms_ = 0;
  int64_t born_timestamp_ms_ = 0;
  uint64_t tags_hash_ = 0;
  uint32_t flags_ = 0;
  uint8_t version_ = 2;
};

// A verified record that owns its bytes. view() re-reads the (already
// verified) header, so the object may be moved freely.
class StoredRecord {
 public:
  StoredRecord() = default;
  // `bytes` must hold exactly one record that RecordView::Parse accepted.
  explicit StoredRecord(std::string bytes) : bytes_(std::move(bytes)) {}
  RecordView view() const;
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace apogee::store
