#include "services/store/replication/replicator.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "services/common/client/channel.h"
#include "services/common/server/blocking_stream.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/status_macros.h"
#include "services/store/replication/durable_file.h"

namespace apogee::store {
namespace {

using ::google::protobuf::util::TimeUtil;

constexpr size_t kMaxProbes = 4096;
// A batch is appended whole within one segment, so a read this large always
// ends at a batch boundary.
constexpr size_t kMaxBatchRead = size_t{256} << 20;

std::string RolePath(const std::string& dir) { return dir + "/role"; }
std::string HistoryPath(const std::string& dir) { return dir + "/epoch-history"; }

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  return TimeUtil::MillisecondsToDuration(absl::ToInt64Milliseconds(d));
}

}  // namespace

Replicator::Replicator(Store* store, ReplicationMetrics* metrics, ReplicatorOptions options)
    : store_(store), metrics_(metrics), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Replicator>> Replicator::Create(Store* store,
                                                               ReplicationMetrics* metrics,
                                                               ReplicatorOptions options) {
  std::unique_ptr<Replicator> replicator(new Replicator(store, metrics, std::move(options)));
  APOGEE_RETURN_IF_ERROR(replicator->Load());
  absl::MutexLock follower(&replicator->follower_mu_);
  absl::MutexLock lock(&replicator->mu_);
  replicator->committed_ = store->GetLogOffsets().committed;
  if (replicator->role_.role == sv1::SLAVE) {
    store->SetFollowing(true, absl::StrCat("master ", replicator->role_.master_address, ", epoch ",
                                           replicator->role_.epoch));
    replicator->StartFollowerLocked();
  }
  return replicator;
}

Replicator::~Replicator() { Shutdown(); }

absl::Status Replicator::Load() {
  if (::mkdir(options_.state_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("cannot create ", options_.state_dir, ": ", std::strerror(errno)));
  }
  APOGEE_ASSIGN_OR_RETURN(history_, EpochHistory::Open(HistoryPath(options_.state_dir)));
  const std::string path = RolePath(options_.state_dir);
  APOGEE_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadSmallFile(path));
  RoleState state;
  if (text.has_value()) {
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      const std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
      const auto& [key, value] = kv;
      int64_t number = 0;
      bool ok = true;
      if (key == "role") {
        ok = sv1::Role_Parse(value, &state.role);
      } else if (key == "epoch") {
        ok = absl::SimpleAtoi(value, &state.epoch);
      } else if (key == "master_address") {
        state.master_address = value;
      } else if (key == "replica_id") {
        state.replica_id = value;
      } else if (key == "mode") {
        ok = sv1::ReplicationMode_Parse(value, &state.mode);
      } else if (key == "min_insync_replicas") {
        ok = absl::SimpleAtoi(value, &state.min_insync_replicas);
      } else if (key == "replication_timeout_ms") {
        ok = absl::SimpleAtoi(value, &number);
        state.replication_timeout = absl::Milliseconds(number);
      }
      if (!ok) {
        return absl::DataLossError(
            absl::StrCat("replication role file ", path, ": malformed line \"", line, "\""));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  role_ = state;
  return absl::OkStatus();
}

absl::Status Replicator::PersistRole(const RoleState& state) const {
  return WriteFileDurably(
      RolePath(options_.state_dir),
      absl::StrCat("role=", sv1::Role_Name(state.role), "\nepoch=", state.epoch,
                   "\nmaster_address=", state.master_address, "\nreplica_id=", state.replica_id,
                   "\nmode=", sv1::ReplicationMode_Name(state.mode),
                   "\nmin_insync_replicas=", state.min_insync_replicas, "\nreplication_timeout_ms=",
                   absl::ToInt64Milliseconds(state.replication_timeout), "\n"));
}

void Replicator::Shutdown() {
  absl::MutexLock follower(&follower_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (!shutdown_) {
      shutdown_ = true;
      if (follow_context_ != nullptr) follow_context_->TryCancel();
      for (grpc::ServerContext* session : sessions_) session->TryCancel();
    }
  }
  if (follower_thread_.joinable()) follower_thread_.join();
}

void Replicator::OnCommitted(int64_t end) {
  absl::MutexLock lock(&mu_);
  committed_ = std::max(committed_, end);
}

absl::Status Replicator::CheckWritable(absl::string_view what) const {
  absl::MutexLock lock(&mu_);
  if (IsMaster()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      what, " refused: this store is a SLAVE at epoch ", role_.epoch, " following master ",
      role_.master_address, "; write to the master (or promote this store with SetRole)"));
}

