#include "services/broker/ha/role_manager.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "services/common/client/channel.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker::ha {

namespace sv1 = ::apogee::store::v1;
namespace av1 = ::apogee::admin::v1;

constexpr int32_t kMaxInsyncReplicas = 16;

const char* RoleName(Role role) { return role == Role::kMaster ? "master" : "slave"; }

absl::StatusOr<sv1::ReplicationMode> ParseReplicationMode(absl::string_view flag,
                                                          absl::string_view value) {
  if (value == "async") return sv1::REPLICATION_ASYNC;
  if (value == "sync") return sv1::REPLICATION_SYNC;
  return absl::InvalidArgumentError(
      absl::StrCat(flag, "=", value, " is not a replication mode (allowed: async, sync)"));
}

absl::Status ValidateHaOptions(const HaOptions& options) {
  if (options.min_insync_replicas < 1 || options.min_insync_replicas > kMaxInsyncReplicas) {
    return absl::InvalidArgumentError(
        absl::StrCat("--min_insync_replicas=", options.min_insync_replicas,
                     " is out of range (allowed: 1..", kMaxInsyncReplicas, ")"));
  }
  if (options.replication_timeout < absl::Milliseconds(10) ||
      options.replication_timeout > absl::Minutes(10)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--replication_timeout=", absl::FormatDuration(options.replication_timeout),
                     " is out of range (allowed: 10ms..10m)"));
  }
  if (!options.master.empty()) {
    if (absl::Status s = ParseHostPort("--master", options.master).status(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string DescribeSyncPolicy(const HaOptions& options) {
  return absl::StrCat("min_insync_replicas=", options.min_insync_replicas,
                      " replication_timeout=", absl::FormatDuration(options.replication_timeout));
}

RoleManager::RoleManager(BrokerIdentity self, HaOptions options, StoreClient* store,
                         std::vector<std::string> nameservers)
    : self_(self),
      options_(std::move(options)),
      store_(store),
      writers_(std::move(self), nameservers) {}

RoleManager::~RoleManager() { Stop(); }

void RoleManager::SetListener(Listener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

void RoleManager::SetClientEndpoint(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  self_.client_endpoint = endpoint;
}

void RoleManager::SetPromoteHandler(PromoteHandler handler, std::string controller) {
  absl::MutexLock lock(&mu_);
  promote_ = std::move(handler);
  controller_ = std::move(controller);
}

absl::StatusOr<int64_t> RoleManager::Promote(int64_t broker_id) {
  PromoteHandler handler;
  {
    absl::MutexLock lock(&mu_);
    handler = promote_;
  }
  if (!handler) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no controller: roles are static (--controller not set); cannot promote broker \"",
        self_.broker_name, "\" id ", broker_id, " (restart it with --broker_id=0 instead)"));
  }
  return handler(broker_id);
}

RoleState RoleManager::State() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

absl::Status RoleManager::CheckWritable() const {
  if (AcceptsWrites()) return absl::OkStatus();
  RoleState state;
  std::string endpoint;
  {
    absl::MutexLock lock(&mu_);
    state = state_;
    endpoint = self_.client_endpoint;
  }
  std::string master =
      state.master_address.empty() ? "unknown yet" : absl::StrCat("at ", state.master_address);
  return WithV2Code(
      absl::UnavailableError(absl::StrCat(
          "broker \"", self_.broker_name, "\" id ", self_.broker_id, " at ", endpoint, " is a ",
          RoleName(state.role), " (epoch ", state.epoch,
          ") and does not accept writes: send to its group's master (route broker id 0; master "
          "store ",
          master, ")")),
      apache::rocketmq::v2::HA_NOT_AVAILABLE);
}

absl::Status RoleManager::ApplyStoreRole(const sv1::SetRoleRequest& request, int64_t* epoch) {
  auto response = store_->SetRole(request);
  if (response.ok()) {
    *epoch = response->epoch();
    return absl::OkStatus();
  }
  if (response.status().code() != absl::StatusCode::kUnimplemented) return response.status();
  // A store without replication: it acts as a lone master (the agreed
  // default), which is all a single-broker group needs.
  if (!logged_unimplemented_.exchange(true)) {
    std::fprintf(stderr,
                 "event=store_replication_unavailable broker=%s broker_id=%lld role=%s "
                 "detail=\"store answered UNIMPLEMENTED to SetRole; carrying on as a "
                 "single-broker store\"\n",
                 self_.broker_name.c_str(), static_cast<long long>(self_.broker_id),
                 request.role() == sv1::MASTER ? "master" : "slave");
  }
  *epoch = request.epoch();
  return absl::OkStatus();
}

void RoleManager::Publish(RoleState state) {
  Listener listener;
  {
    absl::MutexLock lock(&mu_);
    state_ = state;
    listener = listener_;
  }
  std::fprintf(stderr, "event=role_changed broker=%s broker_id=%lld role=%s epoch=%lld master=%s\n",
               self_.broker_name.c_str(), static_cast<long long>(self_.broker_id),
               RoleName(state.role), static_cast<long long>(state.epoch),
               state.master_address.empty() ? "-" : state.master_address.c_str());
  if (listener) listener(state);
}

absl::Status RoleManager::BecomeMaster(int64_t epoch) {
  absl::MutexLock change(&change_mu_);
  sv1::SetRoleRequest request;
  request.set_role(sv1::MASTER);
  request.set_epoch(epoch);
  request.set_mode(options_.mode);
  request.set_min_insync_replicas(options_.min_insync_replicas);
  ToProtoDuration(options_.replication_timeout, request.mutable_replication_timeout());
  int64_t stored_epoch = epoch;
  if (absl::Status s = ApplyStoreRole(request, &stored_epoch); !s.ok()) return s;
  accepts_writes_.store(true, std::memory_order_release);
  Publish(RoleState{Role::kMaster, stored_epoch, "", true});
  return absl::OkStatus();
}

absl::Status RoleManager::Follow(const std::string& master_ha_endpoint, int64_t epoch) {
  absl::MutexLock change(&change_mu_);
  accepts_writes_.store(false, std::memory_order_release);
  sv1::SetRoleRequest request;
  request.set_role(sv1::SLAVE);
  request.set_epoch(epoch);
  request.set_master_address(master_ha_endpoint);
  request.set_replica_id(absl::StrCat(self_.broker_name, "/", self_.broker_id));
  int64_t stored_epoch = epoch;
  absl::Status s = ApplyStoreRole(request, &stored_epoch);
  // Refusing writes is already in force; the registration says so even
  // when the store could not be told (the next resolve retries it).
  Publish(RoleState{Role::kSlave, stored_epoch, master_ha_endpoint, false});
  return s;
}

absl::Status RoleManager::StepDown() {
  absl::MutexLock change(&change_mu_);
  accepts_writes_.store(false, std::memory_order_release);
  int64_t epoch;
  {
    absl::MutexLock lock(&mu_);
    epoch = state_.epoch;
  }
  sv1::SetRoleRequest request;
  request.set_role(sv1::SLAVE);
  request.set_epoch(epoch);
  request.set_replica_id(absl::StrCat(self_.broker_name, "/", self_.broker_id));
  int64_t stored_epoch = epoch;
  absl::Status s = ApplyStoreRole(request, &stored_epoch);
  Publish(RoleState{Role::kSlave, stored_epoch, "", false});
  return s;
}

absl::Status RoleManager::StartStatic() {
  if (self_.broker_id == 0) return BecomeMaster(0);
  {
    absl::MutexLock change(&change_mu_);
    Publish(RoleState{Role::kSlave, 0, "", false});
  }
  resolver_ = std::thread([this] { ResolveLoop(); });
  return absl::OkStatus();
}

void RoleManager::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (resolver_.joinable()) resolver_.join();
}

