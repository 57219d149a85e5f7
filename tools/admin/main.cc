// apogee-admin: the operators' command line over the admin API. Output on
// stdout (a table, or one JSON document with --json); an error is one line on
// stderr and a non-zero exit (2: bad command line, 1: the operation failed).
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "tools/admin/cli.h"
#include "tools/admin/commands.h"

int main(int argc, char** argv) {
  using namespace apogee::admin_cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(Usage().c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const char* env = std::getenv("APOGEE_NAMESERVERS");
  auto inv = Parse(args, env != nullptr ? std::optional<std::string>(env) : std::nullopt);
  if (!inv.ok()) {
    std::fprintf(stderr, "apogee-admin: error: %s\n",
                 OneLine(std::string(inv.status().message())).c_str());
    return 2;
  }
  if (inv->access_key.empty()) {
    const char* key = std::getenv("APOGEE_ACCESS_KEY");
    const char* secret = std::getenv("APOGEE_ACCESS_SECRET");
    if (key != nullptr) inv->access_key = key;
    if (inv->access_secret.empty() && secret != nullptr) inv->access_secret = secret;
  }
  auto output = RunCommand(*inv);
  if (!output.ok()) {
    std::fprintf(stderr, "apogee-admin: error: %s\n",
                 OneLine(std::string(output.status().message())).c_str());
    return output.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::fputs(output->Render(inv->json).c_str(), stdout);
  return 0;
}