absl::StatusOr<sv1::SetRoleResponse> Replicator::SetRole(const sv1::SetRoleRequest& request) {
  if (request.role() != sv1::MASTER && request.role() != sv1::SLAVE) {
    return absl::InvalidArgumentError(absl::StrCat("role ", sv1::Role_Name(request.role()),
                                                   " is not a role (allowed: MASTER, SLAVE)"));
  }
  if (request.epoch() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("epoch ", request.epoch(), " is negative"));
  }
  if (request.role() == sv1::SLAVE && request.master_address().empty()) {
    return absl::InvalidArgumentError("SLAVE needs master_address (the master store's HA port)");
  }
  if (request.min_insync_replicas() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_insync_replicas ", request.min_insync_replicas(), " is negative"));
  }
  absl::MutexLock follower(&follower_mu_);
  RoleState next;
  RoleState previous;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return absl::UnavailableError("apogee-store is shutting down");
    previous = role_;
    next = role_;
    const int64_t epoch = request.epoch() == 0 ? role_.epoch : request.epoch();
    if (epoch < role_.epoch) {
      return absl::FailedPreconditionError(absl::StrCat(
          "epoch ", epoch, " is below this store's epoch ", role_.epoch,
          " (a deposed master cannot come back at an old epoch; use the current one or higher)"));
    }
    next.role = request.role();
    next.epoch = epoch;
    if (request.role() == sv1::SLAVE) {
      next.master_address = request.master_address();
      next.replica_id = request.replica_id().empty() ? "replica" : request.replica_id();
    } else {
      next.master_address.clear();
      next.mode = request.mode();
      next.min_insync_replicas =
          request.min_insync_replicas() > 0 ? request.min_insync_replicas() : 1;
      next.replication_timeout =
          request.has_replication_timeout()
              ? absl::Milliseconds(TimeUtil::DurationToMilliseconds(request.replication_timeout()))
              : absl::Seconds(3);
      if (next.replication_timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError("replication_timeout must be positive");
      }
    }
  }
  const bool was_slave = previous.role == sv1::SLAVE;
  const bool changed = previous.role != next.role || previous.epoch != next.epoch ||
                       previous.master_address != next.master_address;
  if (changed) {
    // End the old generation first: sessions and the follower thread stop.
    {
      absl::MutexLock lock(&mu_);
      ++generation_;
      if (follow_context_ != nullptr) follow_context_->TryCancel();
      for (grpc::ServerContext* session : sessions_) session->TryCancel();
    }
    if (was_slave && follower_thread_.joinable()) follower_thread_.join();
    // Waits for local appends in progress: none lands once we follow.
    store_->SetFollowing(next.role == sv1::SLAVE,
                         absl::StrCat("master ", next.master_address, ", epoch ", next.epoch));
  }
  const int64_t log_end = store_->GetLogOffsets().max;
  absl::Status persisted;
  if (next.role == sv1::MASTER && next.epoch > history_->Latest().epoch) {
    // The new epoch's first record will land at the current log end.
    persisted = history_->Append({next.epoch, log_end});
  }
  if (persisted.ok()) persisted = PersistRole(next);
  if (!persisted.ok()) {
    // The role did not change: restore what the store accepted before.
    // (A slave's follower thread of the old generation has ended; the
    // broker retries SetRole.)
    store_->SetFollowing(
        was_slave, absl::StrCat("master ", previous.master_address, ", epoch ", previous.epoch));
    return persisted;
  }
  {
    absl::MutexLock lock(&mu_);
    role_ = next;
    committed_ = store_->GetLogOffsets().committed;
    if (changed && next.role == sv1::SLAVE) StartFollowerLocked();
  }
  std::fprintf(stderr,
               "event=role_changed role=%s epoch=%lld master=%s mode=%s min_insync_replicas=%d "
               "log_end=%lld\n",
               sv1::Role_Name(next.role).c_str(), static_cast<long long>(next.epoch),
               next.master_address.c_str(), sv1::ReplicationMode_Name(next.mode).c_str(),
               next.min_insync_replicas, static_cast<long long>(log_end));
  sv1::SetRoleResponse response;
  response.set_epoch(next.epoch);
  response.set_log_end(log_end);
  return response;
}

