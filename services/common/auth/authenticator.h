// Authentication and authorization of gRPC calls (--auth): verifies the v2
// signature headers of a call against the users a UserDirectory knows, then
// decides its accesses with the ACL 2.0 policies (policy.h).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server_context.h"
#include "services/common/auth/policy.h"
#include "services/common/clock/clock.h"

namespace apogee::auth {

// Where users come from. Implementations are thread-safe.
class UserDirectory {
 public:
  virtual ~UserDirectory() = default;
  virtual std::optional<User> FindUser(const std::string& name) const = 0;
};

// A fixed set of users (the bootstrap admin of --init_admin, tests).
class StaticUsers final : public UserDirectory {
 public:
  void Put(User user);
  std::optional<User> FindUser(const std::string& name) const override;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, User> users_ ABSL_GUARDED_BY(mu_);
};

// `USER:SECRET` (--init_admin) as a super user; INVALID_ARGUMENT naming the
// flag (never the secret) when malformed.
absl::StatusOr<User> ParseInitAdmin(absl::string_view flag_name, absl::string_view value);

struct AuthOptions {
  bool enabled = false;
  // How far a request's x-mq-date-time may be from the server clock.
  absl::Duration max_skew = absl::Minutes(15);
};

// Thread-safe; `users` and `clock` outlive it.
class Authenticator {
 public:
  Authenticator(AuthOptions options, const UserDirectory* users, const Clock* clock)
      : options_(options), users_(users), clock_(clock) {}

  bool enabled() const { return options_.enabled; }

  // The user who signed the call; UNAUTHENTICATED naming the reason.
  absl::StatusOr<User> Authenticate(const grpc::ServerContextBase& context) const;

  // With auth off: OK. Otherwise the caller is authenticated and may do
  // every one of `accesses`: UNAUTHENTICATED or PERMISSION_DENIED naming
  // user, resource and action.
  absl::Status Check(const grpc::ServerContextBase& context,
                     const std::vector<Access>& accesses) const;

  // Decides `accesses` for an authenticated `user` calling from `peer`
  // (gRPC peer string); for streams authenticated once at open.
  absl::Status Authorize(const User& user, absl::string_view peer,
                         const std::vector<Access>& accesses) const;

  // With auth off: OK. Otherwise the caller is a super user
  // (PERMISSION_DENIED naming the user and `what`).
  absl::Status CheckSuper(const grpc::ServerContextBase& context, absl::string_view what) const;

 private:
  const AuthOptions options_;
  const UserDirectory* const users_;
  const Clock* const clock_;
};

// Client side: a user's credential, signing calls as the official clients.
struct Credential {
  std::string access_key;
  std::string access_secret;
  bool empty() const { return access_key.empty(); }
};

// Adds x-mq-date-time and authorization to `context` (nothing when `cred`
// is empty).
void SignCall(grpc::ClientContext* context, const Credential& cred, absl::Time now);

}  // namespace apogee::auth
