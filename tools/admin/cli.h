// apogee-admin's command line: parsing and validation of commands and flags,
// and the output formats (human tables, one JSON document). No I/O here, so
// all of it is unit-tested without processes; commands.h runs the commands.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"

namespace apogee::admin_cli {

// A parsed command line: the command words ("topic", "create") and its
// flags by name (without dashes). --json, --nameservers and the TLS flags
// are global.
struct Invocation {
  std::string command;  // "topic create"
  std::map<std::string, std::string> flags;
  bool json = false;
  std::vector<std::string> nameservers;
  // Signs every call when set (--access_key/--access_secret, else
  // $APOGEE_ACCESS_KEY / $APOGEE_ACCESS_SECRET): brokers with --auth.
  std::string access_key;
  std::string access_secret;
  // --admin_endpoints=CLIENT=ADMIN[;...]: brokers started with
  // --admin_listen serve the admin API at ADMIN, not at the CLIENT endpoint
  // they register; admin calls to them go there.
  std::map<std::string, std::string> admin_endpoints;
  // --tls (system roots), or implied by --tls_ca / --tls_cert (+ --tls_key).
  struct Tls {
    bool enabled = false;
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
  } tls;
};

// Parses argv (without argv[0]). Flags are --name=value (--json alone);
// `env_nameservers` is $APOGEE_NAMESERVERS (used when --nameservers is
// absent; default 127.0.0.1:9876). Checks the command exists, every flag is
// one it takes, required flags are present, and the NameServer addresses.
absl::StatusOr<Invocation> Parse(const std::vector<std::string>& args,
                                 const std::optional<std::string>& env_nameservers);

// The usage text: every command with its flags.
std::string Usage();

// Typed flag values; errors name the flag, the value and what is allowed.
absl::StatusOr<int64_t> IntFlag(const Invocation& inv, const std::string& name, int64_t min,
                                int64_t max);
absl::StatusOr<absl::Time> TimeFlag(const Invocation& inv, const std::string& name);
// "0,2,5" → {0, 2, 5}; empty when the flag is absent.
absl::StatusOr<std::vector<int32_t>> QueueListFlag(const Invocation& inv, const std::string& name);
// The value of flag `name` among `choices` (text → value); the error lists
// the choices.
absl::StatusOr<int> ChoiceFlag(const Invocation& inv, const std::string& name,
                               const std::vector<std::pair<std::string, int>>& choices);
std::string FlagOr(const Invocation& inv, const std::string& name, const std::string& fallback);

// A human table: columns padded to their widest cell, two spaces apart.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string Render() const;
};

// What a command prints: a table (or plain lines) for people and one JSON
// document for scripts.
struct Output {
  std::vector<Table> tables;
  std::vector<std::string> lines;
  google::protobuf::Value json;
  std::string Render(bool json_format) const;
};

// JSON values: a message with proto field names and every field present
// (zeros included, so scripts can rely on keys).
google::protobuf::Value ToValue(const google::protobuf::Message& message);
google::protobuf::Value StringValue(const std::string& s);
google::protobuf::Value ListValue(std::vector<google::protobuf::Value> items);
google::protobuf::Value ObjectValue(
    std::vector<std::pair<std::string, google::protobuf::Value>> fields);

// RFC 3339 UTC, or "-" for an unset time.
std::string TimeText(absl::Time t);

// One line: newlines in `message` become spaces (errors print as one line).
std::string OneLine(std::string message);

}  // namespace apogee::admin_cli