bool Replicator::InSync(const Follower& f, absl::Time now) const {
  return !f.reader_done && now - f.caught_up <= options_.replica_lag_time;
}

int Replicator::HoldersLocked(int64_t end, absl::Time now) const {
  int holders = 0;
  for (const Follower& f : followers_) {
    if (f.acked >= end && InSync(f, now)) ++holders;
  }
  return holders;
}

bool Replicator::AwaitsReplicas() const {
  absl::MutexLock lock(&mu_);
  return IsMaster() && role_.mode == sv1::REPLICATION_SYNC;
}

absl::Status Replicator::AwaitReplicas(int64_t end, absl::Time stored_at) {
  absl::MutexLock lock(&mu_);
  if (!IsMaster() || role_.mode != sv1::REPLICATION_SYNC) return absl::OkStatus();
  const int64_t epoch = role_.epoch;
  const int needed = role_.min_insync_replicas;
  const absl::Duration timeout = role_.replication_timeout;
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return shutdown_ || !IsMaster() || role_.epoch != epoch ||
           HoldersLocked(end, absl::Now()) >= needed;
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), stored_at + timeout);
  const int holders = HoldersLocked(end, absl::Now());
  const bool ok = holders >= needed && IsMaster() && role_.epoch == epoch;
  metrics_->OnSyncAck(absl::Now() - stored_at, ok);
  if (ok) return absl::OkStatus();
  if (!IsMaster() || role_.epoch != epoch) {
    return absl::AbortedError(absl::StrCat("the batch ending at commit-log offset ", end,
                                           " is stored, but this store stopped being the master "
                                           "of epoch ",
                                           epoch, " before followers held it"));
  }
  return absl::AbortedError(
      absl::StrCat("the batch ending at commit-log offset ", end, " is stored, but only ", holders,
                   " in-sync follower(s) of min_insync_replicas=", needed,
                   " held it within replication_timeout ", absl::FormatDuration(timeout)));
}

sv1::GetReplicationStatusResponse Replicator::Status() const {
  const LogOffsets offsets = store_->GetLogOffsets();
  sv1::GetReplicationStatusResponse response;
  std::vector<std::pair<int64_t, sv1::FollowerStatus*>> lagging;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    response.set_role(IsMaster() ? sv1::MASTER : sv1::SLAVE);
    response.set_epoch(role_.epoch);
    response.set_log_end(offsets.max);
    if (IsMaster()) {
      response.set_mode(role_.mode);
      response.set_min_insync_replicas(role_.min_insync_replicas);
      for (const Follower& f : followers_) {
        sv1::FollowerStatus* out = response.add_followers();
        out->set_replica_id(f.replica_id);
        out->set_peer(f.peer);
        out->set_acked_offset(f.acked);
        out->set_lag_bytes(std::max<int64_t>(0, offsets.committed - f.acked));
        out->set_in_sync(InSync(f, now));
        out->set_bytes_sent(f.bytes_sent);
        if (f.acked < offsets.committed) lagging.emplace_back(f.acked, out);
      }
    } else {
      response.set_master_address(role_.master_address);
      response.set_connected(connected_);
      response.set_master_log_end(master_log_end_);
      const int64_t lag = std::max<int64_t>(0, master_log_end_ - offsets.max);
      response.set_lag_bytes(lag);
      if (lag > 0 && last_store_time_ms_ > 0) {
        *response.mutable_lag_time() =
            ToProtoDuration(now - absl::FromUnixMillis(last_store_time_ms_));
      }
    }
    response.set_truncated_bytes(truncated_bytes_);
    response.set_bytes_received(bytes_received_);
  }
  // Disk reads outside the lock: the age of the oldest record each lagging
  // follower lacks.
  for (auto& [acked, out] : lagging) {
    absl::StatusOr<StoredRecord> record = store_->ReadAt(acked);
    if (!record.ok()) continue;
    const absl::Duration age =
        absl::Now() - absl::FromUnixMillis(record->view().store_timestamp_ms());
    *out->mutable_lag_time() = ToProtoDuration(std::max(age, absl::ZeroDuration()));
  }
  return response;
}

