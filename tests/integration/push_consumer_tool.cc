// push_consumer_tool: a push consumer as its own process, for tests that
// kill a consumer for real (SIGKILL: the kernel resets its connection).
// Subscribes, grants credits once, never settles, and prints one line per
// event to stdout (flushed at once):
//   assignment <members> <queue>,<queue>,...
//   message <message id> <delivery attempt>
//   end <grpc code> <message>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_join.h"
#include "apogee/broker/v1/push.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, broker, "", "Broker gRPC address (host:port)");
ABSL_FLAG(std::string, group, "", "Consumer group");
ABSL_FLAG(std::string, topic, "", "Topic");
ABSL_FLAG(std::string, client_id, "", "Client id");
ABSL_FLAG(int32_t, credits, 100, "Credits granted with the subscription");
ABSL_FLAG(int32_t, ack_timeout_seconds, 60, "Subscribe.ack_timeout");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  namespace pushv1 = ::apogee::broker::v1;
  auto stub = pushv1::PushConsumer::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_broker), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto stream = stub->Consume(&context);
  pushv1::ConsumeRequest request;
  pushv1::Subscribe* subscribe = request.mutable_subscribe();
  subscribe->set_client_id(absl::GetFlag(FLAGS_client_id));
  subscribe->set_group(absl::GetFlag(FLAGS_group));
  subscribe->set_topic(absl::GetFlag(FLAGS_topic));
  subscribe->set_initial_credits(absl::GetFlag(FLAGS_credits));
  subscribe->mutable_ack_timeout()->set_seconds(absl::GetFlag(FLAGS_ack_timeout_seconds));
  if (!stream->Write(request)) {
    std::printf("end write-failed\n");
    return 1;
  }
  pushv1::ConsumeResponse response;
  while (stream->Read(&response)) {
    if (response.has_assignment()) {
      std::printf("assignment %d %s\n", response.assignment().members(),
                  absl::StrJoin(response.assignment().queue_ids(), ",").c_str());
    }
    for (const pushv1::PushedMessage& m : response.deliveries().messages()) {
      std::printf("message %s %d\n", m.message().message_id().c_str(), m.delivery_attempt());
    }
    std::fflush(stdout);
  }
  grpc::Status status = stream->Finish();
  std::printf("end %d %s\n", static_cast<int>(status.error_code()), status.error_message().c_str());
  return status.ok() ? 0 : 1;
}
