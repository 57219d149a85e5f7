#include "services/broker/service/receive_service.h"

#include <utility>
#include <vector>

#include "services/broker/delivery/push_frames.h"
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
                        auto frames = PackFrames(std::move(messages), max_frame_bytes_);
                        if (frames.empty()) frames.emplace_back();  // the status goes alone
                        for (size_t i = 0; i < frames.size(); ++i) {
                          pushv1::ReceiveResponse response;
                          response.mutable_messages()->Swap(&frames[i]);
                          if (i + 1 == frames.size()) ToV2Status(status, response.mutable_status());
                          out->Write(std::move(response));
                        }
                        out->Close();
                      });
}

}  // namespace apogee::broker
