// GroupController: fenced automatic failover of one broker group (all brokers
// with the same cluster and broker name) through etcd. Every broker of the
// group runs one; together they elect the master, publish who it is, and take
// mastership away from a master that cannot prove it still holds its lease.
// Keys, election and timings: README.md in this folder.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/broker/controller/etcd_client.h"
#include "services/common/clock/clock.h"

namespace apogee::controller {

enum class Role {
  kUnknown,  // no master known to this broker, or a master that stepped down: accept no writes
  kMaster,
  kSlave,
};
const char* RoleName(Role role);

// The etcd endpoints of the broker flag --controller=etcd:HOST:PORT[;HOST:PORT...]
// ("HOST:PORT;..."); INVALID_ARGUMENT naming the value when it is not that.
absl::StatusOr<std::string> EtcdEndpointsFromFlag(absl::string_view controller_flag);

// What the broker should be now. Emitted through on_role whenever it changes.
struct RoleChange {
  Role role = Role::kUnknown;
  // The epoch of the master named below (for kMaster, this broker's epoch).
  int64_t epoch = 0;
  int64_t master_broker_id = -1;  // -1: none known
  std::string master_client_endpoint;
  std::string master_ha_endpoint;
  // Why, for logs ("elected", "lease not renewed within 2s", ...).
  std::string reason;

  bool operator==(const RoleChange& other) const;
};

// This broker's store, as its broker reports it: the candidate data.
struct CandidateInfo {
  int64_t log_end = 0;  // commit-log end offset
  int64_t epoch = 0;    // the store's epoch
};

struct GroupControllerOptions {
  std::string endpoints;  // etcd: "HOST:PORT[;HOST:PORT...]"
  // How the etcd channels are secured (--etcd_tls*); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string cluster;
  std::string broker_name;
  int64_t broker_id = 0;
  std::string client_endpoint;  // where clients reach this broker
  std::string ha_endpoint;      // where slaves replicate from this broker's store

  // The lease of the master key (and of this broker's member key). A dead
  // master is replaced about one TTL after its last renewal.
  absl::Duration lease_ttl = absl::Seconds(3);
  // A master that has not renewed its lease for lease_ttl - fence_margin (by
  // its own clock, counted from when it sent the last renewal that etcd
  // acknowledged) steps down: before etcd can let another broker take over.
  absl::Duration fence_margin = absl::Seconds(1);
  // Lease renewal, member-key refresh and state poll period (a watch wakes
  // the controller earlier on changes).
  absl::Duration refresh_interval = absl::Milliseconds(500);
  // Deadline of each etcd call (capped further by the fencing deadline).
  absl::Duration call_timeout = absl::Milliseconds(500);
  // When the best candidate has not won this long after the master vanished,
  // the next best may campaign (the k-th after k times this). Zero: 2 TTLs.
  absl::Duration election_backoff = absl::ZeroDuration();
  // Promote: how long the master waits, writes stopped, for the target's
  // published log end to reach its own before it gives the transfer up.
  absl::Duration transfer_catch_up = absl::Seconds(3);
  // How long a broker that could not apply mastership stays out of
  // elections (see GroupControllerCallbacks::on_role).
  absl::Duration resign_backoff = absl::Seconds(5);
  // Let a live broker outside the last published in-sync set become master
  // when no in-sync broker lives (it loses the acknowledged messages it lacks).
  bool unclean_election = false;
  // Time for fencing and election back-off; nullptr: the real clock.
  Clock* clock = nullptr;
};

// Called on the controller's thread; they must not call back into the
// controller, and candidate() and in_sync() must answer at once (from cached
// store status, not an RPC): a master checks its fencing deadline between
// calls, so a callback that blocks delays its step-down. on_role must take effect before it
// returns: once a kUnknown or kSlave change returns, the broker accepts no
// more writes as master (the controller relies on it for fencing and for
// reading the final log end of a term).
struct GroupControllerCallbacks {
  std::function<CandidateInfo()> candidate;
  // Master only: the broker ids of the replicas currently in sync (this
  // broker is added by the controller).
  std::function<std::vector<int64_t>()> in_sync;
  // A kMaster change answered with an error (the broker cannot take
  // writes, e.g. its store is down) makes the controller resign: it deletes
  // the master key it holds (the epoch stays bumped), emits kUnknown and does
  // not stand again for `resign_backoff`, so another broker takes over.
  std::function<absl::Status(const RoleChange&)> on_role;
};

// Thread-safe. Runs one thread (plus the watch's) between Start and Stop.
class GroupController {
 public:
  static absl::StatusOr<std::unique_ptr<GroupController>> Create(
      GroupControllerOptions options, GroupControllerCallbacks callbacks);
  ~GroupController();  // Stop()