std::optional<WriterLocation> RoleManager::Resolve() {
  if (!options_.master.empty()) return WriterLocation{options_.master, "", 0, 0};
  return writers_.Find(absl::Seconds(2), [](const WriterLocation&) { return true; });
}

void RoleManager::ResolveLoop() {
  absl::Duration backoff = absl::Milliseconds(100);
  bool logged_waiting = false;
  while (true) {
    std::optional<WriterLocation> writer = Resolve();
    absl::Duration wait = options_.resolve_interval;
    if (!writer.has_value()) {
      if (!logged_waiting) {
        std::fprintf(stderr,
                     "event=master_unknown broker=%s broker_id=%lld detail=\"no writer of the "
                     "group is registered with any NameServer yet; retrying\"\n",
                     self_.broker_name.c_str(), static_cast<long long>(self_.broker_id));
        logged_waiting = true;
      }
      wait = backoff;
      backoff = std::min(backoff * 2, options_.resolve_interval);
    } else {
      backoff = absl::Milliseconds(100);
      logged_waiting = false;
      const RoleState state = State();
      if (state.master_address != writer->ha_endpoint) {
        absl::Status s = Follow(writer->ha_endpoint, writer->epoch);
        if (!s.ok()) {
          std::fprintf(stderr, "event=follow_failed broker=%s master=%s error=\"%s\"\n",
                       self_.broker_name.c_str(), writer->ha_endpoint.c_str(),
                       std::string(s.message()).c_str());
          wait = std::min(wait, absl::Seconds(1));
          // Retry: forget the address so the next round calls Follow again.
          absl::MutexLock lock(&mu_);
          state_.master_address.clear();
        }
      }
    }
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), wait)) return;
  }
}

void RoleManager::FillStatus(av1::GetBrokerStatusResponse* out) {
  const RoleState state = State();
  out->set_role(RoleName(state.role));
  out->set_epoch(state.epoch);
  {
    absl::MutexLock lock(&mu_);
    out->set_controller(controller_);
  }
  if (state.role == Role::kMaster) {
    out->set_replication_mode(options_.mode == sv1::REPLICATION_SYNC ? "sync" : "async");
    out->set_min_insync_replicas(options_.min_insync_replicas);
  } else {
    out->set_master_address(state.master_address);
  }
  auto status = store_->GetReplicationStatus();
  if (!status.ok()) return;  // UNIMPLEMENTED: a store without replication
  if (status->epoch() != 0) out->set_epoch(status->epoch());
  for (const sv1::FollowerStatus& f : status->followers()) {
    av1::ReplicaStatus* r = out->add_replicas();
    r->set_replica_id(f.replica_id());
    r->set_acked_offset(f.acked_offset());
    r->set_lag_bytes(f.lag_bytes());
    *r->mutable_lag_time() = f.lag_time();
    r->set_in_sync(f.in_sync());
  }
  if (state.role == Role::kSlave) {
    if (!status->master_address().empty()) out->set_master_address(status->master_address());
    out->set_master_connected(status->connected());
    out->set_lag_bytes(status->lag_bytes());
    *out->mutable_lag_time() = status->lag_time();
  }
}

}  // namespace apogee::broker::ha
