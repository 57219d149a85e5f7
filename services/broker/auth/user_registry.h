// The broker's users and ACLs (--auth). Durable in the store as group
// records named kAuthUserPrefix + username (a group config the store keeps
// opaque), so they replicate to slaves with the other configs; cached here.
// The bootstrap admin (--init_admin) lives only in memory, on every broker.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apogee/admin/v1/admin.pb.h"
#include "services/broker/store_client/store_client.h"
#include "services/common/auth/authenticator.h"

namespace apogee::broker {

// Store record names of users: "%AUTH%USER%<username>" (no client group
// may start with "%AUTH%", see GroupManager).
inline constexpr char kAuthUserPrefix[] = "%AUTH%USER%";

// Thread-safe. Writes go to the store first, then the cache.
class UserRegistry final : public auth::UserDirectory {
 public:
  UserRegistry(StoreClient* store, std::optional<auth::User> bootstrap_admin)
      : store_(store), bootstrap_(std::move(bootstrap_admin)) {}

  // Replaces the cache with the store's users (start-up; a slave, every
  // second, to follow its master).
  absl::Status Reload();

  std::optional<auth::User> FindUser(const std::string& name) const override;

  absl::Status Create(const admin::v1::AuthUser& user);
  absl::Status Delete(const std::string& username);
  // Every user with policies and without secrets, the bootstrap admin first.
  std::vector<admin::v1::AuthUser> List() const;
  absl::Status Grant(const std::string& username, const admin::v1::AuthPolicy& policy);
  absl::Status Revoke(const std::string& username, const std::string& resource);

 private:
  absl::StatusOr<admin::v1::AuthUser> Stored(const std::string& username) const;
  absl::Status Persist(const admin::v1::AuthUser& user);

  StoreClient* const store_;
  const std::optional<auth::User> bootstrap_;
  absl::Mutex write_mu_;  // one writer at a time: store and cache agree
  mutable absl::Mutex mu_;
  std::map<std::string, admin::v1::AuthUser> users_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, auth::User> parsed_ ABSL_GUARDED_BY(mu_);
};

// The checked form of a stored user (errors name the user and the field).
absl::StatusOr<auth::User> ToAuthUser(const admin::v1::AuthUser& user);

}  // namespace apogee::broker
