// Translation between apogee.store.v1 records and engine records.
//
// The tag is a field of the record format (version 2). Records written by
// earlier versions (format version 1) kept it in a small envelope in front
// of the body, which reads strip again:
//
//   u8 version (= 1) | u16 LE tag length | tag bytes | body bytes
//
// Limits are not checked here: the engine checks every record once
// (Store::ValidateRecord) and its errors name the field and the limit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "apogee/store/v1/store.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "services/common/naming/names.h"
#include "services/store/commitlog/record.h"

namespace apogee::store {

namespace sv1 = ::apogee::store::v1;

inline constexpr uint8_t kEnvelopeVersion = 1;  // of version-1 records

// The largest record body (a message and everything stored with it) the
// store accepts when message bodies may be up to `max_message_body`.
uint32_t RecordBodyLimit(uint32_t max_message_body);
// The engine's body limit (StoreOptions::max_body_size) for the same. The
// tag no longer rides in the body, so it is the record body limit itself.
inline uint32_t EngineBodyLimit(uint32_t max_message_body) {
  return RecordBodyLimit(max_message_body);
}

// The tags hash the engine filters on: 64-bit FNV-1a of the tag, 0 for no
// tag. Stable across processes and builds (it is stored on disk).
uint64_t TagHash(absl::string_view tag);

// INVALID_ARGUMENT naming records[index].kind unless a client may append
// that kind.
absl::Status CheckAppendKind(const sv1::AppendRecord& record, int index);

// Moves `record` into an engine record (the engine validates it).
RecordInput ToRecordInput(sv1::AppendRecord* record);

// The tag and body of a version-1 record's (enveloped) body. DATA_LOSS when
// the envelope is malformed.
struct UnpackedBody {
  absl::string_view tag;
  absl::string_view body;
};
absl::StatusOr<UnpackedBody> UnpackBody(absl::string_view stored_body);
// The tag and body of any stored record (unpacked from a version-1
// envelope); DATA_LOSS naming the record when that envelope is malformed.
absl::StatusOr<UnpackedBody> TagAndBody(const RecordView& record);

// Fills `out` from a stored record. DATA_LOSS when a version-1 record's
// envelope is malformed.
absl::Status ToProto(const StoredRecord& record, sv1::StoredRecord* out);

int64_t ToMillis(const google::protobuf::Timestamp& t);
google::protobuf::Timestamp FromMillis(int64_t ms);

}  // namespace apogee::store
