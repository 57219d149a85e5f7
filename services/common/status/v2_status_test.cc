#include "services/common/status/v2_status.h"

#include "gtest/gtest.h"
#include "services/common/status/grpc_status.h"

namespace apogee {
namespace {

namespace v2 = apache::rocketmq::v2;

TEST(V2StatusTest, OkIsOkWithMessage) {
  v2::Status out;
  ToV2Status(absl::OkStatus(), &out);
  EXPECT_EQ(out.code(), v2::OK);
  EXPECT_EQ(out.message(), "OK");
}

TEST(V2StatusTest, TaggedCodeWins) {
  absl::Status s = WithV2Code(absl::NotFoundError("topic \"t\" not found"), v2::TOPIC_NOT_FOUND);
  EXPECT_EQ(ToV2Code(s), v2::TOPIC_NOT_FOUND);
  v2::Status out;
  ToV2Status(s, &out);
  EXPECT_EQ(out.message(), "topic \"t\" not found");
  // The canonical code is untouched for gRPC-level mapping.
  EXPECT_EQ(ToGrpcStatus(s).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(V2StatusTest, CanonicalCodesMap) {
  EXPECT_EQ(ToV2Code(absl::InvalidArgumentError("x")), v2::BAD_REQUEST);
  EXPECT_EQ(ToV2Code(absl::NotFoundError("x")), v2::NOT_FOUND);
  EXPECT_EQ(ToV2Code(absl::FailedPreconditionError("x")), v2::PRECONDITION_FAILED);
  EXPECT_EQ(ToV2Code(absl::UnimplementedError("x")), v2::NOT_IMPLEMENTED);
  EXPECT_EQ(ToV2Code(absl::InternalError("x")), v2::INTERNAL_SERVER_ERROR);
  EXPECT_EQ(ToV2Code(absl::ResourceExhaustedError("x")), v2::TOO_MANY_REQUESTS);
}

TEST(V2StatusTest, WithV2CodeKeepsOkOk) {
  EXPECT_TRUE(WithV2Code(absl::OkStatus(), v2::TOPIC_NOT_FOUND).ok());
}

TEST(V2StatusTest, FromV2StatusMapsTheHttpClassAndKeepsThePreciseCode) {
  v2::Status in;
  in.set_code(v2::TOPIC_NOT_FOUND);
  in.set_message("topic \"T\" not found");
  absl::Status s = FromV2Status(in);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "TOPIC_NOT_FOUND: topic \"T\" not found");
  EXPECT_EQ(ToV2Code(s), v2::TOPIC_NOT_FOUND);
  in.set_code(v2::TOO_MANY_REQUESTS);
  EXPECT_EQ(FromV2Status(in).code(), absl::StatusCode::kResourceExhausted);
  in.set_code(v2::INTERNAL_SERVER_ERROR);
  EXPECT_EQ(FromV2Status(in).code(), absl::StatusCode::kInternal);
  in.set_code(v2::OK);
  EXPECT_TRUE(FromV2Status(in).ok());
}

TEST(GrpcStatusTest, RoundTrips) {
  absl::Status s = absl::InvalidArgumentError("topic \"a b\" is bad");
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(g.error_message(), "topic \"a b\" is bad");
  EXPECT_EQ(FromGrpcStatus(g), s);
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace apogee
