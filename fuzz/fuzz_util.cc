#include "fuzz/fuzz_util.h"

#include <cstdio>
#include <cstdlib>

#include "apache/rocketmq/v2/definition.pb.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/v2_status.h"

namespace apogee::fuzz {

void Fail(absl::string_view what) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

void Answer(const absl::Status& status) {
  apache::rocketmq::v2::Status v2;
  ToV2Status(status, &v2);
  if (status.ok() != (v2.code() == apache::rocketmq::v2::OK)) {
    Fail("ToV2Status: OK and v2 code OK disagree");
  }
  if (ToGrpcStatus(status).ok() != status.ok()) Fail("ToGrpcStatus changed OK-ness");
}

bool ParseRequest(const uint8_t* data, size_t size, google::protobuf::Message* message) {
  return message->ParseFromArray(data, static_cast<int>(size));
}

}  // namespace apogee::fuzz