absl::StatusOr<Replicator::Batches> Replicator::ReadBatches(int64_t offset) const {
  size_t max_bytes = options_.max_chunk_bytes;
  while (true) {
    APOGEE_ASSIGN_OR_RETURN(RecordChunk chunk, store_->ReadRaw(offset, max_bytes));
    Batches out;
    out.end = offset;
    for (const RecordView& r : chunk.records) {
      if (r.batch_continues()) continue;
      out.end = r.end_offset();
      out.last_store_time_ms = r.store_timestamp_ms();
    }
    if (out.end > offset || chunk.records.empty()) {
      out.data = chunk.data->substr(0, static_cast<size_t>(out.end - offset));
      return out;
    }
    if (max_bytes >= kMaxBatchRead) {
      return absl::DataLossError(
          absl::StrCat("no batch ends within ", max_bytes, " bytes of commit-log offset ", offset));
    }
    max_bytes *= 4;  // one batch is larger than a chunk
  }
}

absl::Status Replicator::SendMeta(
    grpc::ServerReaderWriterInterface<sv1::FollowResponse, sv1::FollowRequest>* stream,
    int64_t* bytes) {
  APOGEE_ASSIGN_OR_RETURN(Store::MetaSnapshot snapshot, store_->SnapshotMeta());
  sv1::FollowResponse response;
  sv1::MetaSnapshot* meta = response.mutable_meta();
  for (const TopicConfig& t : snapshot.topics) {
    sv1::Topic* out = meta->add_topics();
    out->set_name(t.name);
    out->set_queue_count(t.queue_count);
    out->set_attributes(t.attributes);
    out->set_incarnation_start(t.incarnation_start);
  }
  for (const auto& [name, config] : snapshot.groups) {
    sv1::Group* out = meta->add_groups();
    out->set_name(name);
    out->set_config(config);
  }
  for (const ConsumerOffset& o : snapshot.offsets) {
    sv1::ConsumerOffset* out = meta->add_offsets();
    out->set_group(o.group);
    out->set_topic(o.topic);
    out->set_queue_id(o.queue_id);
    out->set_offset(o.offset);
    if (o.commit_time_ms > 0)
      *out->mutable_commit_time() = TimeUtil::MillisecondsToTimestamp(o.commit_time_ms);
  }
  for (const auto& [name, tombstone] : snapshot.tombstones) {
    sv1::TopicTombstone* out = meta->add_tombstones();
    out->set_name(name);
    out->set_deleted_below(tombstone.deleted_below);
    out->set_queue_base(tombstone.queue_base);
  }
  *bytes = static_cast<int64_t>(response.ByteSizeLong());
  if (!stream->Write(response)) return absl::UnavailableError("follower stream closed");
  return absl::OkStatus();
}

