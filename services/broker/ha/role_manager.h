// The broker's replication role: master (its group's writer) or slave (a
// reader whose store follows the master's store). The RoleManager owns the
// decision's effects: it tells the store (SetRole), gates the write path
// (CheckWritable), and has the registration (epoch, writer) and local routes
// updated through its listener. Who decides is separate: static roles from
// --broker_id (StartStatic, RocketMQ 4 style) or a controller that calls
// BecomeMaster / Follow / StepDown. See services/broker/ha/README.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/admin/v1/admin.pb.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "apogee/store/v1/store.pb.h"
#include "services/broker/ha/writer_lookup.h"
#include "services/broker/route/registrar.h"
#include "services/broker/store_client/store_client.h"

namespace apogee::broker::ha {

enum class Role { kMaster, kSlave };
const char* RoleName(Role role);  // "master" / "slave"

// The replication flags (main.cc).
struct HaOptions {
  store::v1::ReplicationMode mode = store::v1::REPLICATION_ASYNC;  // --replication
  int32_t min_insync_replicas = 1;                                 // --min_insync_replicas
  absl::Duration replication_timeout = absl::Seconds(3);           // --replication_timeout
  // --master: the master store's HA endpoint (host:port); empty resolves it
  // through the NameServers.
  std::string master;
  // How often a static slave checks whether its group's writer moved.
  absl::Duration resolve_interval = absl::Seconds(2);
};

// "async" or "sync"; else INVALID_ARGUMENT naming `flag`.
absl::StatusOr<store::v1::ReplicationMode> ParseReplicationMode(absl::string_view flag,
                                                                absl::string_view value);
// Range checks, naming the flag and its limits.
absl::Status ValidateHaOptions(const HaOptions& options);
// "min_insync_replicas=N replication_timeout=D" for error messages.
std::string DescribeSyncPolicy(const HaOptions& options);

struct RoleState {
  Role role = Role::kSlave;
  int64_t epoch = 0;
  std::string master_address;  // slave: the master store's HA endpoint followed
  bool accepts_writes = false;
};

// Thread-safe. Role changes are serialized; CheckWritable is lock-free.
class RoleManager {
 public:
  // Called after every role change, before the change's call returns (with
  // the new state): re-register (Registrar::SetRole) and fix local routes.
  using Listener = std::function<void(const RoleState&)>;
  // Moves mastership to a broker id of this group (admin PromoteBroker);
  // answers the new epoch.
  using PromoteHandler = std::function<absl::StatusOr<int64_t>(int64_t broker_id)>;

  RoleManager(BrokerIdentity self, HaOptions options, StoreClient* store,
              std::vector<std::string> nameservers);
  ~RoleManager();

  void SetListener(Listener listener);
  // Known once the server bound its port; named in CheckWritable's error.
  void SetClientEndpoint(const std::string& endpoint);

  // Static roles (no controller): id 0 becomes master at epoch 0 now; an
  // id > 0 starts as a slave refusing writes and follows --master, or the
  // writer found through the NameServers (retried with backoff until one
  // is registered, and re-resolved every resolve_interval: a new writer is
  // followed at once).
  absl::Status StartStatic();
  // Stops the static resolver; the role stays as it is.
  void Stop();

  // ---- The controller's interface. Each call re-tells the store its role
  // (SetRole), flips whether this broker accepts sends, and runs the
  // listener (registration epoch/writer) before returning. ----

  // Writer at `epoch` (0 keeps the store's epoch: static roles). The store
  // is told first, then sends are accepted.
  absl::Status BecomeMaster(int64_t epoch);
  // Reader following the master store at `master_ha_endpoint`. Sends are
  // refused first, then the store is told.
  absl::Status Follow(const std::string& master_ha_endpoint, int64_t epoch);
  // Stops accepting sends at once (fencing) and tells the store it is a
  // slave with no master yet (empty master_address); Follow once the new
  // master is known.
  absl::Status StepDown();

  // Without a controller: FAILED_PRECONDITION "no controller: roles are
  // static (--controller not set)". A controller installs its handler and
  // its name ("etcd:host:port;...", shown by GetBrokerStatus).
  void SetPromoteHandler(PromoteHandler handler, std::string controller);
  absl::StatusOr<int64_t> Promote(int64_t broker_id);

  // OK on the writer; else UNAVAILABLE with v2 code HA_NOT_AVAILABLE naming
  // this broker, its role, epoch and master, so clients retry elsewhere and
  // refresh their route.
  absl::Status CheckWritable() const;
  bool AcceptsWrites() const { return accepts_writes_.load(std::memory_order_acquire); }
  RoleState State() const;
  const HaOptions& options() const { return options_; }

  // The replication fields of GetBrokerStatus: role, epoch, mode, followers
  // or master link from the store's GetReplicationStatus (skipped when the
  // store has no replication), controller.
  void FillStatus(admin::v1::GetBrokerStatusResponse* out);

 private:
  absl::Status ApplyStoreRole(const store::v1::SetRoleRequest& request, int64_t* epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(change_mu_);
  void Publish(RoleState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(change_mu_);
  std::optional<WriterLocation> Resolve();
  void ResolveLoop();

  BrokerIdentity self_;  // client_endpoint guarded by mu_
  const HaOptions options_;
  StoreClient* const store_;
  WriterLookup writers_;

  std::atomic<bool> accepts_writes_{false};
  std::atomic<bool> logged_unimplemented_{false};
  absl::Mutex change_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one role change at a time
  mutable absl::Mutex mu_;
  RoleState state_ ABSL_GUARDED_BY(mu_);
  Listener listener_ ABSL_GUARDED_BY(mu_);
  PromoteHandler promote_ ABSL_GUARDED_BY(mu_);
  std::string controller_ ABSL_GUARDED_BY(mu_) = "static";
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread resolver_;
};

}  // namespace apogee::broker::ha
