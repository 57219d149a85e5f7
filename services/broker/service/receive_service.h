// apogee.broker.v1.Receiver on the broker: MessagingService's receive (pop,
// long poll, invisible time) answered with the messages packed many to a
// stream response instead of one per response as v2 does; our SDK's
// SimpleConsumer receives through it. Served from the server's completion
// queue like every other method.
#pragma once

#include <cstdint>

#include "apogee/broker/v1/receive.grpc.pb.h"
#include "services/broker/service/messaging_service.h"
#include "services/common/server/queue_service.h"

namespace apogee::broker {

// Thread-safe.
class ReceiveService final : public QueueService<::apogee::broker::v1::Receiver> {
 public:
  // `messaging` does the receiving and outlives this. A response closes
  // before it would pass `max_frame_bytes` (a larger message comes alone).
  ReceiveService(MessagingService* messaging, int64_t max_frame_bytes);

  void Receive(grpc::ServerContext* context, const v2::ReceiveMessageRequest* request,
               StreamOut<::apogee::broker::v1::ReceiveResponse>* out);

 private:
  MessagingService* const messaging_;
  const int64_t max_frame_bytes_;
};

}  // namespace apogee::broker
