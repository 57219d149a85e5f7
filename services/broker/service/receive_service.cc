#include "services/broker/service/receive_service.h"

#include <utility>
#include <vector>

#include "services/broker/delivery/push_session.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {

ReceiveService::ReceiveService(MessagingService* messaging, int64_t max_frame_bytes)
    : messaging_(messaging), max_frame_bytes_(max_frame_bytes) {
  ServeServerStream("Receive", this, &ReceiveService::Receive);
}

void ReceiveService::Receive(grpc::ServerContext* context, const v2::ReceiveMessageRequest* request,
                             StreamOut<pushv1::ReceiveResponse>* out) {
  messaging_->Receive(context, request,
                      [this, out](const absl::Status& status, std::vector<v2::Message> messages) {
                        pushv1::ReceiveResponse frame;
                        int64_t frame_bytes = 0;
                        for (v2::Message& m : messages) {
                          const auto size = static_cast<int64_t>(m.ByteSizeLong());
                          if (frame_bytes > 0 && frame_bytes + size > max_frame_bytes_) {
                            out->Write(std::exchange(frame, pushv1::ReceiveResponse()));
                            frame_bytes = 0;
                          }
                          frame_bytes += size;
                          *frame.add_messages() = ToPushedMessage(std::move(m));
                        }
                        ToV2Status(status, frame.mutable_status());
                        out->Write(std::move(frame));
                        out->Close();
                      });
}

}  // namespace apogee::broker
