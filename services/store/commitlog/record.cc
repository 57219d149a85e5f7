#include "services/store/commitlog/record.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/store/commitlog/crc32c.h"
#include "services/store/io/coding.h"

namespace apogee::store {
namespace {

using coding::GetFixed16LE;
using coding::GetFixed32LE;
using coding::GetFixed64LE;

size_t KeysBlockSize(const std::vector<std::string>& keys) {
  size_t n = 0;
  for (const std::string& k : keys) n += 2 + k.size();
  return n;
}

bool Typed(const RecordInput& input) { return input.ext.kind != RecordKind::kNormal; }

size_t ExtSize(const RecordInput& input) {
  return Typed(input) ? kRecordExtFixedSize + input.ext.target_topic.size() : 0;
}

// CRC over the length prefix and everything after the CRC field.
uint32_t RecordCrc(absl::string_view record) {
  const uint32_t crc = crc32c::Extend(0, record.data(), 4);
  return crc32c::Mask(crc32c::Extend(crc, record.data() + 8, record.size() - 8));
}

}  // namespace

absl::string_view RecordKindName(RecordKind kind) {
  static constexpr absl::string_view kNames[] = {"NORMAL",    "TIMER",     "HALF",
                                                 "FIRED",     "COMMITTED", "ROLLED_BACK",
                                                 "DISCARDED", "CHECKED",   "DROPPED"};
  const auto i = static_cast<uint8_t>(kind);
  return i <= kMaxRecordKind ? kNames[i] : "UNKNOWN";
}

size_t EncodedRecordSize(const RecordInput& input) {
  return (Typed(input) ? kRecordHeaderSizeV3 + ExtSize(input) : kRecordHeaderSize) +
         input.topic.size() + input.message_id.size() + input.tag.size() +
         KeysBlockSize(input.keys) + input.body.size();
}

absl::Status ValidateRecordInput(const RecordInput& input) {
  if (input.topic.empty() || input.topic.size() > kMaxRecordTopicLength) {
    return absl::InvalidArgumentError(absl::StrCat("record topic length ", input.topic.size(),
                                                   " is out of range [1, ", kMaxRecordTopicLength,
                                                   "]"));
  }
  if (input.queue_id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("record queue id ", input.queue_id, " is negative"));
  }
  if (input.message_id.size() > kMaxRecordMessageIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("record message id is ", input.message_id.size(),
                                                   " bytes (max ", kMaxRecordMessageIdLength, ")"));
  }
  if (input.tag.size() > kMaxRecordTagLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("record tag is ", input.tag.size(), " bytes (max ", kMaxRecordTagLength, ")"));
  }
  for (const std::string& key : input.keys) {
    if (key.size() > kMaxRecordKeyLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("record key is ", key.size(), " bytes (max ", kMaxRecordKeyLength, ")"));
    }
  }
  if ((input.flags & kBatchContinuesFlag) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("record flags 0x", absl::Hex(input.flags),
                                                   " use bit 31, which the store reserves"));
  }
  if (static_cast<uint8_t>(input.ext.kind) > kMaxRecordKind) {
    return absl::InvalidArgumentError(absl::StrCat("record kind ", static_cast<int>(input.ext.kind),
                                                   " is unknown (max ", kMaxRecordKind, ")"));
  }
  if (input.ext.target_topic.size() > kMaxRecordTopicLength) {
    return absl::InvalidArgumentError(absl::StrCat("record target topic length ",
                                                   input.ext.target_topic.size(), " exceeds ",
                                                   kMaxRecordTopicLength));
  }
  if (input.ext.target_queue < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("record target queue ", input.ext.target_queue, " is negative"));
  }
  if (EncodedRecordSize(input) > 0xffffffffu) {
    return absl::InvalidArgumentError("record does not fit a 32-bit length");
  }
  return absl::OkStatus();
}

