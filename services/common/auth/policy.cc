#include "services/common/auth/policy.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace apogee::auth {
namespace {

constexpr std::array<std::pair<Action, absl::string_view>, 8> kActions{{
    {Action::kPub, "pub"},
    {Action::kSub, "sub"},
    {Action::kCreate, "create"},
    {Action::kUpdate, "update"},
    {Action::kDelete, "delete"},
    {Action::kGet, "get"},
    {Action::kList, "list"},
    {Action::kAll, "all"},
}};

constexpr int kMaxUserName = 64;

absl::string_view KindName(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kTopic:
      return "topic";
    case ResourceKind::kGroup:
      return "group";
    case ResourceKind::kCluster:
      return "cluster";
  }
  return "?";
}

bool Grants(const Policy& p, Action action) {
  return std::any_of(p.actions.begin(), p.actions.end(),
                     [action](Action a) { return a == action || a == Action::kAll; });
}

bool FromSource(const Policy& p, bool has_source, uint32_t ip) {
  if (p.sources.empty()) return true;
  if (!has_source) return false;
  return std::any_of(p.sources.begin(), p.sources.end(),
                     [ip](const Cidr& c) { return c.Contains(ip); });
}

bool ParseIpv4(absl::string_view text, uint32_t* ip) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  if (parts.size() != 4) return false;
  uint32_t value = 0;
  for (absl::string_view part : parts) {
    int octet = 0;
    if (part.empty() || part.size() > 3 || !absl::SimpleAtoi(part, &octet) || octet < 0 ||
        octet > 255) {
      return false;
    }
    value = (value << 8) | static_cast<uint32_t>(octet);
  }
  *ip = value;
  return true;
}

}  // namespace

absl::StatusOr<UserType> ParseUserType(absl::string_view text) {
  if (text == "super") return UserType::kSuper;
  if (text == "normal") return UserType::kNormal;
  return absl::InvalidArgumentError(
      absl::StrCat("user type \"", text, "\" is unknown (want super or normal)"));
}

absl::string_view UserTypeName(UserType type) {
  return type == UserType::kSuper ? "super" : "normal";
}

absl::StatusOr<Action> ParseAction(absl::string_view text) {
  for (const auto& [action, name] : kActions) {
    if (absl::EqualsIgnoreCase(text, name)) return action;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "action \"", text, "\" is unknown (want pub, sub, create, update, delete, get, list, all)"));
}

absl::string_view ActionName(Action action) {
  for (const auto& [a, name] : kActions) {
    if (a == action) return name;
  }
  return "?";
}

absl::StatusOr<Decision> ParseDecision(absl::string_view text) {
  if (text.empty() || text == "allow") return Decision::kAllow;
  if (text == "deny") return Decision::kDeny;
  return absl::InvalidArgumentError(
      absl::StrCat("decision \"", text, "\" is unknown (want allow or deny)"));
}

absl::string_view DecisionName(Decision decision) {
  return decision == Decision::kAllow ? "allow" : "deny";
}

bool ResourcePattern::Matches(ResourceKind k, absl::string_view n) const {
  if (k != kind) return false;
  if (kind == ResourceKind::kCluster) return true;
  return prefix ? absl::StartsWith(n, name) : n == name;
}

std::string ResourcePattern::ToString() const {
  if (kind == ResourceKind::kCluster) return "cluster";
  return absl::StrCat(KindName(kind), ":", name, prefix ? "*" : "");
}

absl::StatusOr<ResourcePattern> ParseResource(absl::string_view text) {
  const std::string want = "want topic:NAME, topic:PREFIX*, group:NAME, group:PREFIX* or cluster";
  ResourcePattern out;
  if (text == "cluster") return out;
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "topic:")) {
    out.kind = ResourceKind::kTopic;
  } else if (absl::ConsumePrefix(&rest, "group:")) {
    out.kind = ResourceKind::kGroup;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("resource \"", text, "\" is unknown (", want, ")"));
  }
  out.prefix = absl::ConsumeSuffix(&rest, "*");
  if (absl::StrContains(rest, '*') || (rest.empty() && !out.prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("resource \"", text, "\" has no name or a '*' not at its end (", want, ")"));
  }
  out.name = std::string(rest);
  return out;
}

