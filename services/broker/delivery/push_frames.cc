#include "services/broker/delivery/push_frames.h"

#include <algorithm>
#include <string>
#include <utility>

#include "services/broker/message/codec.h"
#include "services/common/wire/wire_out.h"

namespace apogee::broker {
namespace {

// Where each frame starts among `sizes` (message i in frame f when
// starts[f] <= i < starts[f + 1]; the last entry is sizes.size()).
std::vector<size_t> FrameStarts(const std::vector<size_t>& sizes, int64_t max_frame_bytes) {
  std::vector<size_t> starts;
  int64_t frame_bytes = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto size = static_cast<int64_t>(sizes[i]);
    if (starts.empty() || (frame_bytes > 0 && frame_bytes + size > max_frame_bytes)) {
      starts.push_back(i);
      frame_bytes = 0;
    }
    frame_bytes += size;
  }
  starts.push_back(sizes.size());
  return starts;
}

// pushv1::PushedMessage's fields for a stored delivery, in field-number order.
void PutStored(const StoredDelivery& d, WireOut& out) {
  const store::v1::StoredRecord& r = d.record;
  out.Int(2, 1);  // delivery_attempt
  out.Bytes(3, d.receipt_handle);
  out.Bytes(6, r.body());
  out.Bytes(7, r.topic());
  out.Int(8, r.queue_id());
  out.Int(9, r.queue_offset());
  out.Timestamp(10, r.store_time().seconds(), r.store_time().nanos());
}

}  // namespace

pushv1::PushedMessage ToPushedMessage(v2::Message message) {
  pushv1::PushedMessage out;
  out.set_delivery_attempt(std::max(1, message.system_properties().delivery_attempt()));
  out.set_receipt_handle(message.system_properties().receipt_handle());
  out.set_message_group(message.system_properties().message_group());
  if (message.system_properties().has_delivery_timestamp()) {
    *out.mutable_delivery_time() = message.system_properties().delivery_timestamp();
  }
  *out.mutable_message() = ToMessageView(std::move(message));
  return out;
}

std::vector<google::protobuf::RepeatedPtrField<pushv1::PushedMessage>> PackFrames(
    std::vector<v2::Message> messages, int64_t max_frame_bytes) {
  std::vector<pushv1::PushedMessage> pushed;
  std::vector<size_t> sizes;
  for (v2::Message& m : messages) {
    pushed.push_back(ToPushedMessage(std::move(m)));
    sizes.push_back(pushed.back().ByteSizeLong());
  }
  const std::vector<size_t> starts = FrameStarts(sizes, max_frame_bytes);
  std::vector<google::protobuf::RepeatedPtrField<pushv1::PushedMessage>> frames(starts.size() - 1);
  for (size_t f = 0; f + 1 < starts.size(); ++f) {
    for (size_t i = starts[f]; i < starts[f + 1]; ++i) *frames[f].Add() = std::move(pushed[i]);
  }
  return frames;
}

std::vector<Encoded<pushv1::ConsumeResponse>> EncodeDeliveries(PopEngine::Popped popped,
                                                               int64_t max_frame_bytes) {
  // Decoded messages are serialized as PushedMessages (the retry topic's and
  // filtered ones: not the drain's bulk); a serialized message is the bytes
  // of its field in the frame.
  std::vector<std::string> decoded;
  std::vector<size_t> sizes;
  for (v2::Message& m : popped.messages) {
    decoded.push_back(ToPushedMessage(std::move(m)).SerializeAsString());
    sizes.push_back(decoded.back().size());
  }
  for (const StoredDelivery& d : popped.stored) {
    WireOut counter;
    PutStored(d, counter);
    sizes.push_back(counter.size());
  }
  const std::vector<size_t> starts = FrameStarts(sizes, max_frame_bytes);
  std::vector<Encoded<pushv1::ConsumeResponse>> frames;
  for (size_t f = 0; f + 1 < starts.size(); ++f) {
    auto put_frame = [&](WireOut& out) {
      out.Message(3, [&](WireOut& deliveries) {  // ConsumeResponse.deliveries
        for (size_t i = starts[f]; i < starts[f + 1]; ++i) {
          if (i < decoded.size()) {
            deliveries.Bytes(1, decoded[i], /*always=*/true);
            continue;
          }
          const StoredDelivery& d = popped.stored[i - decoded.size()];
          deliveries.Message(1, sizes[i], [&d](WireOut& o) { PutStored(d, o); });
        }
      });
    };
    frames.push_back(Encoded<pushv1::ConsumeResponse>{EncodeSlice(put_frame)});
  }
  return frames;
}

}  // namespace apogee::broker
