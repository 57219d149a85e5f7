#include "services/common/auth/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"

namespace apogee::auth {
namespace {

constexpr char kDateTimeFormat[] = "%Y%m%dT%H%M%SZ";

absl::Status Unauthenticated(absl::string_view what) {
  return absl::UnauthenticatedError(std::string(what));
}

}  // namespace

std::string FormatDateTime(absl::Time t) {
  return absl::FormatTime(kDateTimeFormat, t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseDateTime(absl::string_view value) {
  // Fixed width, parsed field by field: absl's %Y takes any number of digits.
  auto field = [value](size_t pos, size_t len, int* out) {
    return absl::SimpleAtoi(value.substr(pos, len), out) &&
           std::all_of(value.begin() + pos, value.begin() + pos + len, absl::ascii_isdigit);
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  const bool ok = value.size() == 16 && value[8] == 'T' && value[15] == 'Z' && field(0, 4, &y) &&
                  field(4, 2, &mo) && field(6, 2, &d) && field(9, 2, &h) && field(11, 2, &mi) &&
                  field(13, 2, &s);
  const absl::CivilSecond civil(y, mo, d, h, mi, s);
  if (!ok || civil.month() != mo || civil.day() != d || civil.hour() != h || civil.minute() != mi ||
      civil.second() != s) {
    return absl::InvalidArgumentError(absl::StrCat(
        kDateTimeHeader, " \"", value, "\" is not a UTC date-time yyyyMMdd'T'HHmmss'Z'"));
  }
  return absl::FromCivil(civil, absl::UTCTimeZone());
}

std::string Sign(absl::string_view secret, absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  return absl::AsciiStrToUpper(
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), length)));
}

std::string AuthorizationValue(absl::string_view access_key, absl::string_view secret,
                               absl::string_view date_time) {
  return absl::StrCat(kSchemeV2, " Credential=", access_key, ", SignedHeaders=", kDateTimeHeader,
                      ", Signature=", Sign(secret, date_time));
}

absl::StatusOr<SignedRequest> ParseSignedRequest(absl::string_view authorization,
                                                 absl::string_view date_time) {
  if (authorization.empty()) {
    return Unauthenticated(absl::StrCat("no ", kAuthorizationHeader,
                                        " header: auth is on, sign requests (access key and "
                                        "secret)"));
  }
  absl::string_view rest = authorization;
  if (!absl::ConsumePrefix(&rest, kSchemeV2) || !absl::ConsumePrefix(&rest, " ")) {
    return Unauthenticated(
        absl::StrCat(kAuthorizationHeader, " header does not start with \"", kSchemeV2, " \""));
  }
  SignedRequest out;
  std::string signed_headers;
  for (absl::string_view part : absl::StrSplit(rest, ',')) {
    part = absl::StripAsciiWhitespace(part);
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.first == "Credential") {
      out.access_key = std::string(kv.second);
    } else if (kv.first == "SignedHeaders") {
      signed_headers = std::string(kv.second);
    } else if (kv.first == "Signature") {
      out.signature = std::string(kv.second);
    }
  }
  if (out.access_key.empty()) {
    return Unauthenticated(absl::StrCat(kAuthorizationHeader, " header has no Credential"));
  }
  if (out.signature.empty()) {
    return Unauthenticated(absl::StrCat(kAuthorizationHeader, " header of user \"", out.access_key,
                                        "\" has no Signature"));
  }
  if (!absl::EqualsIgnoreCase(signed_headers, kDateTimeHeader)) {
    return Unauthenticated(absl::StrCat(kAuthorizationHeader, " header of user \"", out.access_key,
                                        "\" signs \"", signed_headers,
                                        "\" (want SignedHeaders=", kDateTimeHeader, ")"));
  }
  if (date_time.empty()) {
    return Unauthenticated(absl::StrCat("request of user \"", out.access_key, "\" has no ",
                                        kDateTimeHeader, " header (the signed value)"));
  }
  out.date_time = std::string(date_time);
  return out;
}

absl::Status VerifySignature(const SignedRequest& request, absl::string_view secret, absl::Time now,
                             absl::Duration max_skew) {
  const std::string want = Sign(secret, request.date_time);
  const std::string got = absl::AsciiStrToUpper(request.signature);
  if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0) {
    return Unauthenticated(absl::StrCat("signature of user \"", request.access_key,
                                        "\" does not match (wrong secret?)"));
  }
  absl::StatusOr<absl::Time> at = ParseDateTime(request.date_time);
  if (!at.ok()) return Unauthenticated(at.status().message());
  const absl::Duration skew = absl::AbsDuration(now - *at);
  if (skew > max_skew) {
    return Unauthenticated(absl::StrCat("request of user \"", request.access_key, "\" signed at ",
                                        request.date_time, " is ", absl::FormatDuration(skew),
                                        " away from the server clock (limit ",
                                        absl::FormatDuration(max_skew), ", --auth_max_skew)"));
  }
  return absl::OkStatus();
}

}  // namespace apogee::auth
