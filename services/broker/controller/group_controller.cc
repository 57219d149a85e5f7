#include "services/broker/controller/group_controller.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace apogee::controller {
namespace {

constexpr absl::Duration kMaxIdleWait = absl::Milliseconds(100);

// Values are "k=v;k=v" (endpoints contain ':' but never ';' or '=').
std::map<std::string, std::string> ParseFields(absl::string_view value) {
  std::map<std::string, std::string> fields;
  for (absl::string_view part : absl::StrSplit(value, ';', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    fields[kv.first] = kv.second;
  }
  return fields;
}

int64_t IntField(const std::map<std::string, std::string>& fields, const std::string& name,
                 int64_t fallback) {
  auto it = fields.find(name);
  int64_t v = 0;
  if (it == fields.end() || !absl::SimpleAtoi(it->second, &v)) return fallback;
  return v;
}

std::string StrField(const std::map<std::string, std::string>& fields, const std::string& name) {
  auto it = fields.find(name);
  return it == fields.end() ? "" : it->second;
}

std::string IdList(const std::set<int64_t>& ids) { return absl::StrJoin(ids, ","); }

}  // namespace

absl::StatusOr<std::string> EtcdEndpointsFromFlag(absl::string_view controller_flag) {
  absl::string_view endpoints = controller_flag;
  if (!absl::ConsumePrefix(&endpoints, "etcd:") || endpoints.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--controller=", controller_flag,
                     ": expected etcd:HOST:PORT[;HOST:PORT...] (the only controller is etcd)"));
  }
  // Validate each HOST:PORT the way the client will.
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = EtcdClient::Create(std::string(endpoints));
  if (!client.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--controller=", controller_flag, ": ", client.status().message()));
  }
  return std::string(endpoints);
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kMaster:
      return "master";
    case Role::kSlave:
      return "slave";
    case Role::kUnknown:
      break;
  }
  return "unknown";
}

bool RoleChange::operator==(const RoleChange& other) const {
  return role == other.role && epoch == other.epoch && master_broker_id == other.master_broker_id &&
         master_client_endpoint == other.master_client_endpoint &&
         master_ha_endpoint == other.master_ha_endpoint;
}

absl::StatusOr<std::unique_ptr<GroupController>> GroupController::Create(
    GroupControllerOptions options, GroupControllerCallbacks callbacks) {
  if (options.cluster.empty() || options.broker_name.empty()) {
    return absl::InvalidArgumentError("the controller needs a cluster and a broker name");
  }
  if (absl::StrContains(options.cluster, '/') || absl::StrContains(options.broker_name, '/')) {
    return absl::InvalidArgumentError(absl::StrCat("cluster \"", options.cluster,
                                                   "\" and broker name \"", options.broker_name,
                                                   "\" must not contain '/' (etcd key parts)"));
  }
  if (options.broker_id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("broker id ", options.broker_id, " is negative"));
  }
  if (options.lease_ttl < absl::Seconds(2)) {
    // etcd raises shorter TTLs to its minimum (1.5 x its election timeout).
    return absl::InvalidArgumentError(absl::StrCat(
        "lease TTL ", absl::FormatDuration(options.lease_ttl), " is below the minimum 2s"));
  }
  if (options.fence_margin <= absl::ZeroDuration() ||
      options.fence_margin + options.refresh_interval >= options.lease_ttl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fence margin ", absl::FormatDuration(options.fence_margin), " plus refresh interval ",
        absl::FormatDuration(options.refresh_interval), " must be positive and below the TTL ",
        absl::FormatDuration(options.lease_ttl)));
  }
  if (!callbacks.candidate || !callbacks.in_sync || !callbacks.on_role) {
    return absl::InvalidArgumentError("candidate, in_sync and on_role callbacks are required");
  }
  if (options.election_backoff <= absl::ZeroDuration()) {
    options.election_backoff = 2 * options.lease_ttl;
  }
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Create(options.endpoints, options.call_timeout, options.credentials);
  if (!etcd.ok()) return etcd.status();
  return std::unique_ptr<GroupController>(
      new GroupController(std::move(options), std::move(callbacks), std::move(*etcd)));
}

