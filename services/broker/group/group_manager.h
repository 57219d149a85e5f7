// Consumer-group configs (consume mode), durable in the store, cached here.
// A group nobody configured consumes in clustering mode.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apogee/admin/v1/admin.pb.h"
#include "services/broker/store_client/store_client.h"

namespace apogee::broker {

using ConsumerGroup = ::apogee::admin::v1::ConsumerGroup;

// Thread-safe; store calls run on the caller's (worker) thread.
// Store group records under this prefix are not consumer groups: the
// broker's users and ACLs (services/broker/auth) live there.
inline constexpr char kReservedGroupPrefix[] = "%AUTH%";

class GroupManager {
 public:
  explicit GroupManager(StoreClient* store) : store_(store) {}

  absl::Status Load();
  // Replaces what it holds with the store's groups (a slave, whose store
  // receives its master's configs).
  absl::Status Reload();
  absl::Status Put(const ConsumerGroup& group);
  absl::Status Delete(const std::string& name);
  // The group's config; a clustering default when it was never configured.
  ConsumerGroup Get(const std::string& name) const;
  // NOT_FOUND when the group was never configured.
  absl::StatusOr<ConsumerGroup> Find(const std::string& name) const;
  std::vector<ConsumerGroup> List() const;

  // The name progress is kept under for `group` consumed by `client_id`:
  // the group itself when clustering; a per-member name
  // "<group>%<hash of client id>" when broadcasting, so each member has its
  // own offsets, retry and dead-letter topics.
  std::string ProgressKey(const std::string& group, const std::string& client_id) const;
  // The broadcasting name whatever the group's config says (a push
  // subscription may ask for broadcasting itself).
  static std::string MemberProgressKey(const std::string& group, const std::string& client_id);

 private:
  StoreClient* const store_;
  mutable absl::Mutex mu_;
  std::map<std::string, ConsumerGroup> groups_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::broker
