#include "tools/admin/cli.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "services/common/naming/names.h"

namespace apogee::admin_cli {
namespace {

struct CommandSpec {
  std::vector<std::string> required;
  std::vector<std::string> optional;
  std::string summary;
};

const std::map<std::string, CommandSpec>& Commands() {
  static const auto* commands = new std::map<std::string, CommandSpec>{
      {"cluster list", {{}, {}, "clusters and their brokers (NameServer)"}},
      {"topic create",
       {{"name", "queues", "broker"}, {"type", "perm"}, "create a topic on a broker (master)"}},
      {"topic update",
       {{"name"}, {"queues", "broker", "type", "perm"}, "change a topic on its brokers"}},
      {"topic delete", {{"name"}, {"broker"}, "delete a topic from its brokers"}},
      {"topic list", {{}, {"broker"}, "topics of every broker (master)"}},
      {"topic route", {{"name"}, {}, "the NameServer's route of a topic"}},
      {"topic stats", {{"name"}, {}, "per-queue min/max offsets of a topic"}},
      {"group list", {{}, {"broker"}, "configured consumer groups"}},
      {"group create",
       {{"group"},
        {"mode", "fifo", "broker"},
        "configure a group (mode clustering|broadcasting; --fifo=true: orderly)"}},
      {"group progress", {{"group"}, {"topic"}, "per-queue committed offset and lag"}},
      {"group reset-offset",
       {{"group", "topic"},
        {"to-time", "to-offset", "queues"},
        "move a group's offsets (exactly one of --to-time, --to-offset)"}},
      {"message send", {{"topic", "body"}, {"key", "tag"}, "send one message; prints message_id"}},
      {"message get", {{"id"}, {"topic"}, "a message by id"}},
      {"message find",
       {{"topic"}, {"key", "from", "to", "max"}, "messages by --key or by --from [--to]"}},
      {"timer list",
       {{},
        {"topic", "limit", "after", "broker"},
        "pending delayed messages, earliest due first, and their count per broker"}},
      {"broker status", {{}, {"broker"}, "status of every broker (or one broker name)"}},
      {"broker config", {{"broker"}, {}, "effective flags of a broker's master"}},
      {"user create",
       {{"username", "secret"}, {"type", "broker"}, "create a user (type super|normal) (--auth)"}},
      {"user delete", {{"username"}, {"broker"}, "delete a user"}},
      {"user list", {{}, {"broker"}, "users and their types"}},
      {"acl grant",
       {{"username", "resource", "actions"},
        {"decision", "source", "broker"},
        "add a policy: --resource=topic:NAME|topic:PREFIX*|group:...|cluster "
        "--actions=pub,sub,... [--decision=allow|deny] [--source=CIDR,...]"}},
      {"acl revoke",
       {{"username", "resource"}, {"broker"}, "remove a user's policies on a resource"}},
      {"acl list", {{}, {"username", "broker"}, "policies of every user (or one)"}},
      {"transaction list",
       {{},
        {"topic", "limit", "discarded", "broker"},
        "pending half messages of every master (--discarded=true: those given up after the "
        "maximum checks)"}},
      {"transaction commit",
       {{"id"}, {}, "commit a half (or discarded) message by its transaction id"}},
      {"transaction rollback", {{"id"}, {}, "roll back a half (or discarded) message"}},
      {"broker promote",
       {{"broker", "id"},
        {},
        "make broker id --id the master of group --broker (needs a --controller)"}},
  };
  return *commands;
}

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

}  // namespace

std::string Usage() {
  std::string out =
      "usage: apogee-admin COMMAND [--flag=value ...] [--json] "
      "[--nameservers=HOST:PORT[;HOST:PORT]] [--access_key=USER --access_secret=SECRET]\n"
      "  [--tls] [--tls_ca=PEM] [--tls_cert=PEM --tls_key=PEM]\n"
      "NameServers: --nameservers, else $APOGEE_NAMESERVERS, else 127.0.0.1:9876.\n"
      "Credentials (brokers with --auth): --access_key/--access_secret, else\n"
      "$APOGEE_ACCESS_KEY/$APOGEE_ACCESS_SECRET.\n"
      "TLS: --tls (system roots) or --tls_ca; --tls_cert/--tls_key for mTLS.\n"
      "Brokers with --admin_listen: --admin_endpoints=CLIENT_HOST:PORT=ADMIN_HOST:PORT[;...].\n"
      "commands:\n";
  for (const auto& [name, spec] : Commands()) {
    std::string flags;
    for (const std::string& f : spec.required) absl::StrAppend(&flags, " --", f, "=...");
    for (const std::string& f : spec.optional) absl::StrAppend(&flags, " [--", f, "=...]");
    absl::StrAppend(&out, "  ", name, flags, "\n      ", spec.summary, "\n");
  }
  return out;
}

absl::StatusOr<Invocation> Parse(const std::vector<std::string>& args,
                                 const std::optional<std::string>& env_nameservers) {
  Invocation inv;
  std::vector<std::string> words;
  std::optional<std::string> nameservers;
  for (const std::string& arg : args) {
    if (!absl::StartsWith(arg, "--")) {
      words.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (name == "json" && eq == std::string::npos) {
      inv.json = true;
      continue;
    }
    if (name == "tls" && eq == std::string::npos) {
      inv.tls.enabled = true;
      continue;
    }
    if (eq == std::string::npos) {
      return Invalid(absl::StrCat("flag ", arg, " has no value (write --", name, "=VALUE)"));
    }
    const std::string value = arg.substr(eq + 1);
    if (name == "nameservers") {
      nameservers = value;
    } else if (name == "admin_endpoints") {
      for (absl::string_view entry : absl::StrSplit(value, ';', absl::SkipWhitespace())) {
        entry = absl::StripAsciiWhitespace(entry);
        std::pair<std::string, std::string> pair = absl::StrSplit(entry, absl::MaxSplits('=', 1));
        for (const std::string& part : {pair.first, pair.second}) {
          auto parsed =
              ParseHostPort(absl::StrCat("--admin_endpoints entry \"", entry, "\""), part);
          if (!parsed.ok()) return parsed.status();
        }
        inv.admin_endpoints[pair.first] = pair.second;
      }
      inv.access_key = value;
    } else if (name == "access_secret") {
      inv.access_secret = value;
    } else if (name == "tls_ca" || name == "tls_cert" || name == "tls_key") {
      std::string& file = name == "tls_ca"     ? inv.tls.ca_file
                          : name == "tls_cert" ? inv.tls.cert_file
                                               : inv.tls.key_file;
      file = value;
      inv.tls.enabled = true;
    } else if (!inv.flags.emplace(name, value).second) {
      return Invalid(absl::StrCat("flag --", name, " is given twice"));
    }
  }
  if (words.empty()) return Invalid("no command given (try: apogee-admin help)");
  inv.command = absl::StrJoin(words, " ");
  auto spec = Commands().find(inv.command);
  if (spec == Commands().end()) {
    std::vector<std::string> names;
    for (const auto& [name, s] : Commands()) names.push_back(name);
    return Invalid(absl::StrCat("unknown command \"", inv.command,
                                "\" (commands: ", absl::StrJoin(names, ", "), ")"));
  }
  for (const auto& [name, value] : inv.flags) {
    const auto& req = spec->second.required;
    const auto& opt = spec->second.optional;
    if (std::find(req.begin(), req.end(), name) == req.end() &&
        std::find(opt.begin(), opt.end(), name) == opt.end()) {
      std::vector<std::string> allowed;
      for (const std::string& f : req) allowed.push_back("--" + f);
      for (const std::string& f : opt) allowed.push_back("--" + f);
      return Invalid(absl::StrCat("\"", inv.command, "\" does not take --", name, " (it takes: ",
                                  allowed.empty() ? "no flags" : absl::StrJoin(allowed, " "), ")"));
    }
  }
  for (const std::string& name : spec->second.required) {
    auto it = inv.flags.find(name);
    if (it == inv.flags.end() || it->second.empty()) {
      return Invalid(absl::StrCat("\"", inv.command, "\" needs --", name, "=VALUE"));
    }
  }
  if (inv.command == "group reset-offset" &&
      inv.flags.count("to-time") + inv.flags.count("to-offset") != 1) {
    return Invalid("\"group reset-offset\" needs exactly one of --to-time=RFC3339, --to-offset=N");
  }
  if (inv.command == "message find" && inv.flags.count("key") == 0 &&
      inv.flags.count("from") == 0) {
    return Invalid("\"message find\" needs --key=K or --from=RFC3339 (with optional --to)");
  }
  const std::string list = nameservers.value_or(env_nameservers.value_or("127.0.0.1:9876"));
  const char* source = nameservers.has_value()       ? "--nameservers"
                       : env_nameservers.has_value() ? "$APOGEE_NAMESERVERS"
                                                     : "default NameServer";
  for (absl::string_view part : absl::StrSplit(list, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    auto parsed = ParseHostPort(absl::StrCat(source, " entry"), part);
    if (!parsed.ok()) return parsed.status();
    inv.nameservers.emplace_back(part);
  }
  if (inv.nameservers.empty()) {
    return Invalid(absl::StrCat(source, " is empty (want HOST:PORT[;HOST:PORT])"));
  }
  return inv;
}

std::string FlagOr(const Invocation& inv, const std::string& name, const std::string& fallback) {
  auto it = inv.flags.find(name);
  return it == inv.flags.end() ? fallback : it->second;
}

absl::StatusOr<int64_t> IntFlag(const Invocation& inv, const std::string& name, int64_t min,
                                int64_t max) {
  const std::string text = FlagOr(inv, name, "");
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return Invalid(absl::StrCat("--", name, "=", text, " is not an integer in ", min, "..", max));
  }
  return value;
}

absl::StatusOr<int> ChoiceFlag(const Invocation& inv, const std::string& name,
                               const std::vector<std::pair<std::string, int>>& choices) {
  const std::string text = FlagOr(inv, name, "");
  std::vector<std::string> names;
  for (const auto& [choice, value] : choices) {
    if (choice == text) return value;
    names.push_back(choice);
  }
  return Invalid(absl::StrCat("--", name, "=", text,
                              " is unknown (allowed: ", absl::StrJoin(names, ", "), ")"));
}

absl::StatusOr<absl::Time> TimeFlag(const Invocation& inv, const std::string& name) {
  const std::string text = FlagOr(inv, name, "");
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return Invalid(absl::StrCat("--", name, "=", text,
                                " is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z): ", error));
  }
  return t;
}

absl::StatusOr<std::vector<int32_t>> QueueListFlag(const Invocation& inv, const std::string& name) {
  std::vector<int32_t> out;
  auto it = inv.flags.find(name);
  if (it == inv.flags.end()) return out;
  for (absl::string_view part : absl::StrSplit(it->second, ',')) {
    int32_t q = 0;
    if (!absl::SimpleAtoi(part, &q) || q < 0 || q > 1023) {
      return Invalid(absl::StrCat("--", name, "=", it->second, " has entry \"", part,
                                  "\" (want queue ids 0..1023, comma-separated)"));
    }
    out.push_back(q);
  }
  return out;
}

std::string Table::Render() const {
  std::vector<size_t> widths(header.size(), 0);
  auto widen = [&widths](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  widen(header);
  for (const auto& row : rows) widen(row);
  std::string out;
  auto line = [&](const std::vector<std::string>& row) {
    std::string text;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      absl::StrAppend(&text, cell);
      if (i + 1 < widths.size()) text.append(widths[i] - cell.size() + 2, ' ');
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(text), "\n");
  };
  line(header);
  for (const auto& row : rows) line(row);
  return out;
}

std::string Output::Render(bool json_format) const {
  if (json_format) {
    std::string text;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(json, &text, options);
    return text + "\n";
  }
  std::string out;
  for (const std::string& line : lines) absl::StrAppend(&out, line, "\n");
  for (size_t i = 0; i < tables.size(); ++i) {
    if (i > 0 || !lines.empty()) out += "\n";
    out += tables[i].Render();
  }
  return out;
}

google::protobuf::Value ToValue(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  google::protobuf::Value value;
  if (google::protobuf::util::MessageToJsonString(message, &text, options).ok()) {
    (void)google::protobuf::util::JsonStringToMessage(text, &value);
  }
  return value;
}

google::protobuf::Value StringValue(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}

google::protobuf::Value ListValue(std::vector<google::protobuf::Value> items) {
  google::protobuf::Value v;
  for (auto& item : items) *v.mutable_list_value()->add_values() = std::move(item);
  v.mutable_list_value();  // an empty list is still a list
  return v;
}

google::protobuf::Value ObjectValue(
    std::vector<std::pair<std::string, google::protobuf::Value>> fields) {
  google::protobuf::Value v;
  v.mutable_struct_value();
  for (auto& [name, value] : fields) {
    (*v.mutable_struct_value()->mutable_fields())[name] = std::move(value);
  }
  return v;
}

std::string TimeText(absl::Time t) {
  if (t == absl::UnixEpoch() || t == absl::InfinitePast()) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

std::string OneLine(std::string message) {
  absl::StrReplaceAll({{"\r\n", " "}, {"\n", " "}, {"\r", " "}}, &message);
  return message;
}

}  // namespace apogee::admin_cli
