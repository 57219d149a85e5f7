// Protobuf wire format written by hand, for answers a handler encodes itself
// (Encoded in encoded.h) straight from the data it holds, without building,
// serializing and freeing a message per item. The caller lists the fields as
// the generated code would set them, in field-number order; its tests check
// the bytes against the generated serializer's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"
#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/support/slice.h"

namespace apogee {

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
  // A google.protobuf.Timestamp field (set, so written even at zero).
  void Timestamp(int field, int64_t seconds, int32_t nanos) {
    Message(field, [seconds, nanos](WireOut& o) {
      o.Int(1, seconds);
      o.Int(2, nanos);
    });
  }

 private:
  static constexpr uint32_t kVarintType = 0;
  static constexpr uint32_t kLengthDelimitedType = 2;

  void Tag(int field, uint32_t type) { Varint((static_cast<uint32_t>(field) << 3) | type); }
  void Varint(uint64_t value) {
    using ::google::protobuf::io::CodedOutputStream;
    if (p_ != nullptr) p_ = CodedOutputStream::WriteVarint64ToArray(value, p_);
    size_ += CodedOutputStream::VarintSize64(value);
  }

  uint8_t* p_;
  size_t size_ = 0;
};

// One slice holding what `put(WireOut&)` writes: a counting pass sizes it,
// a second pass fills it.
template <typename Put>
grpc::Slice EncodeSlice(const Put& put) {
  WireOut counter;
  put(counter);
  grpc::Slice slice(counter.size());
  WireOut out(const_cast<uint8_t*>(slice.begin()));  // a new slice: ours to fill
  put(out);
  return slice;
}

}  // namespace apogee
