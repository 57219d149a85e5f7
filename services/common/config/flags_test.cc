#include "services/common/config/flags.h"

#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"

namespace apogee {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  return out;
}

TEST(ConfigFileTest, FileFlagsComeBeforeCommandLine) {
  apogee::testing::TempDir dir;
  const std::string path = dir.path() + "/ns.conf";
  std::ofstream(path) << "# comment\nlisten = 0.0.0.0:9876\n--broker_expiry=60s\n\n";
  std::vector<std::string> args = {"bin", "--config=" + path, "--listen=127.0.0.1:1"};
  auto argv = Argv(args);
  auto expanded = ExpandConfigFile(static_cast<int>(argv.size()), argv.data());
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_THAT(*expanded, ElementsAre("bin", "--listen=0.0.0.0:9876", "--broker_expiry=60s",
                                     "--listen=127.0.0.1:1"));
}

TEST(ConfigFileTest, MissingFileAndBadLinesAreNamed) {
  std::vector<std::string> args = {"bin", "--config", "/nonexistent/x.conf"};
  auto argv = Argv(args);
  auto missing = ExpandConfigFile(static_cast<int>(argv.size()), argv.data());
  EXPECT_THAT(missing.status().message(), HasSubstr("\"/nonexistent/x.conf\" cannot be read"));

  apogee::testing::TempDir dir;
  const std::string path = dir.path() + "/bad.conf";
  std::ofstream(path) << "listen 1\n";
  std::vector<std::string> bad_args = {"bin", "--config=" + path};
  auto bad_argv = Argv(bad_args);
  auto bad = ExpandConfigFile(static_cast<int>(bad_argv.size()), bad_argv.data());
  EXPECT_THAT(bad.status().message(), HasSubstr("line 1: expected `name = value`"));
}

TEST(ConfigFileTest, NoConfigLeavesArgsAlone) {
  std::vector<std::string> args = {"bin", "--a=1", "--b=2"};
  auto argv = Argv(args);
  auto expanded = ExpandConfigFile(static_cast<int>(argv.size()), argv.data());
  ASSERT_TRUE(expanded.ok());
  EXPECT_THAT(*expanded, ElementsAre("bin", "--a=1", "--b=2"));
}

}  // namespace
}  // namespace apogee