GroupController::GroupController(GroupControllerOptions options, GroupControllerCallbacks callbacks,
                                 std::unique_ptr<EtcdClient> etcd)
    : options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      etcd_(std::move(etcd)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock::Default()),
      prefix_(absl::StrCat("/apogee/", options_.cluster, "/", options_.broker_name, "/")),
      lease_ttl_(options_.lease_ttl) {}

GroupController::~GroupController() { Stop(); }

void GroupController::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void GroupController::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  watch_.reset();
  if (lease_id_ != 0) {
    absl::Status revoked = etcd_->LeaseRevoke(lease_id_);
    if (!revoked.ok()) {
      std::fprintf(stderr,
                   "event=controller_lease_revoke_failed group=%s broker_id=%lld error=\"%s\"\n",
                   prefix_.c_str(), static_cast<long long>(options_.broker_id),
                   std::string(revoked.message()).c_str());
    }
    lease_id_ = 0;
  }
  if (is_master_ || transferring_) StepDown("controller stopped");
}

RoleChange GroupController::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void GroupController::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      wake_ = false;
    }
    Step();
    absl::MutexLock lock(&mu_);
    // Wake on a watch event, on Stop, or to renew / check the fence in time.
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](GroupController* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
                               return c->wake_ || c->stopping_;
                             },
                             this),
                         kMaxIdleWait);
  }
}

absl::Duration GroupController::MaxWait() const {
  if (!is_master_ && !transferring_) return absl::InfiniteDuration();
  return std::max(absl::ZeroDuration(), fence_at_ - clock_->Now());
}

void GroupController::EnsureLease() {
  const absl::Time now = absl::Now();
  if (lease_id_ != 0 && now < next_renewal_) return;
  // A master past its fencing deadline renews after stepping down (next pass).
  if (MaxWait() <= absl::ZeroDuration()) return;
  next_renewal_ = now + options_.refresh_interval;
  const absl::Time sent = clock_->Now();
  if (lease_id_ == 0) {
    absl::StatusOr<EtcdLease> lease = etcd_->LeaseGrant(options_.lease_ttl, MaxWait());
    if (!lease.ok()) return;
    lease_id_ = lease->id;
    lease_ttl_ = lease->ttl;
    fence_at_ = sent + lease_ttl_ - options_.fence_margin;
  } else {
    absl::StatusOr<absl::Duration> ttl = etcd_->LeaseKeepAlive(lease_id_, MaxWait());
    if (absl::IsNotFound(ttl.status())) {
      std::fprintf(stderr, "event=controller_lease_lost group=%s broker_id=%lld lease=%lld\n",
                   prefix_.c_str(), static_cast<long long>(options_.broker_id),
                   static_cast<long long>(lease_id_));
      lease_id_ = 0;
      if (is_master_ || transferring_) StepDown("lease expired");
      return;
    }
    if (!ttl.ok()) return;  // the fence check handles a master that keeps failing
    fence_at_ = sent + lease_ttl_ - options_.fence_margin;
  }
  // The member key carries this broker's candidate data under its lease.
  const CandidateInfo candidate = callbacks_.candidate();
  const std::string value = absl::StrCat(
      "id=", options_.broker_id, ";log_end=", candidate.log_end, ";epoch=", candidate.epoch,
      ";client=", options_.client_endpoint, ";ha=", options_.ha_endpoint);
  // Written only when it changed (each write is an etcd revision, and wakes
  // every controller of the group).
  if (value == member_value_ && lease_id_ == member_lease_) return;
  if (etcd_->Put(Key(absl::StrCat("members/", options_.broker_id)), value, lease_id_, MaxWait())
          .ok()) {
    member_value_ = value;
    member_lease_ = lease_id_;
  }
}