grpc::Status Replicator::Follow(
    grpc::ServerContext* context,
    grpc::ServerReaderWriterInterface<sv1::FollowResponse, sv1::FollowRequest>* stream) {
  sv1::FollowRequest first;
  if (!stream->Read(&first) || !first.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first Follow message must be a FollowHello");
  }
  const sv1::FollowHello hello = first.hello();
  int64_t generation = 0;
  int64_t epoch = 0;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
    if (!IsMaster()) {
      return ToGrpcStatus(absl::FailedPreconditionError(
          absl::StrCat("this store is a SLAVE at epoch ", role_.epoch, " (following ",
                       role_.master_address, "); follow the master")));
    }
    if (hello.known_epoch() > role_.epoch) {
      return ToGrpcStatus(absl::FailedPreconditionError(
          absl::StrCat("deposed: follower ", hello.replica_id(), " knows epoch ",
                       hello.known_epoch(), " but this master is at epoch ", role_.epoch)));
    }
    generation = generation_;
    epoch = role_.epoch;
  }
  const LogOffsets offsets = store_->GetLogOffsets();
  const EpochEntry end_of_epoch = history_->EndOf(hello.last_epoch().epoch(), offsets.committed);
  const int64_t truncate_to =
      std::min({hello.log_end(), end_of_epoch.start_offset, offsets.committed});
  if (truncate_to < offsets.min) {
    return ToGrpcStatus(absl::FailedPreconditionError(absl::StrCat(
        "follower ", hello.replica_id(), " would continue at commit-log offset ", truncate_to,
        " but this master's log starts at ", offsets.min,
        " (retention deleted the rest); empty the follower's data_dir to copy the retained log")));
  }
  sv1::FollowResponse start;
  start.mutable_start()->set_epoch(epoch);
  start.mutable_start()->set_truncate_to(truncate_to);
  for (const EpochEntry& e : history_->entries()) {
    sv1::EpochStart* out = start.mutable_start()->add_epochs();
    out->set_epoch(e.epoch);
    out->set_start_offset(e.start_offset);
  }
  if (!stream->Write(start)) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed");
  std::fprintf(stderr,
               "event=follower_connected replica=%s peer=%s epoch=%lld their_log_end=%lld "
               "their_epoch=%lld truncate_to=%lld\n",
               hello.replica_id().c_str(), context->peer().c_str(), static_cast<long long>(epoch),
               static_cast<long long>(hello.log_end()),
               static_cast<long long>(hello.last_epoch().epoch()),
               static_cast<long long>(truncate_to));

  Follower* me = nullptr;
  {
    absl::MutexLock lock(&mu_);
    followers_.emplace_back();
    me = &followers_.back();
    me->replica_id = hello.replica_id();
    me->peer = context->peer();
    me->acked = truncate_to;
    me->sent = truncate_to;
    me->probes.emplace_back(committed_, absl::Now());
    sessions_.insert(context);
  }
  std::thread reader([this, stream, me] {
    sv1::FollowRequest request;
    while (stream->Read(&request)) {
      if (!request.has_ack()) continue;
      absl::MutexLock lock(&mu_);
      me->acked = std::max(me->acked, request.ack().offset());
      while (!me->probes.empty() && me->probes.front().first <= me->acked) {
        me->caught_up = std::max(me->caught_up, me->probes.front().second);
        me->probes.pop_front();
      }
    }
    absl::MutexLock lock(&mu_);
    me->reader_done = true;
  });

  grpc::Status result = grpc::Status::OK;
  int64_t meta_sent = -1;
  absl::Time next_meta = absl::Now();
  absl::Time next_heartbeat = absl::Now();
  while (true) {
    int64_t committed = 0;
    int64_t sent = 0;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return shutdown_ || generation_ != generation || me->reader_done || committed_ > me->sent;
      };
      // Data wakes us at once (OnCommitted); metadata and heartbeats are due
      // at their times.
      mu_.AwaitWithDeadline(absl::Condition(&wake), std::min(next_heartbeat, next_meta));
      if (shutdown_) {
        result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "apogee-store is shutting down");
        break;
      }
      if (generation_ != generation) {
        result = ToGrpcStatus(absl::FailedPreconditionError(
            absl::StrCat("this store's role changed (was master at epoch ", epoch, ")")));
        break;
      }
      if (me->reader_done) {
        result = grpc::Status(grpc::StatusCode::CANCELLED, "follower closed the stream");
        break;
      }
      committed = committed_;
      sent = me->sent;
    }
    const absl::Time now = absl::Now();
    const int64_t version = store_->meta_version();
    if (version != meta_sent && now >= next_meta) {
      int64_t bytes = 0;
      absl::Status status = SendMeta(stream, &bytes);
      if (!status.ok()) {
        result = ToGrpcStatus(status);
        break;
      }
      meta_sent = version;
      next_meta = now + options_.meta_interval;
    } else if (now >= next_meta) {
      next_meta = now + options_.meta_interval;
    }
    if (committed > sent) {
      absl::StatusOr<Batches> batches = ReadBatches(sent);
      if (!batches.ok()) {
        result = ToGrpcStatus(batches.status());
        break;
      }
      if (batches->end == sent) continue;  // nothing whole yet
      sv1::FollowResponse response;
      sv1::LogChunk* chunk = response.mutable_chunk();
      chunk->set_start(sent);
      const int64_t size = static_cast<int64_t>(batches->data.size());
      chunk->set_master_log_end(committed);
      *chunk->mutable_last_store_time() =
          TimeUtil::MillisecondsToTimestamp(batches->last_store_time_ms);
      chunk->set_data(std::move(batches->data));
      if (!stream->Write(response)) {
        result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "follower stream closed");
        break;
      }
      metrics_->OnSent(size);
      absl::MutexLock lock(&mu_);
      me->sent = batches->end;
      me->bytes_sent += size;
      if (me->probes.size() >= kMaxProbes) me->probes.pop_front();
      me->probes.emplace_back(committed_, now);
      next_heartbeat = now + options_.heartbeat_interval;
      continue;
    }
    if (now >= next_heartbeat) {
      sv1::FollowResponse response;
      response.set_heartbeat_log_end(committed);
      if (!stream->Write(response)) {
        result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "follower stream closed");
        break;
      }
      absl::MutexLock lock(&mu_);
      if (me->probes.size() >= kMaxProbes) me->probes.pop_front();
      me->probes.emplace_back(committed, now);
      next_heartbeat = now + options_.heartbeat_interval;
    }
  }
  context->TryCancel();
  reader.join();
  {
    absl::MutexLock lock(&mu_);
    sessions_.erase(context);
    followers_.remove_if([me](const Follower& f) { return &f == me; });
  }
  std::fprintf(stderr, "event=follower_disconnected replica=%s reason=\"%s\"\n",
               hello.replica_id().c_str(), result.error_message().c_str());
  return result;
}

