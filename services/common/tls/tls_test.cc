// The TLS option checks that need no certificates: flag combinations, the
// client_auth values, missing and non-PEM files (certificates themselves are
// covered with openssl-made files in tests/integration/tls_test.cc).
#include "services/common/tls/tls.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"

namespace apogee::tls {
namespace {

using ::testing::HasSubstr;

TEST(TlsTest, ParsesClientAuth) {
  EXPECT_EQ(*ParseClientAuth("--tls_client_auth", "none"), ClientAuth::kNone);
  EXPECT_EQ(*ParseClientAuth("--tls_client_auth", "request"), ClientAuth::kRequest);
  EXPECT_EQ(*ParseClientAuth("--tls_client_auth", "require"), ClientAuth::kRequire);
  EXPECT_THAT(ParseClientAuth("--tls_client_auth", "yes").status().message(),
              HasSubstr("--tls_client_auth=\"yes\" is not one of none, request, require"));
}

TEST(TlsTest, ServerFlagCombinations) {
  ServerTls off;
  EXPECT_TRUE(Validate(off).ok());
  ServerTls key_only;
  key_only.key_file = "k.pem";
  EXPECT_THAT(Validate(key_only).message(), HasSubstr("need --tls_cert"));
  ServerTls no_key;
  no_key.cert_file = "c.pem";
  EXPECT_THAT(Validate(no_key).message(), HasSubstr("--tls_cert needs --tls_key"));
  ServerTls no_ca;
  no_ca.cert_file = "c.pem";
  no_ca.key_file = "k.pem";
  no_ca.client_auth = ClientAuth::kRequest;
  EXPECT_THAT(Validate(no_ca).message(), HasSubstr("--tls_client_auth=request needs --tls_ca"));
  ServerTls fast;
  fast.cert_file = "c.pem";
  fast.key_file = "k.pem";
  fast.reload_interval = absl::Milliseconds(10);
  EXPECT_THAT(Validate(fast).message(), HasSubstr("below the minimum of 1s"));
}

TEST(TlsTest, FilesAreNamedInErrors) {
  testing::TempDir dir;
  const std::string text = dir.path() + "/not-pem.txt";
  std::ofstream(text) << "hello\n";
  ClientTls tls;
  tls.enabled = true;
  tls.ca_file = dir.path() + "/missing.pem";
  absl::Status missing = Validate(tls, FlagNames{"--c", "--k", "--client_tls_ca"});
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("--client_tls_ca file \"" + tls.ca_file + "\""));
  tls.ca_file = text;
  EXPECT_THAT(Validate(tls).message(), HasSubstr("no PEM certificate"));
  tls.ca_file.clear();
  tls.cert_file = text;
  EXPECT_THAT(Validate(tls).message(), HasSubstr("--tls_cert and --tls_key go together"));
  tls.key_file = text;
  EXPECT_THAT(Validate(tls).message(), HasSubstr("no PEM certificate"));
  // Disabled: nothing is read, plaintext credentials.
  tls.enabled = false;
  EXPECT_TRUE(ChannelCredentials(tls).ok());
}

}  // namespace
}  // namespace apogee::tls