absl::StatusOr<GroupController::GroupState> GroupController::ReadState(absl::Duration max_wait) {
  absl::StatusOr<EtcdRange> range = etcd_->GetPrefix(prefix_, max_wait);
  if (!range.ok()) return range.status();
  GroupState state;
  state.revision = range->revision;
  for (const EtcdKeyValue& kv : range->kvs) {
    absl::string_view name = kv.key;
    absl::ConsumePrefix(&name, prefix_);
    const std::map<std::string, std::string> fields = ParseFields(kv.value);
    if (name == "master") {
      MasterRecord master;
      master.id = IntField(fields, "id", -1);
      master.epoch = IntField(fields, "epoch", 0);
      master.client_endpoint = StrField(fields, "client");
      master.ha_endpoint = StrField(fields, "ha");
      master.create_revision = kv.create_revision;
      master.lease = kv.lease;
      state.master = master;
    } else if (name == "epoch") {
      int64_t epoch = 0;
      if (absl::SimpleAtoi(kv.value, &epoch)) state.epoch = epoch;
    } else if (name == "insync") {
      std::set<int64_t> ids;
      for (absl::string_view id : absl::StrSplit(StrField(fields, "ids"), ',', absl::SkipEmpty())) {
        int64_t v = 0;
        if (absl::SimpleAtoi(id, &v)) ids.insert(v);
      }
      state.in_sync = std::move(ids);
      state.in_sync_value = kv.value;
    } else if (name == "transfer") {
      state.transfer_target = IntField(fields, "target", -1);
      state.transfer_epoch = IntField(fields, "epoch", 0);
      state.transfer_value = kv.value;
    } else if (absl::ConsumePrefix(&name, "members/")) {
      MemberRecord member;
      member.id = IntField(fields, "id", -1);
      member.log_end = IntField(fields, "log_end", 0);
      member.epoch = IntField(fields, "epoch", 0);
      member.client_endpoint = StrField(fields, "client");
      member.ha_endpoint = StrField(fields, "ha");
      if (member.id >= 0) state.members[member.id] = member;
    }
  }
  return state;
}

void GroupController::EnsureWatch(int64_t from_revision) {
  if (watch_ != nullptr && !watch_->done()) return;
  watch_.reset();
  auto wake = [this] {
    absl::MutexLock lock(&mu_);
    wake_ = true;
  };
  watch_ = etcd_->WatchPrefix(
      prefix_, from_revision, [wake](const std::vector<EtcdEvent>&) { wake(); },
      [wake](const absl::Status&) { wake(); });
}

void GroupController::Step() {
  // Fencing first: a master past its deadline stops before anything else.
  if ((is_master_ || transferring_) && clock_->Now() >= fence_at_) {
    StepDown(absl::StrCat("lease not renewed within ",
                          absl::FormatDuration(lease_ttl_ - options_.fence_margin)));
  }
  EnsureLease();
  if ((is_master_ || transferring_) && clock_->Now() >= fence_at_) return;  // next pass fences
  absl::StatusOr<GroupState> state = ReadState(MaxWait());
  if (!state.ok()) return;
  EnsureWatch(state->revision + 1);
  Decide(*state);
}

void GroupController::Decide(const GroupState& state) {
  if (state.master.has_value()) {
    no_master_since_.reset();
    const MasterRecord& master = *state.master;
    const bool mine = master.id == options_.broker_id;
    if (mine && master.lease == lease_id_ && lease_id_ != 0 && (is_master_ || transferring_) &&
        master.epoch == master_epoch_) {
      ActAsMaster(state);
      return;
    }
    if (mine) {
      // A master key naming this broker that it does not hold as master: left
      // by a term that was fenced (or by an earlier run of this broker).
      // Release it so that the group elects afresh with a new epoch.
      if (is_master_ || transferring_) StepDown("master key no longer matches this term");
      (void)etcd_->Txn({EtcdCompare::CreateRevisionEquals(Key("master"), master.create_revision)},
                       {EtcdOp::Delete(Key("master"))}, {}, MaxWait());
      return;
    }
    if (is_master_ || transferring_) {
      StepDown(absl::StrCat("broker ", master.id, " is master at epoch ", master.epoch));
    }
    RoleChange follow;
    follow.role = Role::kSlave;
    follow.epoch = master.epoch;
    follow.master_broker_id = master.id;
    follow.master_client_endpoint = master.client_endpoint;
    follow.master_ha_endpoint = master.ha_endpoint;
    follow.reason = "following the elected master";
    (void)Emit(std::move(follow));
    return;
  }
  // No master key.
  if (transferring_) {
    // This master released its key for a transfer: wait, writes stopped, for
    // the named target to win (or fall back to a normal election).
    transferring_ = false;
    is_master_ = false;
  }
  if (is_master_) StepDown("master key vanished (lease expired or deleted)");
  if (!no_master_since_.has_value()) no_master_since_ = clock_->Now();
  MaybeCampaign(state);
}

