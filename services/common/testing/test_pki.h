// Test certificates made at test time with the openssl CLI: a CA and
// certificates it signs, for TLS and mTLS tests against real processes.
#pragma once

#include <string>

namespace apogee::testing {

// A whole file ("" when it cannot be read): certificates, logs.
std::string ReadTextFile(const std::string& path);

// Files in `dir`: ca.pem/ca.key, and <name>.pem/<name>.key per Issue. Not
// thread-safe.
class TestPki {
 public:
  explicit TestPki(std::string dir);

  // A self-signed EC P-256 CA valid for 2 days (CN apogee-test-ca).
  bool MakeCa();
  // A certificate signed by the CA with subject CN `common_name`, SANs
  // IP:127.0.0.1 and DNS:localhost, usable by servers and clients.
  bool Issue(const std::string& name, const std::string& common_name);

  std::string Path(const std::string& file) const { return dir_ + "/" + file; }
  // openssl's output so far (for failure messages).
  std::string Log() const;

 private:
  std::string dir_;
  std::string log_;
};

}  // namespace apogee::testing
