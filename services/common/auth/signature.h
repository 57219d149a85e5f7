// RocketMQ 5 request signatures (protocol-v2.md 5.3), as the official clients
// make them: header `authorization: MQv2-HMAC-SHA1 Credential=<access key>,
// SignedHeaders=x-mq-date-time, Signature=<HEX>`, where HEX is
// HMAC-SHA1(key = secret, data = the `x-mq-date-time` header value),
// `yyyyMMdd'T'HHmmss'Z'` in UTC. Pure functions; HMAC from OpenSSL.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace apogee::auth {

inline constexpr char kAuthorizationHeader[] = "authorization";
inline constexpr char kDateTimeHeader[] = "x-mq-date-time";
inline constexpr char kSchemeV2[] = "MQv2-HMAC-SHA1";

// `t` as `yyyyMMdd'T'HHmmss'Z'` (UTC), e.g. 20261126T220418Z.
std::string FormatDateTime(absl::Time t);
// The inverse; INVALID_ARGUMENT naming the value and the format.
absl::StatusOr<absl::Time> ParseDateTime(absl::string_view value);

// Uppercase hex HMAC-SHA1 of `data` keyed with `secret`.
std::string Sign(absl::string_view secret, absl::string_view data);

// The `authorization` header value for `access_key` signing `date_time`.
std::string AuthorizationValue(absl::string_view access_key, absl::string_view secret,
                               absl::string_view date_time);

// What a request claims: who, when, and the signature.
struct SignedRequest {
  std::string access_key;
  std::string signature;
  std::string date_time;
};

// Parses the two headers; UNAUTHENTICATED naming what is missing or
// malformed (never echoing the signature).
absl::StatusOr<SignedRequest> ParseSignedRequest(absl::string_view authorization,
                                                 absl::string_view date_time);

// Checks `request` against the user's `secret` and the clock: the signature
// matches (constant-time) and the date-time is within `max_skew` of `now`.
// UNAUTHENTICATED naming the user and the reason otherwise.
absl::Status VerifySignature(const SignedRequest& request, absl::string_view secret, absl::Time now,
                             absl::Duration max_skew);

}  // namespace apogee::auth
