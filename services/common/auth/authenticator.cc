#include "services/common/auth/authenticator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"
#include "services/common/auth/signature.h"

namespace apogee::auth {
namespace {

std::string HeaderValue(const grpc::ServerContextBase& context, const char* key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// The subject CN of the client certificate gRPC verified on this call's
// connection (mTLS), or "" when there is none.
std::string CertificateUser(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  // Only TLS peers (a local or insecure channel has no x509 properties).
  std::vector<grpc::string_ref> type =
      auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  const std::string security = type.empty() ? "" : std::string(type[0].data(), type[0].size());
  if (security != GRPC_TLS_TRANSPORT_SECURITY_TYPE &&
      security != GRPC_SSL_TRANSPORT_SECURITY_TYPE) {
    return "";
  }
  std::vector<grpc::string_ref> names = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (names.empty()) return "";
  return std::string(names[0].data(), names[0].size());
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
  const std::string authorization = HeaderValue(context, kAuthorizationHeader);
  // An unsigned call over mTLS is its certificate's user; a signature, when
  // there is one, always decides (and must be valid).
  if (authorization.empty()) {
    if (const std::string name = CertificateUser(context); !name.empty()) {
      std::optional<User> user = users_->FindUser(name);
      if (!user.has_value()) {
        return absl::UnauthenticatedError(
            absl::StrCat("user \"", name, "\" of the client certificate does not exist"));
      }
      return *std::move(user);
    }
  }
  absl::StatusOr<SignedRequest> request =
      ParseSignedRequest(authorization, HeaderValue(context, kDateTimeHeader));
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
