// The ACL 2.0 model of RocketMQ 5: users (super or normal) and their
// policies, and the pure decision function. A super user may do anything; a
// normal user may do what an `allow` policy grants and no `deny` policy
// forbids (deny wins; no matching policy: denied).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apogee::auth {

enum class UserType { kSuper, kNormal };
enum class ResourceKind { kTopic, kGroup, kCluster };
enum class Action { kPub, kSub, kCreate, kUpdate, kDelete, kGet, kList, kAll };
enum class Decision { kAllow, kDeny };

absl::StatusOr<UserType> ParseUserType(absl::string_view text);  // super|normal
absl::string_view UserTypeName(UserType type);
absl::StatusOr<Action> ParseAction(absl::string_view text);
absl::string_view ActionName(Action action);
absl::StatusOr<Decision> ParseDecision(absl::string_view text);  // allow|deny
absl::string_view DecisionName(Decision decision);

// `topic:NAME`, `topic:PREFIX*`, `group:NAME`, `group:PREFIX*` or `cluster`.
struct ResourcePattern {
  ResourceKind kind = ResourceKind::kCluster;
  std::string name;  // the prefix when `prefix`; empty for the cluster
  bool prefix = false;

  bool Matches(ResourceKind kind, absl::string_view name) const;
  std::string ToString() const;
};
absl::StatusOr<ResourcePattern> ParseResource(absl::string_view text);

// An IPv4 network, `a.b.c.d/bits` (a bare address is /32).
struct Cidr {
  uint32_t network = 0;
  int bits = 32;

  bool Contains(uint32_t ip) const;
  std::string ToString() const;
};
absl::StatusOr<Cidr> ParseCidr(absl::string_view text);
// The IPv4 address of a gRPC peer ("ipv4:1.2.3.4:5678", or a bare address);
// absent for other peers (unix sockets, IPv6).
bool PeerIpv4(absl::string_view peer, uint32_t* ip);

struct Policy {
  ResourcePattern resource;
  std::vector<Action> actions;
  Decision decision = Decision::kAllow;
  std::vector<Cidr> sources;  // empty: from anywhere
};
// Builds a policy from its text form (as the admin API carries it), with an
// error naming the bad field and the allowed values.
absl::StatusOr<Policy> ParsePolicy(absl::string_view resource,
                                   const std::vector<std::string>& actions,
                                   absl::string_view decision,
                                   const std::vector<std::string>& sources);

struct User {
  std::string name;
  std::string secret;
  UserType type = UserType::kNormal;
  std::vector<Policy> policies;
};

// User names: 1..64 of [a-zA-Z0-9_-] (they also key the stored record).
absl::Status ValidateUserName(absl::string_view name);

// One access a request needs: any one of `actions` on the resource.
struct Access {
  ResourceKind kind = ResourceKind::kCluster;
  std::string name;
  std::vector<Action> actions;
};

// OK, or PERMISSION_DENIED naming the user, the resource and the action.
// `source_ip` is the caller's IPv4 address when known (`has_source`).
absl::Status Decide(const User& user, const Access& access, bool has_source, uint32_t source_ip);

// "topic:Orders", "group:G" or "cluster".
std::string AccessResourceName(const Access& access);

}  // namespace apogee::auth