bool Cidr::Contains(uint32_t ip) const {
  const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (ip & mask) == (network & mask);
}

std::string Cidr::ToString() const {
  return absl::StrCat(network >> 24, ".", (network >> 16) & 255, ".", (network >> 8) & 255, ".",
                      network & 255, "/", bits);
}

absl::StatusOr<Cidr> ParseCidr(absl::string_view text) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits('/', 1));
  Cidr out;
  bool ok = ParseIpv4(parts.first, &out.network);
  if (ok && absl::StrContains(text, '/')) {
    ok = absl::SimpleAtoi(parts.second, &out.bits) && out.bits >= 0 && out.bits <= 32;
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("source \"", text, "\" is not an IPv4 address or CIDR (a.b.c.d/0..32)"));
  }
  return out;
}

bool PeerIpv4(absl::string_view peer, uint32_t* ip) {
  absl::ConsumePrefix(&peer, "ipv4:");
  size_t colon = peer.rfind(':');
  if (colon != absl::string_view::npos) peer = peer.substr(0, colon);
  return ParseIpv4(peer, ip);
}

absl::StatusOr<Policy> ParsePolicy(absl::string_view resource,
                                   const std::vector<std::string>& actions,
                                   absl::string_view decision,
                                   const std::vector<std::string>& sources) {
  Policy p;
  auto parsed = ParseResource(resource);
  if (!parsed.ok()) return parsed.status();
  p.resource = *parsed;
  if (actions.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy on ", resource, " has no actions (want some of pub, sub, ...)"));
  }
  for (const std::string& a : actions) {
    auto action = ParseAction(a);
    if (!action.ok()) return action.status();
    p.actions.push_back(*action);
  }
  auto d = ParseDecision(decision);
  if (!d.ok()) return d.status();
  p.decision = *d;
  for (const std::string& s : sources) {
    auto cidr = ParseCidr(s);
    if (!cidr.ok()) return cidr.status();
    p.sources.push_back(*cidr);
  }
  return p;
}

absl::Status ValidateUserName(absl::string_view name) {
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  if (name.empty() || static_cast<int>(name.size()) > kMaxUserName || !chars_ok) {
    return absl::InvalidArgumentError(absl::StrCat("username \"", name, "\" must be 1..",
                                                   kMaxUserName, " chars of [a-zA-Z0-9_-]"));
  }
  return absl::OkStatus();
}

std::string AccessResourceName(const Access& access) {
  if (access.kind == ResourceKind::kCluster) return "cluster";
  return absl::StrCat(KindName(access.kind), ":", access.name);
}

absl::Status Decide(const User& user, const Access& access, bool has_source, uint32_t source_ip) {
  if (user.type == UserType::kSuper) return absl::OkStatus();
  // Any one of the actions suffices; for each, a matching deny wins over
  // every allow.
  for (Action action : access.actions) {
    bool allowed = false;
    bool denied = false;
    for (const Policy& p : user.policies) {
      if (!p.resource.Matches(access.kind, access.name) || !Grants(p, action) ||
          !FromSource(p, has_source, source_ip)) {
        continue;
      }
      (p.decision == Decision::kDeny ? denied : allowed) = true;
    }
    if (allowed && !denied) return absl::OkStatus();
  }
  std::vector<std::string> names;
  for (Action a : access.actions) names.emplace_back(ActionName(a));
  return absl::PermissionDeniedError(absl::StrCat("user \"", user.name, "\" may not ",
                                                  absl::StrJoin(names, "|"), " on ",
                                                  AccessResourceName(access)));
}

}  // namespace apogee::auth