void EncodeRecord(const RecordInput& input, const RecordPosition& position, std::string* dst) {
  const size_t start = dst->size();
  const size_t keys_size = KeysBlockSize(input.keys);
  const size_t length = EncodedRecordSize(input);
  dst->reserve(start + length);
  coding::PutFixed32LE(dst, static_cast<uint32_t>(length));
  coding::PutFixed32LE(dst, 0);  // CRC, filled in below
  const bool typed = Typed(input);
  dst->push_back(static_cast<char>(typed ? kRecordMagicV3 : kRecordMagic));
  dst->push_back(static_cast<char>(input.topic.size()));
  coding::PutFixed16LE(dst, static_cast<uint16_t>(input.message_id.size()));
  coding::PutFixed32LE(dst, static_cast<uint32_t>(input.queue_id));
  coding::PutFixed64LE(dst, static_cast<uint64_t>(position.queue_offset));
  coding::PutFixed64LE(dst, static_cast<uint64_t>(position.commit_offset));
  coding::PutFixed64LE(dst, static_cast<uint64_t>(position.store_timestamp_ms));
  coding::PutFixed64LE(dst, static_cast<uint64_t>(input.born_timestamp_ms));
  coding::PutFixed64LE(dst, input.tags_hash);
  coding::PutFixed32LE(dst, input.flags | (position.batch_continues ? kBatchContinuesFlag : 0));
  coding::PutFixed32LE(dst, static_cast<uint32_t>(keys_size));
  coding::PutFixed32LE(dst, static_cast<uint32_t>(input.body.size()));
  coding::PutFixed16LE(dst, static_cast<uint16_t>(input.tag.size()));
  if (typed) coding::PutFixed16LE(dst, static_cast<uint16_t>(ExtSize(input)));
  dst->append(input.topic);
  dst->append(input.message_id);
  dst->append(input.tag);
  if (typed) {
    const RecordExtension& e = input.ext;
    dst->push_back(static_cast<char>(e.kind));
    coding::PutFixed64LE(dst, static_cast<uint64_t>(e.subject));
    coding::PutFixed64LE(dst, static_cast<uint64_t>(e.at_ms));
    coding::PutFixed32LE(dst, e.count);
    coding::PutFixed32LE(dst, static_cast<uint32_t>(e.target_queue));
    dst->push_back(static_cast<char>(e.target_topic.size()));
    coding::PutFixed64LE(dst, 0);  // reserved
    dst->append(e.target_topic);
  }
  for (const std::string& key : input.keys) {
    coding::PutFixed16LE(dst, static_cast<uint16_t>(key.size()));
    dst->append(key);
  }
  dst->append(input.body);
  const uint32_t crc = RecordCrc(absl::string_view(dst->data() + start, length));
  for (int i = 0; i < 4; ++i) (*dst)[start + 4 + i] = static_cast<char>(crc >> (8 * i));
}

uint32_t RecordView::PeekLength(absl::string_view header) { return GetFixed32LE(header.data()); }

absl::StatusOr<RecordView> RecordView::Parse(absl::string_view data, int64_t expected_offset,
                                             uint32_t max_length) {
  return ParseInternal(data, expected_offset, max_length, /*verify_crc=*/true);
}

absl::StatusOr<RecordView> RecordView::ParseEncodedHere(absl::string_view data,
                                                        int64_t expected_offset,
                                                        uint32_t max_length) {
  return ParseInternal(data, expected_offset, max_length, /*verify_crc=*/false);
}