  void Start();
  // Revokes this broker's lease (its member key, and its master key if it is
  // master, disappear at once, so the group fails over without waiting for
  // the TTL), then emits kUnknown if it was master. Idempotent.
  void Stop();

  // Operator transfer: asks the master to hand mastership to `target_id`
  // (with the same fencing: the master stops writes, waits for the target to
  // catch up, releases the master key; the target campaigns). Any broker's
  // controller may ask. Returns the new master's epoch. Fails when the target
  // is not a live member of the group or not in the in-sync set, when there
  // is no master, or when the transfer does not finish within `timeout`.
  absl::StatusOr<int64_t> Promote(int64_t target_id, absl::Duration timeout = absl::Seconds(10));

  // The last role emitted.
  RoleChange current() const;
  // The etcd key prefix of this group: /apogee/<cluster>/<broker_name>/.
  const std::string& prefix() const { return prefix_; }
  EtcdClient& etcd_for_testing() { return *etcd_; }

  // Parsed group state; public for tests and the admin path.
  struct MasterRecord {
    int64_t id = -1;
    int64_t epoch = 0;
    std::string client_endpoint;
    std::string ha_endpoint;
    int64_t create_revision = 0;
    int64_t lease = 0;
  };
  struct MemberRecord {
    int64_t id = -1;
    int64_t log_end = 0;
    int64_t epoch = 0;
    std::string client_endpoint;
    std::string ha_endpoint;
  };
  struct GroupState {
    std::optional<MasterRecord> master;
    std::optional<int64_t> epoch;              // the epoch counter; nullopt: never elected
    std::optional<std::set<int64_t>> in_sync;  // last published in-sync set (with the master)
    std::string in_sync_value;
    std::optional<int64_t> transfer_target;
    int64_t transfer_epoch = 0;
    std::string transfer_value;
    std::map<int64_t, MemberRecord> members;  // live brokers
    int64_t revision = 0;
  };
  // Reads the group's keys.
  absl::StatusOr<GroupState> ReadState(absl::Duration max_wait = absl::InfiniteDuration());

 private:
  GroupController(GroupControllerOptions options, GroupControllerCallbacks callbacks,
                  std::unique_ptr<EtcdClient> etcd);

  void Run();
  // One pass: renew, publish, read, decide. Runs on the controller thread.
  void Step();
  void EnsureLease();
  void Decide(const GroupState& state);
  void ActAsMaster(const GroupState& state);
  void MaybeCampaign(const GroupState& state);
  // The order in which live brokers may campaign (best first).
  std::vector<int64_t> Ranking(const GroupState& state) const;
  void StepDown(const std::string& reason);
  absl::Status Emit(RoleChange change);
  // Gives up mastership this broker could not apply (see on_role).
  void Resign(const std::string& master_value, const absl::Status& why);
  void EnsureWatch(int64_t from_revision);
  // How long an etcd call may wait: the fencing deadline caps it for a master.
  absl::Duration MaxWait() const;
  std::string Key(const std::string& name) const { return prefix_ + name; }

  const GroupControllerOptions options_;
  const GroupControllerCallbacks callbacks_;
  const std::unique_ptr<EtcdClient> etcd_;
  Clock* const clock_;
  const std::string prefix_;

  // Controller-thread state.
  int64_t lease_id_ = 0;
  absl::Duration lease_ttl_;
  absl::Time fence_at_;      // by clock_: master steps down at this time
  absl::Time next_renewal_;  // real time
  bool is_master_ = false;
  int64_t master_epoch_ = 0;
  std::optional<absl::Time> no_master_since_;              // by clock_
  absl::Time campaign_not_before_ = absl::InfinitePast();  // by clock_: after Resign
  // Transfer in progress on the master.
  bool transferring_ = false;
  int64_t transfer_target_ = -1;
  int64_t transfer_log_end_ = 0;
  absl::Time transfer_deadline_;  // by clock_
  std::unique_ptr<EtcdWatch> watch_;
  std::string member_value_;  // the member key as last written
  int64_t member_lease_ = 0;

  mutable absl::Mutex mu_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  RoleChange current_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace apogee::controller
