// Wires the etcd GroupController (services/broker/controller) to the
// RoleManager: the controller decides, the RoleManager applies. The
// controller's callbacks must answer at once, so the store's replication
// status they read is a cache refreshed in the background.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apogee/store/v1/store.pb.h"
#include "services/broker/controller/group_controller.h"
#include "services/broker/ha/role_manager.h"
#include "services/broker/route/registrar.h"
#include "services/broker/store_client/store_client.h"
#include "services/common/concurrency/periodic_task.h"

namespace apogee::broker::ha {

// The broker ids of `status`'s in-sync followers of group `broker_name`
// (replica ids are "<broker_name>/<id>"; others are ignored).
std::vector<int64_t> InSyncBrokerIds(const store::v1::GetReplicationStatusResponse& status,
                                     const std::string& broker_name);

class ControllerLink {
 public:
  // `controller_flag` is --controller ("etcd:HOST:PORT[;HOST:PORT...]");
  // `etcd_credentials` secure the etcd channels (--etcd_tls*; null:
  // plaintext).
  static absl::StatusOr<std::unique_ptr<ControllerLink>> Create(
      const std::string& controller_flag,
      std::shared_ptr<grpc::ChannelCredentials> etcd_credentials, const BrokerIdentity& self,
      StoreClient* store, RoleManager* roles);
  ~ControllerLink();  // Stop()

  // Starts the status cache and the election.
  void Start();
  // Leaves the group: revokes the lease, so a master's slaves take over now.
  void Stop();

 private:
  ControllerLink(StoreClient* store, RoleManager* roles, std::string broker_name);
  void RefreshStatus();
  absl::Status Apply(const controller::RoleChange& change);

  StoreClient* const store_;
  RoleManager* const roles_;
  const std::string broker_name_;
  std::unique_ptr<controller::GroupController> controller_;
  std::unique_ptr<PeriodicTask> refresher_;

  mutable absl::Mutex mu_;
  controller::CandidateInfo candidate_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> in_sync_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::broker::ha
