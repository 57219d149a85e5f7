// A request parsed together with the bytes it arrived in, for a handler that
// passes parts of it on unchanged: the broker stores each sent message as
// the client encoded it instead of encoding it again. Any method served by
// AsyncUnaryMethod may take one as its request type; the serialization
// traits below copy the payload into one string and parse from it (up to
// kMaxBytes).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "grpcpp/support/status.h"

namespace apogee {

template <typename Message>
struct WithBytes {
  // Larger requests are parsed straight from gRPC's buffer and `bytes` stays
  // empty: holding a copy would double what a server holds for its largest
  // requests, for no gain (their cost is the copy itself, made either way).
  static constexpr size_t kMaxBytes = 2 << 20;

  Message message;
  std::string bytes;  // what `message` was parsed from; empty past kMaxBytes

  // For reuse (MessagePool): both keep their memory.
  void Clear() {
    message.Clear();
    bytes.clear();
  }
};

}  // namespace apogee

namespace grpc {

template <typename Message>
class SerializationTraits<apogee::WithBytes<Message>, void> {
 public:
  static Status Serialize(const apogee::WithBytes<Message>& in, ByteBuffer* out, bool* own) {
    return SerializationTraits<Message>::Serialize(in.message, out, own);
  }

  static Status Deserialize(ByteBuffer* buffer, apogee::WithBytes<Message>* out) {
    out->bytes.clear();
    if (buffer->Length() > apogee::WithBytes<Message>::kMaxBytes) {
      return SerializationTraits<Message>::Deserialize(buffer, &out->message);
    }
    std::vector<Slice> slices;
    Status dumped = buffer->Dump(&slices);
    buffer->Clear();
    if (!dumped.ok()) return dumped;
    size_t size = 0;
    for (const Slice& slice : slices) size += slice.size();
    out->bytes.reserve(size);
    for (const Slice& slice : slices) {
      out->bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    slices.clear();  // before parsing: held twice, not three times
    if (!out->message.ParseFromString(out->bytes)) {
      return Status(StatusCode::INTERNAL, "request does not parse");
    }
    return Status::OK;
  }
};

}  // namespace grpc
