#include "services/common/config/flags.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

ABSL_FLAG(std::string, config, "",
          "Optional file of `flag = value` lines; command-line flags override it");

namespace apogee {
namespace {

absl::StatusOr<std::vector<std::string>> ReadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("--config file \"", path, "\" cannot be read"));
  }
  std::vector<std::string> args;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text.front() == '#') continue;
    size_t eq = text.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--config file \"", path, "\" line ", line_number,
                       ": expected `name = value`, got \"", text, "\""));
    }
    absl::string_view name = absl::StripAsciiWhitespace(text.substr(0, eq));
    absl::string_view value = absl::StripAsciiWhitespace(text.substr(eq + 1));
    name = absl::StripPrefix(name, "--");
    if (name == "config") {
      return absl::InvalidArgumentError(absl::StrCat("--config file \"", path, "\" line ",
                                                     line_number, ": config files do not nest"));
    }
    args.push_back(absl::StrCat("--", name, "=", value));
  }
  return args;
}

// __FILE__ of a flag's definition: relative under Bazel, absolute under CMake.
bool IsApogeeSource(absl::string_view file) {
  return absl::StartsWith(file, "services/") || absl::StrContains(file, "/services/") ||
         absl::StartsWith(file, "tools/") || absl::StrContains(file, "/tools/");
}

// "services/broker/main.cc" however the build spelled the path.
std::string SourcePath(absl::string_view file) {
  for (absl::string_view top : {"services/", "tools/"}) {
    if (absl::StartsWith(file, top)) return std::string(file);
    const size_t at = file.find(absl::StrCat("/", top));
    if (at != absl::string_view::npos) return std::string(file.substr(at + 1));
  }
  return std::string(file);
}

}  // namespace

void ConfigureFlagsUsage() {
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = IsApogeeSource;
  config.contains_help_flags = IsApogeeSource;
  config.normalize_filename = SourcePath;
  absl::SetFlagsUsageConfig(config);
}

absl::StatusOr<std::vector<std::string>> ExpandConfigFile(int argc, char** argv) {
  std::vector<std::string> out;
  std::string config_path;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::StartsWith(arg, "--config=")) {
      config_path = std::string(arg.substr(9));
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      rest.emplace_back(arg);
    }
  }
  out.emplace_back(argc > 0 ? argv[0] : "apogee");
  if (!config_path.empty()) {
    auto from_file = ReadConfigFile(config_path);
    if (!from_file.ok()) return from_file.status();
    out.insert(out.end(), from_file->begin(), from_file->end());
  }
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

void InitFlags(int argc, char** argv, const std::string& usage) {
  absl::SetProgramUsageMessage(usage);
  ConfigureFlagsUsage();
  auto expanded = ExpandConfigFile(argc, argv);
  if (!expanded.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(expanded.status().message()).c_str());
    std::exit(2);
  }
  std::vector<char*> pointers;
  for (std::string& arg : *expanded) pointers.push_back(arg.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(pointers.size()), pointers.data());
  if (positional.size() > 1) {
    std::fprintf(stderr, "error: unexpected argument \"%s\" (this binary takes only flags)\n",
                 positional[1]);
    std::exit(2);
  }
}

std::map<std::string, std::string> ProgramFlagValues() {
  std::map<std::string, std::string> values;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!IsApogeeSource(flag->Filename())) continue;
    // Never hand out secrets (--init_admin=USER:SECRET, --*_secret).
    const bool secret = name == "init_admin" || absl::StrContains(name, "secret");
    values[std::string(name)] = secret ? "<redacted>" : flag->CurrentValue();
  }
  return values;
}

absl::Status CheckDurationFlag(const char* flag, absl::Duration value, absl::Duration min,
                               absl::Duration max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", absl::FormatDuration(value), " is out of range (allowed: ",
                     absl::FormatDuration(min), "..", absl::FormatDuration(max), ")"));
  }
  return absl::OkStatus();
}

}  // namespace apogee
