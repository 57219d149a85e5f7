// An answer its handler encoded itself: `Message`'s wire format in one
// slice, sent as it is (no message built, serialized and freed per call).
// Any method served by AsyncUnaryMethod may take one as its response type
// (Clear and ByteSizeLong serve its MessagePool and error path), and a
// QueueBidiStream as the type it writes; the handler fills `bytes`, e.g.
// with what the generated serializer would write (WireOut in services/common/wire/wire_out.h;
// the store's Read answers, services/store/service/read_encoding.h; the
// broker's push frames, services/broker/delivery/push_frames.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "grpcpp/support/status.h"

namespace apogee {

template <typename Message>
struct Encoded {
  grpc::Slice bytes;
  void Clear() { bytes = grpc::Slice(); }
  size_t ByteSizeLong() const { return bytes.size(); }
};

// `message` serialized, for a stream that writes Encoded answers beside
// ones it builds as messages.
template <typename Message>
Encoded<Message> EncodeMessage(const Message& message) {
  grpc::Slice slice(message.ByteSizeLong());
  message.SerializeWithCachedSizesToArray(const_cast<uint8_t*>(slice.begin()));  // a new slice
  return Encoded<Message>{std::move(slice)};
}

}  // namespace apogee

namespace grpc {

template <typename Message>
class SerializationTraits<apogee::Encoded<Message>, void> {
 public:
  static Status Serialize(const apogee::Encoded<Message>& in, ByteBuffer* out, bool* own) {
    Slice slice = in.bytes;  // a reference, not a copy
    *out = ByteBuffer(&slice, 1);
    *own = true;
    return Status::OK;
  }
};

}  // namespace grpc