std::vector<int64_t> GroupController::Ranking(const GroupState& state) const {
  std::vector<const MemberRecord*> eligible;
  for (const auto& [id, member] : state.members) {
    if (!state.in_sync.has_value() || state.in_sync->count(id) > 0) eligible.push_back(&member);
  }
  if (eligible.empty() && options_.unclean_election) {
    for (const auto& [id, member] : state.members) eligible.push_back(&member);
  }
  std::sort(eligible.begin(), eligible.end(), [](const MemberRecord* a, const MemberRecord* b) {
    if (a->log_end != b->log_end) return a->log_end > b->log_end;
    return a->id < b->id;
  });
  std::vector<int64_t> order;
  // A target named by an operator transfer goes first; the others defer.
  if (state.transfer_target.has_value() && state.members.count(*state.transfer_target) > 0) {
    order.push_back(*state.transfer_target);
  }
  for (const MemberRecord* m : eligible) {
    if (order.empty() || m->id != order.front()) order.push_back(m->id);
  }
  return order;
}

void GroupController::MaybeCampaign(const GroupState& state) {
  // Stand only with a freshly renewed lease, so that a new master has its
  // whole fencing window ahead of it.
  if (lease_id_ == 0 || clock_->Now() >= fence_at_ ||
      state.members.count(options_.broker_id) == 0 || clock_->Now() < campaign_not_before_) {
    return;
  }
  const std::vector<int64_t> order = Ranking(state);
  const auto it = std::find(order.begin(), order.end(), options_.broker_id);
  if (it == order.end()) return;  // not eligible (out of sync)
  const int64_t rank = it - order.begin();
  absl::Duration wait = rank * options_.election_backoff;
  // A group that never had a master prefers the broker configured as master
  // (id 0): whichever broker happened to start first must not take over an
  // existing static group (its log may be the shorter one).
  if (!state.epoch.has_value() && options_.broker_id != 0) wait += options_.election_backoff;
  if (clock_->Now() - *no_master_since_ < wait) return;

  const int64_t epoch = state.epoch.value_or(0);
  const int64_t next = epoch + 1;
  const EtcdCompare epoch_unchanged =
      state.epoch.has_value() ? EtcdCompare::ValueEquals(Key("epoch"), absl::StrCat(epoch))
                              : EtcdCompare::CreateRevisionEquals(Key("epoch"), 0);
  const std::string value =
      absl::StrCat("id=", options_.broker_id, ";epoch=", next, ";client=", options_.client_endpoint,
                   ";ha=", options_.ha_endpoint);
  // Fencing starts now: the lease renewal that counts is the latest one.
  absl::StatusOr<bool> won =
      etcd_->Txn({EtcdCompare::CreateRevisionEquals(Key("master"), 0), epoch_unchanged},
                 {EtcdOp::Put(Key("master"), value, lease_id_),
                  EtcdOp::Put(Key("epoch"), absl::StrCat(next)), EtcdOp::Delete(Key("transfer"))});
  if (!won.ok() || !*won) return;
  is_master_ = true;
  master_epoch_ = next;
  no_master_since_.reset();
  std::fprintf(stderr, "event=controller_elected group=%s broker_id=%lld epoch=%lld rank=%lld\n",
               prefix_.c_str(), static_cast<long long>(options_.broker_id),
               static_cast<long long>(next), static_cast<long long>(rank));
  RoleChange change;
  change.role = Role::kMaster;
  change.epoch = next;
  change.master_broker_id = options_.broker_id;
  change.master_client_endpoint = options_.client_endpoint;
  change.master_ha_endpoint = options_.ha_endpoint;
  change.reason =
      rank == 0 ? "elected" : absl::StrCat("elected after ", rank, " better candidates");
  if (absl::Status applied = Emit(std::move(change)); !applied.ok()) Resign(value, applied);
}

