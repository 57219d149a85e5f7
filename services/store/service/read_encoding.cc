#include "services/store/service/read_encoding.h"

#include <cstring>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/timestamp.pb.h"
#include "services/common/status/status_macros.h"
#include "services/store/service/record_codec.h"

namespace apogee::store {
namespace {

using ::google::protobuf::io::CodedOutputStream;

constexpr uint32_t kVarintType = 0;
constexpr uint32_t kLengthDelimitedType = 2;

// Writes protobuf fields at `p`, or, given none, only counts their bytes.
class WireOut {
 public:
  explicit WireOut(uint8_t* p = nullptr) : p_(p) {}
  size_t size() const { return size_; }

  // An integer or enum field; proto3 leaves out zero. Negative int32 and
  // enum values are sign-extended to ten bytes, as the generated code does.
  void Int(int field, int64_t value) {
    if (value == 0) return;
    Tag(field, kVarintType);
    Varint(static_cast<uint64_t>(value));
  }
  // A string or bytes field; proto3 leaves out an empty one, except as an
  // element of a repeated field (`always`).
  void Bytes(int field, absl::string_view value, bool always = false) {
    if (value.empty() && !always) return;
    Tag(field, kLengthDelimitedType);
    Varint(value.size());
    if (p_ != nullptr) {
      if (!value.empty()) std::memcpy(p_, value.data(), value.size());
      p_ += value.size();
    }
    size_ += value.size();
  }
  // A message field (written even when empty: it is set) of `size` bytes,
  // whose fields `put(WireOut&)` writes; a counting pass only adds `size`.
  template <typename Put>
  void Message(int field, size_t size, const Put& put) {
    Tag(field, kLengthDelimitedType);
    Varint(size);
    if (p_ == nullptr) {
      size_ += size;
    } else {
      put(*this);
    }
  }
  // The same, sized by a counting pass of `put` first.
  template <typename Put>
  void Message(int field, const Put& put) {
    WireOut counter;
    put(counter);
    Message(field, counter.size(), put);
  }

 private:
  void Tag(int field, uint32_t type) { Varint((static_cast<uint32_t>(field) << 3) | type); }
  void Varint(uint64_t value) {
    if (p_ != nullptr) p_ = CodedOutputStream::WriteVarint64ToArray(value, p_);
    size_ += CodedOutputStream::VarintSize64(value);
  }

  uint8_t* p_;
  size_t size_ = 0;
};

// google.protobuf.Timestamp of `ms`, as FromMillis sets it.
void PutTimestamp(int field, int64_t ms, WireOut& out) {
  const google::protobuf::Timestamp t = FromMillis(ms);
  out.Message(field, [&t](WireOut& o) {
    o.Int(1, t.seconds());
    o.Int(2, t.nanos());
  });
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

// One slice holding what `put(WireOut&)` writes.
template <typename Put>
grpc::Slice Encode(const Put& put) {
  WireOut counter;
  put(counter);
  grpc::Slice slice(counter.size());
  WireOut out(const_cast<uint8_t*>(slice.begin()));  // a new slice: ours to fill
  put(out);
  return slice;
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
  return Encode([&queue](WireOut& out) { PutReadResponse(queue, out); });
}

grpc::Slice EncodeReadQueuesResponse(const std::vector<absl::StatusOr<QueueRead>>& results) {
  return Encode([&results](WireOut& out) {
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
