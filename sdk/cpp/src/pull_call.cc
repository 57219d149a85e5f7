#include "sdk/cpp/src/pull_call.h"

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "grpcpp/client_context.h"
#include "sdk/cpp/src/route.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/v2_status.h"

namespace apogee::sdk {

absl::StatusOr<PullAnswer> PullOnce(Channels& channels, const std::string& endpoint,
                                    const v2::PullMessageRequest& request, absl::Duration long_poll,
                                    absl::Duration request_timeout) {
  auto stub = channels.Messaging(endpoint);
  grpc::ClientContext context;
  channels.Prepare(&context, long_poll + request_timeout);
  auto reader = stub->PullMessage(&context, request);
  v2::PullMessageResponse item;
  PullAnswer answer;
  while (reader->Read(&item)) {
    if (item.has_status()) answer.in_band = FromV2Status(item.status());
    if (item.has_message()) answer.messages.push_back(std::move(*item.mutable_message()));
    if (item.content_case() == v2::PullMessageResponse::kNextOffset) {
      answer.next_offset = item.next_offset();
    }
  }
  if (absl::Status s = FromGrpcStatus(reader->Finish()); !s.ok()) return s;
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find(kReadFromBrokerIdKey); it != trailers.end()) {
    int64_t broker_id;
    if (absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &broker_id)) {
      answer.read_from = broker_id;
    }
  }
  return answer;
}

}  // namespace apogee::sdk