void GroupController::Resign(const std::string& master_value, const absl::Status& why) {
  // Only the key this broker wrote: never a successor's.
  (void)etcd_->Txn({EtcdCompare::ValueEquals(Key("master"), master_value)},
                   {EtcdOp::Delete(Key("master"))}, {}, MaxWait());
  is_master_ = false;
  campaign_not_before_ = clock_->Now() + options_.resign_backoff;
  std::fprintf(stderr,
               "event=controller_resign group=%s broker_id=%lld epoch=%lld backoff=%s "
               "reason=\"%s\"\n",
               prefix_.c_str(), static_cast<long long>(options_.broker_id),
               static_cast<long long>(master_epoch_),
               absl::FormatDuration(options_.resign_backoff).c_str(),
               std::string(why.message()).c_str());
  RoleChange change;
  change.role = Role::kUnknown;
  change.epoch = master_epoch_;
  change.reason = absl::StrCat("could not take mastership: ", why.message());
  (void)Emit(std::move(change));
}

void GroupController::ActAsMaster(const GroupState& state) {
  const MasterRecord& master = *state.master;
  const EtcdCompare still_mine =
      EtcdCompare::CreateRevisionEquals(Key("master"), master.create_revision);
  // Publish the in-sync set (kept after this master dies: the next election
  // reads it).
  if (is_master_ && !transferring_) {
    std::set<int64_t> ids = {options_.broker_id};
    for (int64_t id : callbacks_.in_sync()) ids.insert(id);
    const std::string value = absl::StrCat("epoch=", master_epoch_, ";ids=", IdList(ids));
    if (value != state.in_sync_value) {
      (void)etcd_->Txn({still_mine}, {EtcdOp::Put(Key("insync"), value)}, {}, MaxWait());
    }
  }
  if (!state.transfer_target.has_value()) {
    if (transferring_) {
      // The transfer key was withdrawn: keep mastership.
      transferring_ = false;
      is_master_ = true;
      (void)Emit(RoleChange{Role::kMaster, master_epoch_, options_.broker_id,
                            options_.client_endpoint, options_.ha_endpoint, "transfer withdrawn"});
    }
    return;
  }
  const int64_t target = *state.transfer_target;
  if (target == options_.broker_id || state.transfer_epoch != master_epoch_) {
    // Already master, or a request against an older term: drop it.
    (void)etcd_->Txn({EtcdCompare::ValueEquals(Key("transfer"), state.transfer_value)},
                     {EtcdOp::Delete(Key("transfer"))}, {}, MaxWait());
    return;
  }
  if (!transferring_) {
    transferring_ = true;
    is_master_ = false;
    transfer_target_ = target;
    // Stop writes first (on_role takes effect before it returns), so that the
    // log end read next is final for this term.
    (void)Emit(RoleChange{Role::kUnknown, master_epoch_, options_.broker_id,
                          options_.client_endpoint, options_.ha_endpoint,
                          absl::StrCat("handing mastership to broker ", target)});
    transfer_log_end_ = callbacks_.candidate().log_end;
    transfer_deadline_ = clock_->Now() + options_.transfer_catch_up;
    std::fprintf(stderr,
                 "event=controller_transfer_start group=%s broker_id=%lld target=%lld "
                 "epoch=%lld log_end=%lld\n",
                 prefix_.c_str(), static_cast<long long>(options_.broker_id),
                 static_cast<long long>(target), static_cast<long long>(master_epoch_),
                 static_cast<long long>(transfer_log_end_));
  }
  auto member = state.members.find(transfer_target_);
  const bool caught_up =
      member != state.members.end() && member->second.log_end >= transfer_log_end_;
  if (caught_up) {
    // Release the master key only while this term is still the current one.
    (void)etcd_->Txn(
        {still_mine, EtcdCompare::ValueEquals(Key("epoch"), absl::StrCat(master_epoch_))},
        {EtcdOp::Delete(Key("master"))}, {}, MaxWait());
    return;
  }
  if (member == state.members.end() || clock_->Now() >= transfer_deadline_) {
    std::fprintf(
        stderr,
        "event=controller_transfer_abandoned group=%s broker_id=%lld target=%lld "
        "target_log_end=%lld log_end=%lld\n",
        prefix_.c_str(), static_cast<long long>(options_.broker_id),
        static_cast<long long>(transfer_target_),
        static_cast<long long>(member == state.members.end() ? -1 : member->second.log_end),
        static_cast<long long>(transfer_log_end_));
    (void)etcd_->Txn({EtcdCompare::ValueEquals(Key("transfer"), state.transfer_value)},
                     {EtcdOp::Delete(Key("transfer"))}, {}, MaxWait());
    // The next pass sees no transfer key and resumes mastership.
  }
}

