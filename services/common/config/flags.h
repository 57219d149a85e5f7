// Command-line flags plus an optional config file. `--config=FILE` reads
// `name = value` lines (flag names without dashes, '#' comments); flags on
// the command line override the file, so one file can serve a whole fleet.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace apogee {

// Expands --config=FILE (or --config FILE) into --name=value arguments placed
// right after argv[0], so later command-line flags win. Returns the new argv.
absl::StatusOr<std::vector<std::string>> ExpandConfigFile(int argc, char** argv);

// Makes --help and --helpfull list the flags Apogee's own sources define,
// each with its default and help line (absl's default filter matches only
// files named after the binary, so `--help` printed "No flags matched").
// InitFlags calls it; binaries that parse flags themselves call it first.
void ConfigureFlagsUsage();

// Parses flags (with the config file) for a server binary. On a bad flag or
// config file prints one clear line to stderr and exits with status 2.
void InitFlags(int argc, char** argv, const std::string& usage);

// Current values of the flags Apogee's own sources define (not those of
// absl, gRPC or other libraries), by flag name: what a server runs with
// after the config file and the command line.
std::map<std::string, std::string> ProgramFlagValues();

// INVALID_ARGUMENT "--<flag>=<value> is out of range (allowed: min..max)"
// unless min <= value <= max.
absl::Status CheckDurationFlag(const char* flag, absl::Duration value, absl::Duration min,
                               absl::Duration max);

}  // namespace apogee
