// grpc.health.v1 as every GrpcServer serves it (health_service.h), over a
// real socket: Check and Watch across SetServing and shutdown.
#include "services/common/server/health_service.h"

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/common/testing/test_server.h"

namespace apogee {
namespace {

using health_v1::HealthCheckRequest;
using health_v1::HealthCheckResponse;

grpc::Status Check(health_v1::Health::Stub& stub, const std::string& service,
                   HealthCheckResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  HealthCheckRequest request;
  request.set_service(service);
  return stub.Check(&context, request, response);
}

// A Watch call with a deadline, so a test that waits for a frame that never
// comes fails instead of hanging.
struct Watch {
  Watch(health_v1::Health::Stub& stub, const std::string& service) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    HealthCheckRequest request;
    request.set_service(service);
    reader = stub.Watch(&context, request);
  }
  // The next status, or UNKNOWN once the stream ended.
  HealthCheckResponse::ServingStatus Next() {
    HealthCheckResponse response;
    if (!reader->Read(&response)) return HealthCheckResponse::UNKNOWN;
    return response.status();
  }
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader;
};

TEST(HealthServiceTest, CheckFollowsSetServing) {
  auto started = testing::StartTestServer({});
  ASSERT_TRUE(started.ok()) << started.status();
  auto stub = health_v1::Health::NewStub(started->channel);
  HealthCheckResponse response;
  ASSERT_TRUE(Check(*stub, "", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  started->server->SetServing(false);
  ASSERT_TRUE(Check(*stub, "", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  started->server->SetServing(true);
  ASSERT_TRUE(Check(*stub, "", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
}

TEST(HealthServiceTest, CheckOfAnotherServiceIsNotFound) {
  auto started = testing::StartTestServer({});
  ASSERT_TRUE(started.ok()) << started.status();
  auto stub = health_v1::Health::NewStub(started->channel);
  HealthCheckResponse response;
  grpc::Status status = Check(*stub, "apogee.store.v1.Store", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("apogee.store.v1.Store"), std::string::npos)
      << status.error_message();
}

TEST(HealthServiceTest, WatchReportsEachChangeUntilShutdown) {
  auto started = testing::StartTestServer({});
  ASSERT_TRUE(started.ok()) << started.status();
  auto stub = health_v1::Health::NewStub(started->channel);
  Watch first(*stub, "");
  Watch second(*stub, "");
  EXPECT_EQ(first.Next(), HealthCheckResponse::SERVING);
  EXPECT_EQ(second.Next(), HealthCheckResponse::SERVING);
  started->server->SetServing(false);
  EXPECT_EQ(first.Next(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(second.Next(), HealthCheckResponse::NOT_SERVING);
  started->server->SetServing(true);
  EXPECT_EQ(first.Next(), HealthCheckResponse::SERVING);
  // Shutdown ends the streams (not their deadline), after at most a
  // NOT_SERVING frame (its write may be cancelled with the call).
  started->server->Shutdown(absl::ZeroDuration());
  HealthCheckResponse::ServingStatus status;
  while ((status = first.Next()) != HealthCheckResponse::UNKNOWN) {
    EXPECT_EQ(status, HealthCheckResponse::NOT_SERVING);
  }
  grpc::Status end = first.reader->Finish();
  EXPECT_FALSE(end.ok());
  EXPECT_NE(end.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << end.error_message();
}

TEST(HealthServiceTest, WatchOfAnotherServiceIsServiceUnknown) {
  auto started = testing::StartTestServer({});
  ASSERT_TRUE(started.ok()) << started.status();
  auto stub = health_v1::Health::NewStub(started->channel);
  Watch watch(*stub, "apogee.store.v1.Store");
  EXPECT_EQ(watch.Next(), HealthCheckResponse::SERVICE_UNKNOWN);
  // The stream stays open; the client ends it.
  watch.context.TryCancel();
  EXPECT_EQ(watch.Next(), HealthCheckResponse::UNKNOWN);
  EXPECT_EQ(watch.reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

}  // namespace
}  // namespace apogee