absl::StatusOr<RecordView> RecordView::ParseInternal(absl::string_view data,
                                                     int64_t expected_offset, uint32_t max_length,
                                                     bool verify_crc) {
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat("commit-log record at offset ", expected_offset, ": ", what));
  };
  if (data.size() < 4) {
    return absl::OutOfRangeError(absl::StrCat("commit-log record at offset ", expected_offset,
                                              ": only ", data.size(), " bytes, need 4"));
  }
  const uint32_t length = PeekLength(data);
  if (length < kRecordHeaderSizeV1 || length > max_length) {
    return corrupt(absl::StrCat("length ", length, " is out of range [", kRecordHeaderSizeV1, ", ",
                                max_length, "]"));
  }
  if (data.size() < length) {
    return absl::OutOfRangeError(absl::StrCat("commit-log record at offset ", expected_offset,
                                              ": truncated, ", data.size(), " of ", length,
                                              " bytes present"));
  }
  const char* p = data.data();
  const uint32_t stored_crc = GetFixed32LE(p + 4);
  const uint32_t actual_crc = verify_crc ? RecordCrc(data.substr(0, length)) : stored_crc;
  if (stored_crc != actual_crc) {
    return corrupt(absl::StrFormat("CRC32C mismatch (stored 0x%08x, computed 0x%08x)", stored_crc,
                                   actual_crc));
  }
  const auto magic = static_cast<uint8_t>(p[8]);
  if (magic != kRecordMagic && magic != kRecordMagicV1 && magic != kRecordMagicV3) {
    return corrupt(absl::StrFormat("unknown magic 0x%02x (expected 0x%02x, 0x%02x or 0x%02x)",
                                   magic, kRecordMagicV1, kRecordMagic, kRecordMagicV3));
  }
  const bool v1 = magic == kRecordMagicV1;
  const bool v3 = magic == kRecordMagicV3;
  const int version = v1 ? 1 : (v3 ? 3 : 2);
  const size_t header = v1 ? kRecordHeaderSizeV1 : (v3 ? kRecordHeaderSizeV3 : kRecordHeaderSize);
  if (length < header) {
    return corrupt(absl::StrCat("length ", length, " is below its version-", version, " header (",
                                header, " bytes)"));
  }
  RecordView v;
  v.version_ = static_cast<uint8_t>(version);
  const size_t topic_len = static_cast<uint8_t>(p[9]);
  const size_t id_len = GetFixed16LE(p + 10);
  v.queue_id_ = static_cast<int32_t>(GetFixed32LE(p + 12));
  v.queue_offset_ = static_cast<int64_t>(GetFixed64LE(p + 16));
  v.commit_offset_ = static_cast<int64_t>(GetFixed64LE(p + 24));
  v.store_timestamp_ms_ = static_cast<int64_t>(GetFixed64LE(p + 32));
  v.born_timestamp_ms_ = static_cast<int64_t>(GetFixed64LE(p + 40));
  v.tags_hash_ = GetFixed64LE(p + 48);
  v.flags_ = GetFixed32LE(p + 56);
  const size_t keys_len = GetFixed32LE(p + 60);
  const size_t body_len = GetFixed32LE(p + 64);
  const size_t tag_len = v1 ? 0 : GetFixed16LE(p + 68);
  const size_t ext_len = v3 ? GetFixed16LE(p + 70) : 0;
  if (header + topic_len + id_len + tag_len + ext_len + keys_len + body_len != length) {
    return corrupt(absl::StrCat("field lengths (topic ", topic_len, ", id ", id_len, ", tag ",
                                tag_len, ", ext ", ext_len, ", keys ", keys_len, ", body ",
                                body_len, ") do not add up to length ", length));
  }
  if (v.commit_offset_ != expected_offset) {
    return corrupt(absl::StrCat("stored commit offset is ", v.commit_offset_));
  }
  v.raw_ = data.substr(0, length);
  size_t pos = header;
  v.topic_ = v.raw_.substr(pos, topic_len);
  pos += topic_len;
  v.message_id_ = v.raw_.substr(pos, id_len);
  pos += id_len;
  v.tag_ = v.raw_.substr(pos, tag_len);
  pos += tag_len;
  if (v3) {
    const char* e = v.raw_.data() + pos;
    if (ext_len < kRecordExtFixedSize ||
        ext_len != kRecordExtFixedSize + static_cast<uint8_t>(e[25])) {
      return corrupt(
          absl::StrCat("extension length ", ext_len, " does not match its target topic"));
    }
    const auto kind = static_cast<uint8_t>(e[0]);
    if (kind == 0 || kind > kMaxRecordKind) {
      return corrupt(absl::StrCat("unknown record kind ", kind));
    }
    v.kind_ = static_cast<RecordKind>(kind);
    v.subject_ = static_cast<int64_t>(GetFixed64LE(e + 1));
    v.at_ms_ = static_cast<int64_t>(GetFixed64LE(e + 9));
    v.count_ = GetFixed32LE(e + 17);
    v.target_queue_ = static_cast<int32_t>(GetFixed32LE(e + 21));
    v.target_topic_ = v.raw_.substr(pos + kRecordExtFixedSize, ext_len - kRecordExtFixedSize);
    pos += ext_len;
  }
  v.keys_ = v.raw_.substr(pos, keys_len);
  pos += keys_len;
  v.body_ = v.raw_.substr(pos, body_len);
  for (absl::string_view k = v.keys_; !k.empty();) {
    if (k.size() < 2 || k.size() < 2u + GetFixed16LE(k.data())) return corrupt("malformed keys");
    k.remove_prefix(2u + GetFixed16LE(k.data()));
  }
  return v;
}

std::vector<absl::string_view> RecordView::keys() const {
  std::vector<absl::string_view> out;
  for (absl::string_view k = keys_; k.size() >= 2;) {
    const size_t n = GetFixed16LE(k.data());
    out.push_back(k.substr(2, n));
    k.remove_prefix(2 + n);
  }
  return out;
}

RecordView StoredRecord::view() const {
  if (bytes_.size() < kRecordHeaderSizeV1) return RecordView();
  auto v = RecordView::ParseInternal(bytes_, static_cast<int64_t>(GetFixed64LE(bytes_.data() + 24)),
                                     static_cast<uint32_t>(bytes_.size()), /*verify_crc=*/false);
  return v.ok() ? *v : RecordView();
}

}  // namespace apogee::store