// --- Slave side.

void Replicator::StartFollowerLocked() {
  const int64_t generation = generation_;
  const std::string address = role_.master_address;
  if (follower_thread_.joinable()) follower_thread_.join();
  follower_thread_ = std::thread([this, generation, address] { FollowLoop(generation, address); });
}

void Replicator::FollowLoop(int64_t generation, std::string master_address) {
  absl::Duration backoff = options_.min_backoff;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_ || generation_ != generation) return;
    }
    const absl::Time started = absl::Now();
    const absl::Status status = FollowOnce(generation, master_address);
    {
      absl::MutexLock lock(&mu_);
      connected_ = false;
      if (shutdown_ || generation_ != generation) return;
    }
    std::fprintf(stderr, "event=follow_ended master=%s error=\"%s\" retry_in=%s\n",
                 master_address.c_str(), std::string(status.message()).c_str(),
                 absl::FormatDuration(backoff).c_str());
    if (absl::Now() - started > absl::Seconds(5)) backoff = options_.min_backoff;
    absl::MutexLock lock(&mu_);
    auto stop = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return shutdown_ || generation_ != generation;
    };
    mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::Status Replicator::FollowOnce(int64_t generation, const std::string& master_address) {
  // TLS to the master's --ha_listen when the store has --client_tls*.
  auto channel = CreateApogeeChannel(master_address);
  auto stub = sv1::Replication::NewStub(channel);
  grpc::ClientContext context;
  sv1::FollowRequest hello;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_ || generation_ != generation) return absl::CancelledError("role changed");
    follow_context_ = &context;
    hello.mutable_hello()->set_replica_id(role_.replica_id);
    hello.mutable_hello()->set_known_epoch(role_.epoch);
  }
  struct Detach {
    Replicator* self;
    ~Detach() {
      absl::MutexLock lock(&self->mu_);
      self->follow_context_ = nullptr;
    }
  } detach{this};

  int64_t end = store_->GetLogOffsets().max;
  const EpochEntry latest = history_->Latest();
  hello.mutable_hello()->mutable_last_epoch()->set_epoch(latest.epoch);
  hello.mutable_hello()->mutable_last_epoch()->set_start_offset(latest.start_offset);
  hello.mutable_hello()->set_log_end(end);
  auto stream = stub->Follow(&context);
  // Ends the call: with our own error `why` (cancelling it), or with the
  // master's status once the stream has ended (OK `why`).
  auto finish = [&](absl::Status why) {
    if (!why.ok()) context.TryCancel();
    const grpc::Status status = stream->Finish();
    if (!why.ok()) return why;
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("master ", master_address, ": ", status.error_message()));
  };
  sv1::FollowResponse response;
  if (!stream->Write(hello) || !stream->Read(&response)) return finish(absl::OkStatus());
  if (!response.has_start()) {
    return finish(absl::InternalError("the master's first Follow message is not FollowStart"));
  }
  const sv1::FollowStart& start = response.start();
  if (start.epoch() < hello.hello().known_epoch()) {
    return finish(absl::FailedPreconditionError(absl::StrCat(
        "master ", master_address, " is at epoch ", start.epoch(),
        ", below the epoch this store knows (", hello.hello().known_epoch(), "): it was deposed")));
  }
  if (start.truncate_to() > end) {
    return finish(
        absl::InternalError(absl::StrCat("the master asked to continue at offset ",
                                         start.truncate_to(), " past this log's end ", end)));
  }
  if (start.truncate_to() < end) {
    absl::StatusOr<int64_t> dropped = store_->TruncateLog(start.truncate_to());
    if (!dropped.ok()) return finish(dropped.status());
    std::fprintf(stderr,
                 "event=replica_truncated master=%s epoch=%lld from=%lld to=%lld "
                 "dropped_bytes=%lld\n",
                 master_address.c_str(), static_cast<long long>(start.epoch()),
                 static_cast<long long>(end), static_cast<long long>(start.truncate_to()),
                 static_cast<long long>(*dropped));
    metrics_->OnTruncated(*dropped);
    end = start.truncate_to();
    if (absl::Status s = history_->TruncateFrom(end); !s.ok()) return finish(s);
    absl::MutexLock lock(&mu_);
    truncated_bytes_ = *dropped;
    committed_ = store_->GetLogOffsets().committed;
  }
  if (start.epochs_size() > 0) {
    std::vector<EpochEntry> epochs;
    for (const sv1::EpochStart& e : start.epochs()) {
      epochs.push_back({e.epoch(), e.start_offset()});
    }
    if (absl::Status s = history_->Replace(std::move(epochs)); !s.ok()) return finish(s);
  }
  // A master at a later epoch than we were told of: that epoch is now the
  // lowest this store may ever be promoted above.
  absl::Status raised = RaiseEpoch(generation, start.epoch());
  if (!raised.ok()) return finish(raised);
  {
    absl::MutexLock lock(&mu_);
    connected_ = true;
  }
  std::fprintf(stderr, "event=following master=%s epoch=%lld from=%lld\n", master_address.c_str(),
               static_cast<long long>(start.epoch()), static_cast<long long>(end));
  auto ack = [&](int64_t offset) {
    sv1::FollowRequest request;
    request.mutable_ack()->set_offset(offset);
    return stream->Write(request);
  };
  if (!ack(end)) return finish(absl::OkStatus());
  while (stream->Read(&response)) {
    switch (response.kind_case()) {
      case sv1::FollowResponse::kChunk: {
        const sv1::LogChunk& chunk = response.chunk();
        if (chunk.start() != end) {
          return finish(absl::InternalError(absl::StrCat(
              "the master sent a chunk at offset ", chunk.start(), " but this log ends at ", end)));
        }
        absl::StatusOr<int64_t> appended = store_->AppendReplicated(chunk.start(), chunk.data());
        if (!appended.ok()) return finish(appended.status());
        end = *appended;
        metrics_->OnReceived(static_cast<int64_t>(chunk.data().size()));
        {
          absl::MutexLock lock(&mu_);
          bytes_received_ += static_cast<int64_t>(chunk.data().size());
          master_log_end_ = chunk.master_log_end();
          // The newest record we hold tells how far behind we are in time.
          last_store_time_ms_ = TimeUtil::TimestampToMilliseconds(chunk.last_store_time());
        }
        if (!ack(end)) return finish(absl::OkStatus());
        break;
      }
      case sv1::FollowResponse::kMeta:
        if (absl::Status s = ApplyMeta(response.meta()); !s.ok()) return finish(s);
        break;
      case sv1::FollowResponse::kHeartbeatLogEnd: {
        {
          absl::MutexLock lock(&mu_);
          master_log_end_ = response.heartbeat_log_end();
        }
        if (!ack(end)) return finish(absl::OkStatus());
        break;
      }
      default:
        break;
    }
  }
  return finish(absl::OkStatus());
}

