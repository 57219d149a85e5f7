#include "services/common/server/unparsed_request.h"

#include <memory>
#include <string>

#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/common/testing/test_server.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;

// A real callback service that implements QueryRoute only.
class Service final : public v2::MessagingService::CallbackService {
  grpc::ServerUnaryReactor* QueryRoute(grpc::CallbackServerContext* context,
                                       const v2::QueryRouteRequest* /*request*/,
                                       v2::QueryRouteResponse* response) override {
    response->mutable_status()->set_code(v2::OK);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class UnparsedRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = testing::StartTestServer({&service_});
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
  }

  grpc::Status Call(const std::string& method, const std::string& payload) {
    return testing::CallRaw(server_.channel.get(), method, payload);
  }

  Service service_;
  testing::TestServer server_;
};

TEST_F(UnparsedRequestTest, GarbagePayloadIsInvalidArgumentNamingTheMethod) {
  // A truncated length-delimited field 1: never parses.
  const grpc::Status status =
      Call("/apache.rocketmq.v2.MessagingService/QueryRoute", std::string("\x0a\x7f\x01", 3));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "request to /apache.rocketmq.v2.MessagingService/QueryRoute does not parse as the "
            "method's request message (malformed protobuf)");
}

TEST_F(UnparsedRequestTest, WellFormedRequestsAndUnknownMethodsAreUntouched) {
  v2::QueryRouteRequest request;
  request.mutable_topic()->set_name("T");
  EXPECT_TRUE(
      Call("/apache.rocketmq.v2.MessagingService/QueryRoute", request.SerializeAsString()).ok());
  // Implemented by nobody: gRPC's own UNIMPLEMENTED stays.
  EXPECT_EQ(Call("/apache.rocketmq.v2.MessagingService/SendMessage", "").error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(Call("/no.such.Service/Method", std::string("\x0a\x7f\x01", 3)).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace apogee
