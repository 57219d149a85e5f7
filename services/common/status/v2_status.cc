#include "services/common/status/v2_status.h"

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace apogee {
namespace {

namespace v2 = apache::rocketmq::v2;

constexpr absl::string_view kV2CodePayload = "type.apogee.io/v2-code";

v2::Code FromCanonical(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return v2::OK;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return v2::BAD_REQUEST;
    case absl::StatusCode::kNotFound:
      return v2::NOT_FOUND;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return v2::PRECONDITION_FAILED;
    case absl::StatusCode::kPermissionDenied:
      return v2::FORBIDDEN;
    case absl::StatusCode::kUnauthenticated:
      return v2::UNAUTHORIZED;
    case absl::StatusCode::kResourceExhausted:
      return v2::TOO_MANY_REQUESTS;
    case absl::StatusCode::kDeadlineExceeded:
      return v2::PROXY_TIMEOUT;
    case absl::StatusCode::kUnimplemented:
      return v2::NOT_IMPLEMENTED;
    case absl::StatusCode::kUnavailable:
      return v2::HA_NOT_AVAILABLE;
    default:
      return v2::INTERNAL_SERVER_ERROR;
  }
}

absl::StatusCode ToCanonical(v2::Code code) {
  // v2 codes are <HTTP status><2 digits>; the HTTP class picks the code.
  using C = absl::StatusCode;
  static const auto* by_http = new std::map<int, C>{{200, C::kOk},
                                                    {400, C::kInvalidArgument},
                                                    {401, C::kUnauthenticated},
                                                    {402, C::kPermissionDenied},
                                                    {403, C::kPermissionDenied},
                                                    {404, C::kNotFound},
                                                    {408, C::kDeadlineExceeded},
                                                    {412, C::kFailedPrecondition},
                                                    {413, C::kInvalidArgument},
                                                    {415, C::kInvalidArgument},
                                                    {429, C::kResourceExhausted},
                                                    {501, C::kUnimplemented},
                                                    {502, C::kUnavailable},
                                                    {503, C::kUnavailable},
                                                    {504, C::kDeadlineExceeded}};
  auto it = by_http->find(static_cast<int>(code) / 100);
  return it == by_http->end() ? C::kInternal : it->second;
}

}  // namespace

absl::Status WithV2Code(absl::Status status, v2::Code code) {
  if (status.ok()) return status;
  status.SetPayload(kV2CodePayload, absl::Cord(std::to_string(static_cast<int>(code))));
  return status;
}

v2::Code ToV2Code(const absl::Status& status) {
  if (status.ok()) return v2::OK;
  absl::optional<absl::Cord> payload = status.GetPayload(kV2CodePayload);
  int value = 0;
  if (payload.has_value() && absl::SimpleAtoi(std::string(*payload), &value) &&
      v2::Code_IsValid(value)) {
    return static_cast<v2::Code>(value);
  }
  return FromCanonical(status.code());
}

void ToV2Status(const absl::Status& status, v2::Status* out) {
  out->set_code(ToV2Code(status));
  out->set_message(status.ok() ? "OK" : std::string(status.message()));
}

absl::Status FromV2Status(const v2::Status& status) {
  const absl::StatusCode canonical = ToCanonical(status.code());
  if (canonical == absl::StatusCode::kOk) return absl::OkStatus();
  return WithV2Code(
      absl::Status(canonical, absl::StrCat(v2::Code_Name(status.code()), ": ", status.message())),
      status.code());
}

}  // namespace apogee
