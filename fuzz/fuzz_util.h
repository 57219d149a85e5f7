// Small helpers shared by the fuzz targets (fuzz/README.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace apogee::fuzz {

// Aborts, which libFuzzer reports as a crash: an invariant of the code under
// test broke. `what` says which.
[[noreturn]] void Fail(absl::string_view what);

// Answers `status` the way the services do (the v2 in-band status and the
// gRPC status), so the status mapping runs on every error the fuzzer finds.
void Answer(const absl::Status& status);

// Parses `size` bytes as `message`, as gRPC does with a request; false when
// they are not a valid encoding (the request never reaches a handler then).
bool ParseRequest(const uint8_t* data, size_t size, google::protobuf::Message* message);

}  // namespace apogee::fuzz
