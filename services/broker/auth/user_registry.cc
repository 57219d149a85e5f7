#include "services/broker/auth/user_registry.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {
namespace {

namespace av1 = ::apogee::admin::v1;

absl::Status NotFound(const std::string& username) {
  return absl::NotFoundError(absl::StrCat("user \"", username, "\" does not exist"));
}

}  // namespace

absl::StatusOr<auth::User> ToAuthUser(const av1::AuthUser& user) {
  APOGEE_RETURN_IF_ERROR(auth::ValidateUserName(user.username()));
  auth::User out;
  out.name = user.username();
  out.secret = user.secret();
  if (!user.type().empty()) {
    APOGEE_ASSIGN_OR_RETURN(out.type, auth::ParseUserType(user.type()));
  }
  for (const av1::AuthPolicy& p : user.policies()) {
    std::vector<std::string> actions(p.actions().begin(), p.actions().end());
    std::vector<std::string> sources(p.sources().begin(), p.sources().end());
    auto policy = auth::ParsePolicy(p.resource(), actions, p.decision(), sources);
    if (!policy.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy of user \"", user.username(), "\": ", policy.status().message()));
    }
    out.policies.push_back(*std::move(policy));
  }
  return out;
}

absl::Status UserRegistry::Reload() {
  APOGEE_ASSIGN_OR_RETURN(std::vector<store::v1::Group> stored, store_->ListGroups());
  std::map<std::string, av1::AuthUser> users;
  std::map<std::string, auth::User> parsed;
  for (const store::v1::Group& g : stored) {
    if (!absl::StartsWith(g.name(), kAuthUserPrefix)) continue;
    av1::AuthUser user;
    if (!user.ParseFromString(g.config())) {
      return absl::DataLossError(
          absl::StrCat("stored user record \"", g.name(), "\" does not parse"));
    }
    APOGEE_ASSIGN_OR_RETURN(parsed[user.username()], ToAuthUser(user));
    users[user.username()] = std::move(user);
  }
  absl::MutexLock lock(&mu_);
  users_ = std::move(users);
  parsed_ = std::move(parsed);
  return absl::OkStatus();
}

std::optional<auth::User> UserRegistry::FindUser(const std::string& name) const {
  if (bootstrap_.has_value() && bootstrap_->name == name) return bootstrap_;
  absl::MutexLock lock(&mu_);
  auto it = parsed_.find(name);
  if (it == parsed_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<av1::AuthUser> UserRegistry::Stored(const std::string& username) const {
  absl::MutexLock lock(&mu_);
  auto it = users_.find(username);
  if (it == users_.end()) return NotFound(username);
  return it->second;
}

absl::Status UserRegistry::Persist(const av1::AuthUser& user) {
  APOGEE_ASSIGN_OR_RETURN(auth::User parsed, ToAuthUser(user));
  store::v1::Group record;
  record.set_name(absl::StrCat(kAuthUserPrefix, user.username()));
  record.set_config(user.SerializeAsString());
  APOGEE_RETURN_IF_ERROR(store_->PutGroup(record));
  absl::MutexLock lock(&mu_);
  users_[user.username()] = user;
  parsed_[user.username()] = std::move(parsed);
  return absl::OkStatus();
}

absl::Status UserRegistry::Create(const av1::AuthUser& user) {
  absl::MutexLock write(&write_mu_);
  APOGEE_RETURN_IF_ERROR(auth::ValidateUserName(user.username()));
  if (user.secret().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("user \"", user.username(), "\" needs a non-empty secret"));
  }
  if (FindUser(user.username()).has_value()) {
    return absl::AlreadyExistsError(absl::StrCat("user \"", user.username(), "\" already exists"));
  }
  return Persist(user);
}

absl::Status UserRegistry::Delete(const std::string& username) {
  absl::MutexLock write(&write_mu_);
  if (bootstrap_.has_value() && bootstrap_->name == username) {
    return absl::FailedPreconditionError(absl::StrCat(
        "user \"", username, "\" is the bootstrap admin of --init_admin (change the flag)"));
  }
  APOGEE_RETURN_IF_ERROR(Stored(username).status());
  APOGEE_RETURN_IF_ERROR(store_->DeleteGroup(absl::StrCat(kAuthUserPrefix, username)));
  absl::MutexLock lock(&mu_);
  users_.erase(username);
  parsed_.erase(username);
  return absl::OkStatus();
}

std::vector<av1::AuthUser> UserRegistry::List() const {
  std::vector<av1::AuthUser> out;
  if (bootstrap_.has_value()) {
    av1::AuthUser admin;
    admin.set_username(bootstrap_->name);
    admin.set_type("super");
    out.push_back(std::move(admin));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [name, user] : users_) {
    out.push_back(user);
    out.back().clear_secret();
    if (out.back().type().empty()) out.back().set_type("normal");
  }
  return out;
}

absl::Status UserRegistry::Grant(const std::string& username, const av1::AuthPolicy& policy) {
  absl::MutexLock write(&write_mu_);
  APOGEE_ASSIGN_OR_RETURN(av1::AuthUser user, Stored(username));
  av1::AuthPolicy normalized = policy;
  if (normalized.decision().empty()) normalized.set_decision("allow");
  auto* policies = user.mutable_policies();
  policies->erase(std::remove_if(policies->begin(), policies->end(),
                                 [&normalized](const av1::AuthPolicy& p) {
                                   return p.resource() == normalized.resource() &&
                                          p.decision() == normalized.decision();
                                 }),
                  policies->end());
  *policies->Add() = std::move(normalized);
  return Persist(user);
}

absl::Status UserRegistry::Revoke(const std::string& username, const std::string& resource) {
  absl::MutexLock write(&write_mu_);
  APOGEE_ASSIGN_OR_RETURN(av1::AuthUser user, Stored(username));
  auto* policies = user.mutable_policies();
  const int before = policies->size();
  policies->erase(
      std::remove_if(policies->begin(), policies->end(),
                     [&resource](const av1::AuthPolicy& p) { return p.resource() == resource; }),
      policies->end());
  if (policies->size() == before) {
    return absl::NotFoundError(
        absl::StrCat("user \"", username, "\" has no policy on \"", resource, "\""));
  }
  return Persist(user);
}

}  // namespace apogee::broker
