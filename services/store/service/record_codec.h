// Translation between apogee.store.v1 records and engine records.
//
// The engine stores an opaque body and a 64-bit tags hash (enough to filter
// reads); the API also hands the tag string back (the broker copies it to
// retry and dead-letter topics). Until the record format has a tag field of
// its own, the service keeps the tag in a small envelope in front of the body
// ("Body envelope" in README.md):
//
//   u8 version (= 1) | u16 LE tag length | tag bytes | body bytes
//
// Every record appended through the service carries it; Read and the
// lookups strip it again, so clients never see it.
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

inline constexpr uint8_t kEnvelopeVersion = 1;
inline constexpr size_t kMaxTagLength = ::apogee::kMaxMessageTagLength;  // broker checks it too
// The most the envelope adds to a body: the engine's body limit is the
// client-visible one plus this.
inline constexpr uint32_t kMaxEnvelopeBytes = 3 + kMaxTagLength;

// The largest record body (a message and everything stored with it) the
// service accepts when message bodies may be up to `max_message_body`.
uint32_t RecordBodyLimit(uint32_t max_message_body);
// The engine's body limit for the same: the record body plus the envelope.
inline uint32_t EngineBodyLimit(uint32_t max_message_body) {
  return RecordBodyLimit(max_message_body) + kMaxEnvelopeBytes;
}

// The tags hash the engine filters on: 64-bit FNV-1a of the tag, 0 for no
// tag. Stable across processes and builds (it is stored on disk).
uint64_t TagHash(absl::string_view tag);

// Moves `record` (element `index` of a batch, for error messages) into an
// engine record. INVALID_ARGUMENT when the body is over `max_body_size` or
// the tag over kMaxTagLength; the engine checks everything else.
absl::StatusOr<RecordInput> ToRecordInput(size_t index, sv1::AppendRecord* record,
                                          uint32_t max_body_size);

// The tag and body of a stored (enveloped) body. DATA_LOSS when the envelope
// is malformed.
struct UnpackedBody {
  absl::string_view tag;
  absl::string_view body;
};
absl::StatusOr<UnpackedBody> UnpackBody(absl::string_view stored_body);

// Fills `out` from a stored record. DATA_LOSS when the envelope is malformed.
absl::Status ToProto(const StoredRecord& record, sv1::StoredRecord* out);

int64_t ToMillis(const google::protobuf::Timestamp& t);
google::protobuf::Timestamp FromMillis(int64_t ms);

}  // namespace apogee::store
