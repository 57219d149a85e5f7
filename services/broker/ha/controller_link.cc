#include "services/broker/ha/controller_link.h"

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace apogee::broker::ha {

std::vector<int64_t> InSyncBrokerIds(const store::v1::GetReplicationStatusResponse& status,
                                     const std::string& broker_name) {
  std::vector<int64_t> ids;
  const std::string prefix = absl::StrCat(broker_name, "/");
  for (const store::v1::FollowerStatus& f : status.followers()) {
    absl::string_view id_text = f.replica_id();
    int64_t id = 0;
    if (f.in_sync() && absl::ConsumePrefix(&id_text, prefix) && absl::SimpleAtoi(id_text, &id)) {
      ids.push_back(id);
    }
  }
  return ids;
}

absl::StatusOr<std::unique_ptr<ControllerLink>> ControllerLink::Create(
    const std::string& controller_flag, std::shared_ptr<grpc::ChannelCredentials> etcd_credentials,
    const BrokerIdentity& self, StoreClient* store, RoleManager* roles) {
  auto endpoints = controller::EtcdEndpointsFromFlag(controller_flag);
  if (!endpoints.ok()) return endpoints.status();
  std::unique_ptr<ControllerLink> link(new ControllerLink(store, roles, self.broker_name));
  link->RefreshStatus();  // candidate data before the first election
  controller::GroupControllerOptions options;
  options.endpoints = *endpoints;
  options.credentials = std::move(etcd_credentials);
  options.cluster = self.cluster_name;
  options.broker_name = self.broker_name;
  options.broker_id = self.broker_id;
  options.client_endpoint = self.client_endpoint;
  options.ha_endpoint = self.ha_endpoint;
  ControllerLink* raw = link.get();
  controller::GroupControllerCallbacks callbacks;
  callbacks.candidate = [raw] {
    absl::MutexLock lock(&raw->mu_);
    return raw->candidate_;
  };
  callbacks.in_sync = [raw] {
    absl::MutexLock lock(&raw->mu_);
    return raw->in_sync_;
  };
  callbacks.on_role = [raw](const controller::RoleChange& change) { return raw->Apply(change); };
  auto created = controller::GroupController::Create(std::move(options), std::move(callbacks));
  if (!created.ok()) return created.status();
  link->controller_ = std::move(created).value();
  controller::GroupController* group = link->controller_.get();
  roles->SetPromoteHandler([group](int64_t broker_id) { return group->Promote(broker_id); },
                           controller_flag);
  return link;
}

ControllerLink::ControllerLink(StoreClient* store, RoleManager* roles, std::string broker_name)
    : store_(store), roles_(roles), broker_name_(std::move(broker_name)) {}

ControllerLink::~ControllerLink() { Stop(); }

void ControllerLink::Start() {
  // Fast enough that a promotion ranks candidates by nearly current log ends.
  refresher_ = std::make_unique<PeriodicTask>(absl::Milliseconds(200), [this] { RefreshStatus(); });
  controller_->Start();
}

void ControllerLink::Stop() {
  if (controller_ != nullptr) controller_->Stop();
  refresher_.reset();
}

void ControllerLink::RefreshStatus() {
  auto status = store_->GetReplicationStatus();
  if (!status.ok()) return;  // keep the last figures; the store may be restarting
  absl::MutexLock lock(&mu_);
  candidate_.log_end = status->log_end();
  candidate_.epoch = status->epoch();
  in_sync_ = InSyncBrokerIds(*status, broker_name_);
}

absl::Status ControllerLink::Apply(const controller::RoleChange& change) {
  absl::Status applied;
  switch (change.role) {
    case controller::Role::kMaster:
      applied = roles_->BecomeMaster(change.epoch);
      break;
    case controller::Role::kSlave:
      applied = roles_->Follow(change.master_ha_endpoint, change.epoch);
      break;
    case controller::Role::kUnknown:
      applied = roles_->StepDown();
      break;
  }
  std::fprintf(stderr, "event=role_change role=%s epoch=%lld master=%lld reason=\"%s\"%s%s\n",
               controller::RoleName(change.role), static_cast<long long>(change.epoch),
               static_cast<long long>(change.master_broker_id), change.reason.c_str(),
               applied.ok() ? "" : " error=", applied.ok() ? "" : applied.ToString().c_str());
  return applied;
}

}  // namespace apogee::broker::ha
