#include "services/store/service/read_encoding.h"

#include "google/protobuf/timestamp.pb.h"
#include "services/common/status/status_macros.h"
#include "services/common/wire/wire_out.h"
#include "services/store/service/record_codec.h"

namespace apogee::store {
namespace {

// google.protobuf.Timestamp of `ms`, as FromMillis sets it.
void PutTimestamp(int field, int64_t ms, WireOut& out) {
  const google::protobuf::Timestamp t = FromMillis(ms);
  out.Timestamp(field, t.seconds(), t.nanos());
}

// sv1::StoredRecord's fields, as ToProto sets them.
void PutRecord(const RecordFields& f, WireOut& out) {
  const RecordView& v = f.view;
  out.Bytes(1, v.topic());
  out.Int(2, v.queue_id());
  out.Int(3, v.queue_offset());
  out.Int(4, v.commit_offset());
  out.Bytes(5, v.message_id());
  for (absl::string_view key : v.keys()) out.Bytes(6, key, /*always=*/true);
  out.Bytes(7, f.tag);
  if (v.born_timestamp_ms() != 0) PutTimestamp(8, v.born_timestamp_ms(), out);
  PutTimestamp(9, v.store_timestamp_ms(), out);
  out.Int(10, v.flags());
  out.Bytes(11, f.body);
  if (v.kind() != RecordKind::kNormal) {
    out.Int(12, static_cast<int32_t>(v.kind()));
    out.Bytes(13, v.target_topic());
    out.Int(14, v.target_queue());
    if (v.at_ms() != 0) PutTimestamp(15, v.at_ms(), out);
    out.Int(16, v.subject());
    out.Int(17, static_cast<int32_t>(v.count()));
  }
}

// sv1::ReadResponse's fields.
void PutReadResponse(const QueueRead& queue, WireOut& out) {
  for (const RecordFields& f : queue.fields) {
    out.Message(1, f.size, [&f](WireOut& o) { PutRecord(f, o); });
  }
  out.Int(2, queue.read.next_offset);
  out.Int(3, queue.read.min_offset);
  out.Int(4, queue.read.max_offset);
}

}  // namespace

absl::StatusOr<RecordFields> FieldsOf(const StoredRecord& record) {
  RecordFields f;
  f.view = record.view();
  APOGEE_ASSIGN_OR_RETURN(const UnpackedBody body, TagAndBody(f.view));
  f.tag = body.tag;
  f.body = body.body;
  WireOut counter;
  PutRecord(f, counter);
  f.size = counter.size();
  return f;
}

grpc::Slice EncodeReadResponse(const QueueRead& queue) {
  return EncodeSlice([&queue](WireOut& out) { PutReadResponse(queue, out); });
}

grpc::Slice EncodeReadQueuesResponse(const std::vector<absl::StatusOr<QueueRead>>& results) {
  return EncodeSlice([&results](WireOut& out) {
    for (const absl::StatusOr<QueueRead>& result : results) {
      // sv1::ReadQueueResult: the read, or its code and error.
      out.Message(1, [&result](WireOut& o) {
        if (result.ok()) {
          o.Message(1, [&result](WireOut& r) { PutReadResponse(*result, r); });
          return;
        }
        o.Int(2, static_cast<int32_t>(result.status().code()));
        o.Bytes(3, result.status().message());
      });
    }
  });
}

}  // namespace apogee::store
