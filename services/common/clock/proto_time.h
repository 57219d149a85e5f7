// Conversions between absl time types and the protobuf well-known types our
// APIs carry, so every module converts the same way.
#pragma once

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace apogee {

void ToProtoDuration(absl::Duration d, google::protobuf::Duration* out);
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);
google::protobuf::Timestamp ToProtoTimestamp(absl::Time t);
absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& t);

}  // namespace apogee