absl::Status Replicator::RaiseEpoch(int64_t generation, int64_t epoch) {
  // follower_mu_ is not taken (SetRole holds it while it joins this
  // thread); generation_ tells whether a SetRole came in between.
  RoleState raised;
  {
    absl::MutexLock lock(&mu_);
    if (epoch <= role_.epoch || generation_ != generation) return absl::OkStatus();
    raised = role_;
    raised.epoch = epoch;
  }
  APOGEE_RETURN_IF_ERROR(PersistRole(raised));
  absl::MutexLock lock(&mu_);
  if (generation_ == generation) role_.epoch = std::max(role_.epoch, epoch);
  return absl::OkStatus();
}

absl::Status Replicator::ApplyMeta(const sv1::MetaSnapshot& meta) {
  Store::MetaSnapshot snapshot;
  for (const sv1::Topic& t : meta.topics()) {
    snapshot.topics.push_back({t.name(), t.queue_count(), t.attributes(), t.incarnation_start()});
  }
  for (const sv1::Group& g : meta.groups()) snapshot.groups.emplace_back(g.name(), g.config());
  for (const sv1::ConsumerOffset& o : meta.offsets()) {
    snapshot.offsets.push_back(
        {o.group(), o.topic(), o.queue_id(), o.offset(),
         o.has_commit_time() ? TimeUtil::TimestampToMilliseconds(o.commit_time()) : 0});
  }
  for (const sv1::TopicTombstone& t : meta.tombstones()) {
    snapshot.tombstones.emplace_back(t.name(), TopicTombstone{t.deleted_below(), t.queue_base()});
  }
  return store_->ApplyMeta(snapshot);
}

