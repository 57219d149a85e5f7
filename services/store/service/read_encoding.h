// Read and ReadQueues answers written in their wire format straight from the
// records read: the bytes a ToProto'd sv1::ReadResponse would serialize to,
// without building, serializing and clearing a message per record. On a
// backlog drain those three were a fifth of the store's CPU, and each body
// was copied twice more than this needs (docs/benchmarks.md, "Read answers
// encoded from the records").
//
// Field for field what ToProto sets (proto3: zero and empty scalars are not
// written; store_time always is), in field-number order, so the result is
// byte for byte what the generated serializer writes for the same message
// (read_encoding_test.cc checks that on every record kind). Served as an
// Encoded answer (services/common/server/encoded.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/slice.h"
#include "services/common/server/encoded.h"
#include "services/store/commitlog/record.h"
#include "services/store/engine/store.h"

namespace apogee::store {

// A stored record ready to encode: where its fields are, and its size as a
// sv1::StoredRecord. Points into the StoredRecord it came from.
struct RecordFields {
  RecordView view;
  absl::string_view tag;   // unpacked from a version-1 envelope
  absl::string_view body;  // likewise
  size_t size = 0;
};

// DATA_LOSS (naming the record) when a version-1 envelope is malformed.
absl::StatusOr<RecordFields> FieldsOf(const StoredRecord& record);

// One queue's read, kept until it is encoded. `fields` point into `read`'s
// records, which must not change meanwhile (moving the struct is fine).
struct QueueRead {
  ReadResult read;
  std::vector<RecordFields> fields;  // the records to answer with, in order
  int64_t body_bytes = 0;            // their bodies' bytes
};

// sv1::ReadResponse of `queue`.
grpc::Slice EncodeReadResponse(const QueueRead& queue);

// sv1::ReadQueuesResponse with one result per entry: a read, or why it
// failed (its code and message).
grpc::Slice EncodeReadQueuesResponse(const std::vector<absl::StatusOr<QueueRead>>& results);

}  // namespace apogee::store
