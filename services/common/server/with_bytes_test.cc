#include "services/common/server/with_bytes.h"

#include <string>

#include "apache/rocketmq/v2/service.pb.h"
#include "gtest/gtest.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;

grpc::ByteBuffer BufferOf(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string RequestOfBody(size_t body_bytes) {
  v2::SendMessageRequest request;
  request.add_messages()->set_body(std::string(body_bytes, 'b'));
  return request.SerializeAsString();
}

TEST(WithBytesTest, KeepsTheBytesOfARequestUpToItsLimit) {
  using Request = WithBytes<v2::SendMessageRequest>;
  const std::string small = RequestOfBody(1024);
  grpc::ByteBuffer buffer = BufferOf(small);
  Request out;
  ASSERT_TRUE(grpc::SerializationTraits<Request>::Deserialize(&buffer, &out).ok());
  EXPECT_EQ(out.bytes, small);
  EXPECT_EQ(out.message.messages(0).body().size(), 1024u);

  // Past the limit: parsed from gRPC's buffer, no copy kept, and a reused
  // WithBytes does not keep the last request's bytes either.
  const std::string large = RequestOfBody(Request::kMaxBytes);
  ASSERT_GT(large.size(), Request::kMaxBytes);
  buffer = BufferOf(large);
  ASSERT_TRUE(grpc::SerializationTraits<Request>::Deserialize(&buffer, &out).ok());
  EXPECT_TRUE(out.bytes.empty());
  EXPECT_EQ(out.message.messages(0).body().size(), Request::kMaxBytes);

  buffer = BufferOf(std::string("\x0a\x7f\x01", 3));  // truncated field 1
  EXPECT_FALSE(grpc::SerializationTraits<Request>::Deserialize(&buffer, &out).ok());
}

}  // namespace
}  // namespace apogee
