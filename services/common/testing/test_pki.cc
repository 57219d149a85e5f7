#include "services/common/testing/test_pki.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace apogee::testing {
namespace {

// Runs `command` in a shell with its output appended to `log`; true on exit 0.
bool Shell(const std::string& command, const std::string& log) {
  const std::string line = absl::StrCat("(", command, ") >>", log, " 2>&1");
  return std::system(line.c_str()) == 0;
}

}  // namespace

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

TestPki::TestPki(std::string dir) : dir_(std::move(dir)), log_(dir_ + "/openssl.log") {}

bool TestPki::MakeCa() {
  return Shell(absl::StrCat("cd ", dir_,
                            " && openssl req -x509 -newkey ec -pkeyopt "
                            "ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
                            "-days 2 -subj /CN=apogee-test-ca"),
               log_);
}

bool TestPki::Issue(const std::string& name, const std::string& common_name) {
  std::ofstream(absl::StrCat(dir_, "/", name, ".ext"))
      << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
      << "extendedKeyUsage=serverAuth,clientAuth\n";
  return Shell(absl::StrCat("cd ", dir_, " && openssl req -newkey ec -pkeyopt ",
                            "ec_paramgen_curve:prime256v1 -nodes -keyout ", name, ".key -out ",
                            name, ".csr -subj /CN=", common_name, " && openssl x509 -req -in ",
                            name, ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out ",
                            name, ".pem -extfile ", name, ".ext"),
               log_);
}

std::string TestPki::Log() const { return ReadTextFile(log_); }

}  // namespace apogee::testing
