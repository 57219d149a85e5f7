// What a push stream and a batched receive send: popped messages in their
// pushed form (pushv1::PushedMessage), cut into frames of at most
// `max_frame_bytes` (a frame closes before it would pass the limit; a
// larger message goes alone).
//
// A push stream's Deliveries frames are written in their wire format
// straight from the popped records (EncodeDeliveries): building a
// PushedMessage per message, serializing the frame and freeing them was a
// tenth of the broker's CPU in a backlog drain (docs/benchmarks.md,
// "Push frames, send requests and stored messages in wire format").
#pragma once

#include <cstdint>
#include <vector>

#include "apogee/broker/v1/push.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "services/broker/consume/pop_engine.h"
#include "services/common/server/encoded.h"

namespace apogee::broker {

namespace pushv1 = ::apogee::broker::v1;

// The pushed form of a decoded message.
pushv1::PushedMessage ToPushedMessage(v2::Message message);

// `messages` in their pushed form, in frames (batched receive responses).
// Empty for no messages.
std::vector<google::protobuf::RepeatedPtrField<pushv1::PushedMessage>> PackFrames(
    std::vector<v2::Message> messages, int64_t max_frame_bytes);

// `popped` as ConsumeResponse{deliveries} frames, the decoded messages first.
// A stored delivery becomes a PushedMessage with the record's body as
// `stored_message` and the topic, queue, offset and store time beside it,
// attempt 1 (only first deliveries come stored): the bytes the generated
// serializer writes for that message (push_frames_test.cc checks them).
// Empty for no messages.
std::vector<Encoded<pushv1::ConsumeResponse>> EncodeDeliveries(PopEngine::Popped popped,
                                                               int64_t max_frame_bytes);

}  // namespace apogee::broker