// One Follow call: waits for a request on a queue, then runs
// Replicator::Follow on its own thread over a BlockingStream and finishes
// the call with what it returns. The thread deletes the object once the
// Finish tag came back.
class ReplicationService::FollowCall final : public CompletionTag {
 public:
  FollowCall(ReplicationService* service, grpc::ServerCompletionQueue* queue)
      : service_(service), queue_(queue), stream_(&context_), blocking_(&stream_) {
    service_->calls_.Add();
    service_->RequestFollow(&context_, &stream_, queue_, queue_, this);
  }

  // The request arrived (or the server is shutting down).
  void Proceed(bool ok) override {
    if (!ok) {
      delete this;
      return;
    }
    new FollowCall(service_, queue_);
    std::thread([this] {
      const grpc::Status status = service_->replicator_->Follow(&context_, &blocking_);
      stream_.Finish(status, &finished_);
      finished_.Wait();
      delete this;
    }).detach();
  }

 private:
  ~FollowCall() { service_->calls_.Remove(); }

  ReplicationService* const service_;
  grpc::ServerCompletionQueue* const queue_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<sv1::FollowResponse, sv1::FollowRequest> stream_;
  BlockingStream<sv1::FollowResponse, sv1::FollowRequest> blocking_;
  WaitableTag finished_;  // Finish's, waited for on the call's thread
};

void ReplicationService::Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) {
  for (grpc::ServerCompletionQueue* queue : queues) new FollowCall(this, queue);
}

void ReplicationService::Detach() { calls_.AwaitNone(); }

}  // namespace apogee::store
