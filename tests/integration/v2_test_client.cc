#include "tests/integration/v2_test_client.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace apogee::testing {

namespace v2 = ::apache::rocketmq::v2;

V2TestClient::V2TestClient(const std::string& broker_address, std::string client_id)
    : client_id_(std::move(client_id)),
      stub_(v2::MessagingService::NewStub(
          grpc::CreateChannel(broker_address, grpc::InsecureChannelCredentials()))) {}

std::unique_ptr<grpc::ClientContext> V2TestClient::NewContext(absl::Duration timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context->AddMetadata("x-mq-client-id", client_id_);
  for (const auto& [key, value] : headers_) context->AddMetadata(key, value);
  return context;
}

absl::Status V2TestClient::Send(const std::string& topic, const std::string& id,
                                const std::string& body, const std::string& key,
                                const std::string& tag) {
  v2::SendMessageRequest request;
  v2::Message* message = request.add_messages();
  message->mutable_topic()->set_name(topic);
  v2::SystemProperties* props = message->mutable_system_properties();
  props->set_message_id(id);
  props->set_message_type(v2::NORMAL);
  if (!key.empty()) props->add_keys(key);
  if (!tag.empty()) props->set_tag(tag);
  (*message->mutable_user_properties())["origin"] = "v2_test_client";
  message->set_body(body);
  v2::SendMessageResponse response;
  grpc::Status rpc = stub_->SendMessage(NewContext(absl::Seconds(10)).get(), request, &response);
  if (!rpc.ok()) return absl::UnavailableError(absl::StrCat("SendMessage: ", rpc.error_message()));
  if (response.status().code() != v2::OK) {
    return absl::InternalError(absl::StrCat("SendMessage of ", id, " answered ",
                                            v2::Code_Name(response.status().code()), ": ",
                                            response.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v2::Message>> V2TestClient::ReceiveOnce(const std::string& group,
                                                                   const std::string& topic,
                                                                   int batch, absl::Duration poll,
                                                                   absl::Duration invisible) {
  v2::ReceiveMessageRequest request;
  request.mutable_group()->set_name(group);
  request.mutable_message_queue()->mutable_topic()->set_name(topic);
  request.mutable_filter_expression()->set_type(v2::TAG);
  request.mutable_filter_expression()->set_expression("*");
  request.set_batch_size(batch);
  request.mutable_invisible_duration()->set_seconds(absl::ToInt64Seconds(invisible));
  request.mutable_long_polling_timeout()->set_seconds(absl::ToInt64Seconds(poll));
  auto context = NewContext(poll + absl::Seconds(5));
  auto stream = stub_->ReceiveMessage(context.get(), request);
  std::vector<v2::Message> messages;
  v2::ReceiveMessageResponse item;
  while (stream->Read(&item)) {
    if (item.has_message()) messages.push_back(item.message());
  }
  grpc::Status rpc = stream->Finish();
  if (!rpc.ok()) {
    return absl::UnavailableError(absl::StrCat("ReceiveMessage: ", rpc.error_message()));
  }
  return messages;
}

absl::Status V2TestClient::Ack(const std::string& group, const v2::Message& message) {
  // One entry: the delivery named by the message's receipt handle.
  v2::AckMessageEntry entry;
  entry.set_receipt_handle(message.system_properties().receipt_handle());
  entry.set_message_id(message.system_properties().message_id());
  v2::AckMessageRequest request;
  *request.add_entries() = std::move(entry);
  request.mutable_group()->set_name(group);
  request.mutable_topic()->set_name(message.topic().name());
  v2::AckMessageResponse response;
  grpc::Status rpc = stub_->AckMessage(NewContext(absl::Seconds(10)).get(), request, &response);
  if (!rpc.ok()) return absl::UnavailableError(absl::StrCat("AckMessage: ", rpc.error_message()));
  if (response.status().code() != v2::OK) {
    return absl::InternalError(absl::StrCat("AckMessage answered ",
                                            v2::Code_Name(response.status().code()), ": ",
                                            response.status().message()));
  }
  return absl::OkStatus();
}

std::set<std::string> MessageIds(const std::vector<v2::Message>& messages) {
  std::set<std::string> ids;
  for (const v2::Message& m : messages) ids.insert(m.system_properties().message_id());
  return ids;
}

std::vector<v2::Message> V2TestClient::ReceiveAtLeast(const std::string& group,
                                                      const std::string& topic, int n, bool ack,
                                                      absl::Duration timeout) {
  std::vector<v2::Message> received;
  const absl::Time deadline = absl::Now() + timeout;
  while (static_cast<int>(received.size()) < n && absl::Now() < deadline) {
    auto batch = ReceiveOnce(group, topic, 32);
    if (!batch.ok()) continue;
    for (v2::Message& message : *batch) {
      if (ack && !Ack(group, message).ok()) continue;
      received.push_back(std::move(message));
    }
  }
  return received;
}

}  // namespace apogee::testing