void GroupController::StepDown(const std::string& reason) {
  const bool was = is_master_ || transferring_;
  is_master_ = false;
  transferring_ = false;
  if (!was) return;
  std::fprintf(stderr,
               "event=controller_step_down group=%s broker_id=%lld epoch=%lld reason=\"%s\"\n",
               prefix_.c_str(), static_cast<long long>(options_.broker_id),
               static_cast<long long>(master_epoch_), reason.c_str());
  RoleChange change;
  change.role = Role::kUnknown;
  change.epoch = master_epoch_;
  change.reason = reason;
  (void)Emit(std::move(change));
}

absl::Status GroupController::Emit(RoleChange change) {
  {
    absl::MutexLock lock(&mu_);
    if (current_ == change) return absl::OkStatus();
    current_ = change;
  }
  std::fprintf(stderr,
               "event=controller_role group=%s broker_id=%lld role=%s epoch=%lld master=%lld "
               "reason=\"%s\"\n",
               prefix_.c_str(), static_cast<long long>(options_.broker_id), RoleName(change.role),
               static_cast<long long>(change.epoch),
               static_cast<long long>(change.master_broker_id), change.reason.c_str());
  return callbacks_.on_role(change);
}

absl::StatusOr<int64_t> GroupController::Promote(int64_t target_id, absl::Duration timeout) {
  absl::StatusOr<GroupState> state = ReadState();
  if (!state.ok()) return state.status();
  const std::string group = absl::StrCat(options_.cluster, "/", options_.broker_name);
  std::vector<int64_t> live;
  for (const auto& [id, member] : state->members) live.push_back(id);
  if (state->members.count(target_id) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("broker id ", target_id, " is not a live member of group ", group,
                     " (live members: [", absl::StrJoin(live, ","), "])"));
  }
  if (!state->master.has_value()) {
    return absl::UnavailableError(
        absl::StrCat("group ", group, " has no master to hand over from; an election is due"));
  }
  const MasterRecord master = *state->master;
  if (master.id == target_id) return master.epoch;
  if (!state->in_sync.has_value() || state->in_sync->count(target_id) == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "broker id ", target_id, " is not in the in-sync set of group ", group, " ([",
        state->in_sync.has_value() ? IdList(*state->in_sync) : "", "]); it would lose messages"));
  }
  absl::StatusOr<bool> asked = etcd_->Txn(
      {EtcdCompare::CreateRevisionEquals(Key("master"), master.create_revision),
       EtcdCompare::CreateRevisionEquals(Key("transfer"), 0)},
      {EtcdOp::Put(Key("transfer"), absl::StrCat("target=", target_id, ";epoch=", master.epoch))});
  if (!asked.ok()) return asked.status();
  if (!*asked) {
    return absl::AbortedError(
        absl::StrCat("group ", group, " changed master or has a transfer in flight; retry"));
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));  // poll with a deadline
    absl::StatusOr<GroupState> now = ReadState();
    if (!now.ok()) continue;
    if (now->master.has_value() && now->master->epoch > master.epoch) {
      if (now->master->id == target_id) return now->master->epoch;
      return absl::AbortedError(absl::StrCat("broker ", now->master->id, " became master at epoch ",
                                             now->master->epoch, " instead of ", target_id));
    }
    if (!now->transfer_target.has_value() && now->master.has_value() &&
        now->master->epoch == master.epoch) {
      return absl::DeadlineExceededError(absl::StrCat(
          "master ", master.id, " of group ", group, " gave the transfer up: broker ", target_id,
          " did not catch up within ", absl::FormatDuration(options_.transfer_catch_up)));
    }
  }
  return absl::DeadlineExceededError(absl::StrCat("transfer of group ", group, " to broker ",
                                                  target_id, " did not finish within ",
                                                  absl::FormatDuration(timeout)));
}

}  // namespace apogee::controller
