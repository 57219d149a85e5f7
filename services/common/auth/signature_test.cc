#include "services/common/auth/signature.h"

#include "gtest/gtest.h"

namespace apogee::auth {
namespace {

TEST(Signature, MatchesRfc2202AndTheNodeClient) {
  EXPECT_EQ(Sign("key", "The quick brown fox jumps over the lazy dog"),
            "DE7C9B85B8B78AA6BC8A7A36F70A90701C9DB4D9");
  // rocketmq-client-nodejs 1.0.8 util.sign('s3cret', '20261126T220418Z').
  EXPECT_EQ(Sign("s3cret", "20261126T220418Z"), "5287F13ED2184ADE012572758DA931247FF62EC4");
}

TEST(Signature, DateTimeRoundTrips) {
  const absl::Time t = absl::FromUnixSeconds(1795730658);  // 2026-11-26T22:04:18Z
  EXPECT_EQ(FormatDateTime(t), "20261126T220418Z");
  EXPECT_EQ(*ParseDateTime("20261126T220418Z"), t);
  EXPECT_FALSE(ParseDateTime("2026-11-26T22:04:18Z").ok());
  EXPECT_FALSE(ParseDateTime("").ok());
}

TEST(Signature, VerifiesAsTheClientsSign) {
  const std::string header = AuthorizationValue("alice", "s3cret", "20261126T220418Z");
  EXPECT_EQ(header,
            "MQv2-HMAC-SHA1 Credential=alice, SignedHeaders=x-mq-date-time, "
            "Signature=5287F13ED2184ADE012572758DA931247FF62EC4");
  absl::StatusOr<SignedRequest> request = ParseSignedRequest(header, "20261126T220418Z");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->access_key, "alice");
  const absl::Time signed_at = *ParseDateTime("20261126T220418Z");
  EXPECT_TRUE(
      VerifySignature(*request, "s3cret", signed_at + absl::Minutes(14), absl::Minutes(15)).ok());
  // Lowercase hex (other clients) is the same signature.
  request->signature = "5287f13ed2184ade012572758da931247ff62ec4";
  EXPECT_TRUE(VerifySignature(*request, "s3cret", signed_at, absl::Minutes(15)).ok());
}

TEST(Signature, RefusesWrongSecretStaleAndMalformed) {
  const std::string date = "20261126T220418Z";
  const absl::Time signed_at = *ParseDateTime(date);
  SignedRequest request = *ParseSignedRequest(AuthorizationValue("alice", "s3cret", date), date);

  absl::Status wrong = VerifySignature(request, "other", signed_at, absl::Minutes(15));
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(wrong.message().find("alice"), std::string::npos) << wrong;
  EXPECT_EQ(wrong.message().find(request.signature), std::string::npos) << wrong;

  for (absl::Duration skew : {absl::Minutes(16), -absl::Minutes(16)}) {
    absl::Status stale = VerifySignature(request, "s3cret", signed_at + skew, absl::Minutes(15));
    EXPECT_EQ(stale.code(), absl::StatusCode::kUnauthenticated);
    EXPECT_NE(stale.message().find("limit 15m"), std::string::npos) << stale;
  }

  struct Case {
    const char* authorization;
    const char* date_time;
    const char* says;
  };
  const Case cases[] = {
      {"", date.c_str(), "no authorization header"},
      {"Basic YWxpY2U6cw==", date.c_str(), "does not start with"},
      {"MQv2-HMAC-SHA1 SignedHeaders=x-mq-date-time, Signature=AB", date.c_str(), "no Credential"},
      {"MQv2-HMAC-SHA1 Credential=a, SignedHeaders=x-mq-date-time", date.c_str(), "no Signature"},
      {"MQv2-HMAC-SHA1 Credential=a, SignedHeaders=host, Signature=AB", date.c_str(), "signs"},
      {"MQv2-HMAC-SHA1 Credential=a, SignedHeaders=x-mq-date-time, Signature=AB", "",
       "no x-mq-date-time"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<SignedRequest> parsed = ParseSignedRequest(c.authorization, c.date_time);
    ASSERT_FALSE(parsed.ok()) << c.authorization;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_NE(parsed.status().message().find(c.says), std::string::npos) << parsed.status();
  }
  // A malformed date-time that is correctly signed is still refused.
  SignedRequest bad_date =
      *ParseSignedRequest(AuthorizationValue("a", "s", "yesterday"), "yesterday");
  EXPECT_EQ(VerifySignature(bad_date, "s", signed_at, absl::Minutes(15)).code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace apogee::auth
