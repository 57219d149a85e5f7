#include "services/common/auth/authenticator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/auth/signature.h"

namespace apogee::auth {
namespace {

std::string HeaderValue(const grpc::ServerContextBase& context, const char* key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

void StaticUsers::Put(User user) {
  absl::MutexLock lock(&mu_);
  std::string name = user.name;
  users_[name] = std::move(user);
}

std::optional<User> StaticUsers::FindUser(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<User> ParseInitAdmin(absl::string_view flag_name, absl::string_view value) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(value, absl::MaxSplits(':', 1));
  absl::Status name_ok = ValidateUserName(parts.first);
  if (!name_ok.ok() || parts.second.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag_name,
                     " must be USER:SECRET with USER of 1..64 [a-zA-Z0-9_-] and a non-empty "
                     "SECRET"));
  }
  User user;
  user.name = std::string(parts.first);
  user.secret = std::string(parts.second);
  user.type = UserType::kSuper;
  return user;
}

absl::StatusOr<User> Authenticator::Authenticate(const grpc::ServerContextBase& context) const {
  absl::StatusOr<SignedRequest> request = ParseSignedRequest(
      HeaderValue(context, kAuthorizationHeader), HeaderValue(context, kDateTimeHeader));
  if (!request.ok()) return request.status();
  std::optional<User> user = users_->FindUser(request->access_key);
  if (!user.has_value()) {
    return absl::UnauthenticatedError(
        absl::StrCat("user \"", request->access_key, "\" does not exist"));
  }
  absl::Status verified = VerifySignature(*request, user->secret, clock_->Now(), options_.max_skew);
  if (!verified.ok()) return verified;
  return *std::move(user);
}

absl::Status Authenticator::Check(const grpc::ServerContextBase& context,
                                  const std::vector<Access>& accesses) const {
  if (!options_.enabled) return absl::OkStatus();
  absl::StatusOr<User> user = Authenticate(context);
  if (!user.ok()) return user.status();
  return Authorize(*user, context.peer(), accesses);
}

absl::Status Authenticator::Authorize(const User& user, absl::string_view peer,
                                      const std::vector<Access>& accesses) const {
  uint32_t ip = 0;
  const bool has_source = PeerIpv4(peer, &ip);
  for (const Access& access : accesses) {
    absl::Status decided = Decide(user, access, has_source, ip);
    if (!decided.ok()) return decided;
  }
  return absl::OkStatus();
}

absl::Status Authenticator::CheckSuper(const grpc::ServerContextBase& context,
                                       absl::string_view what) const {
  if (!options_.enabled) return absl::OkStatus();
  absl::StatusOr<User> user = Authenticate(context);
  if (!user.ok()) return user.status();
  if (user->type != UserType::kSuper) {
    return absl::PermissionDeniedError(
        absl::StrCat("user \"", user->name, "\" may not ", what, ": it needs a super user"));
  }
  return absl::OkStatus();
}

void SignCall(grpc::ClientContext* context, const Credential& cred, absl::Time now) {
  if (cred.empty()) return;
  const std::string date_time = FormatDateTime(now);
  context->AddMetadata(kDateTimeHeader, date_time);
  context->AddMetadata(kAuthorizationHeader,
                       AuthorizationValue(cred.access_key, cred.access_secret, date_time));
}

}  // namespace apogee::auth
